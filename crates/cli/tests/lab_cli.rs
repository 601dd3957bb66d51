//! Black-box tests of `pgdbre lab` through the built binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
        .env_remove("PGDBRE_LAB_DIR")
        .output()
        .expect("run pgdbre")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `pgdbre lab down` when dropped, so a failed assertion leaves no servers behind.
struct LabGuard(PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        if self.0.exists() {
            pgdbre(&["lab", "down", "--dir", &self.0.display().to_string()]);
        }
    }
}

fn lab_dir(parent: &Path) -> PathBuf {
    // The servers run as another OS user, which must be able to enter the directory.
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    parent.join("lab")
}

#[test]
fn up_status_env_psql_down() {
    let parent = tempfile::Builder::new()
        .prefix("pgdbre-cli-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = lab_dir(parent.path());
    let dir_arg = dir.display().to_string();
    let _guard = LabGuard(dir.clone());

    let up = pgdbre(&[
        "lab",
        "up",
        "--replicas",
        "1",
        "--pg-version",
        "15",
        "--dir",
        &dir_arg,
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains("replica1") && stdout.contains("streaming"),
        "{}",
        text(&up)
    );
    assert!(dir.join("lab.json").exists());

    let again = pgdbre(&["lab", "up", "--dir", &dir_arg]);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("pgdbre lab down"),
        "{}",
        text(&again)
    );

    let status = pgdbre(&["lab", "status", "--dir", &dir_arg]);
    assert!(status.status.success(), "{}", text(&status));
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("primary") && stdout.contains("replica1"),
        "{}",
        text(&status)
    );
    assert!(stdout.contains("streaming"), "{}", text(&status));

    let env = pgdbre(&["lab", "env", "--dir", &dir_arg, "--node", "replica1"]);
    assert!(env.status.success(), "{}", text(&env));
    let script = format!(
        "{}\npsql -X -A -t -c 'SELECT pg_is_in_recovery()'",
        String::from_utf8_lossy(&env.stdout)
    );
    let through_env = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(through_env.status.success(), "{}", text(&through_env));
    assert_eq!(String::from_utf8_lossy(&through_env.stdout).trim(), "t");

    let psql = pgdbre(&[
        "lab",
        "psql",
        "--dir",
        &dir_arg,
        "--",
        "-X",
        "-A",
        "-t",
        "-c",
        "SELECT 7 * 6",
    ]);
    assert!(psql.status.success(), "{}", text(&psql));
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "42");

    let down = pgdbre(&["lab", "down", "--dir", &dir_arg]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!dir.exists());

    let none = pgdbre(&["lab", "down", "--dir", &dir_arg]);
    assert!(!none.status.success(), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no lab"),
        "{}",
        text(&none)
    );
}

#[test]
fn env_without_a_lab_says_how_to_start_one() {
    let parent = tempfile::Builder::new()
        .prefix("pgdbre-cli-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = lab_dir(parent.path());
    let env = pgdbre(&["lab", "env", "--dir", &dir.display().to_string()]);
    assert!(!env.status.success());
    assert!(
        String::from_utf8_lossy(&env.stderr).contains("pgdbre lab up"),
        "{}",
        text(&env)
    );
}
