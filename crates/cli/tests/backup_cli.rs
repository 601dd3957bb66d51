//! Black-box tests of `pgdbre backup`, `restore`, `info` and `verify` through the built binary:
//! a backup killed with SIGKILL leaves nothing that looks valid and the next one succeeds; the
//! commands' exit codes and messages for damage and bad input.

use pgdbre_lab::restored::RestoredServer;
use pgdbre_lab::testing::{fresh_database, shared};
use pgdbre_lab::S3Server;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
        .env_remove("PGDBRE_REPO_KEY")
        .output()
        .expect("run pgdbre")
}

fn text(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A temp dir the server user may enter, holding the repository at `<dir>/repo`.
fn repo_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("pgdbre-backup-cli-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = dir.path().join("repo").display().to_string();
    (dir, repo)
}

fn count_files(dir: &Path, needle: &str) -> usize {
    let mut count = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else if entry.path().to_string_lossy().contains(needle) {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn killed_backup_leaves_nothing_valid_and_the_next_backup_succeeds() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    // ~80 MB of incompressible rows, so the backup is still copying when it is killed.
    primary
        .psql_db(
            &db,
            "CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) \
                       || md5(random()::text) AS payload FROM generate_series(1, 600000) g;",
        )
        .unwrap();
    let (dir, repo) = repo_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args([
            "backup",
            "--repo",
            &repo,
            "--fast",
            "--jobs",
            "1",
            &primary.dsn(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let repo_path = dir.path().join("repo");
    // The first pack is stored after ~16 MiB of compressed data: well into the copy.
    while count_files(&repo_path, "packs/") < 1 {
        assert!(
            Instant::now() < deadline,
            "the backup stored no pack within 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        count_files(&repo_path, "/manifest"),
        0,
        "a killed backup must not look valid"
    );

    let info = pgdbre(&["info", "--repo", &repo]);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info));
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("no backups"),
        "{}",
        text(&info)
    );

    let again = pgdbre(&["backup", "--repo", &repo, "--fast", &primary.dsn()]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    // WAL was reserved for the backup by its temporary slot (a failure is logged as a warning).
    assert!(
        !text(&again).contains("replication slot"),
        "{}",
        text(&again)
    );
    let json = pgdbre(&["info", "--repo", &repo, "--output", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        info["backups"].as_array().unwrap().len(),
        1,
        "{}",
        text(&json)
    );
    let verify = pgdbre(&["verify", "--repo", &repo]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}

#[test]
fn verify_and_restore_fail_loudly_on_damage() {
    let cluster = shared();
    let (dir, repo) = repo_dir();
    let backup = pgdbre(&[
        "backup",
        "--repo",
        &repo,
        "--fast",
        &cluster.primary().dsn(),
    ]);
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup));
    // Damage the middle of the largest pack: some block every restore needs.
    let mut blocks: Vec<(u64, PathBuf)> = Vec::new();
    let mut stack = vec![dir.path().join("repo/packs")];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap().flatten() {
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                stack.push(entry.path());
            } else {
                blocks.push((metadata.len(), entry.path()));
            }
        }
    }
    blocks.sort();
    let damaged = &blocks.last().unwrap().1;
    let mut bytes = std::fs::read(damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(damaged, bytes).unwrap();
    let pack = damaged.file_name().unwrap().to_string_lossy().into_owned();

    let verify = pgdbre(&["verify", "--repo", &repo]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains(&pack),
        "{}",
        text(&verify)
    );
    let target = dir.path().join("restored");
    let restore = pgdbre(&[
        "restore",
        "--repo",
        &repo,
        "--pgdata",
        target.to_str().unwrap(),
    ]);
    assert_eq!(restore.status.code(), Some(1), "{}", text(&restore));
    assert!(
        String::from_utf8_lossy(&restore.stderr).contains(&pack),
        "{}",
        text(&restore)
    );
}

#[test]
fn bad_input_is_exit_3() {
    let (dir, repo) = repo_dir();
    let out = pgdbre(&["info", "--repo", "s3://"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let short_key = dir.path().join("key");
    std::fs::write(&short_key, "short").unwrap();
    let out = pgdbre(&[
        "info",
        "--repo",
        &repo,
        "--encryption-key-file",
        short_key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!text(&out).contains("short\n"), "{}", text(&out));
    let out = pgdbre(&[
        "restore",
        "--repo",
        &repo,
        "--pgdata",
        "/tmp/x",
        "--target-lsn",
        "nonsense",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // A repository that does not exist is a failure with a hint, not a usage error.
    let out = pgdbre(&["info", "--repo", &repo]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("pgdbre backup"), "{}", text(&out));
}

#[test]
fn backup_and_restore_through_a_real_s3_server() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    primary
        .psql_db(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, payload text); \
                       INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 10000) g;",
        )
        .unwrap();
    let checksum = "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t";
    let source = primary.psql_db(&db, checksum).unwrap();
    let s3 = S3Server::start().unwrap();
    let repo = s3.url("cluster-a");
    let with_s3 = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(args)
            .envs(s3.env())
            .env_remove("PGDBRE_REPO_KEY")
            .output()
            .unwrap()
    };
    let backup = with_s3(&["backup", "--repo", &repo, "--fast", &primary.dsn()]);
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup));
    let verify = with_s3(&["verify", "--repo", &repo]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));

    let (dir, _) = repo_dir();
    let target = dir.path().join("restored");
    let restore = with_s3(&[
        "restore",
        "--repo",
        &repo,
        "--pgdata",
        target.to_str().unwrap(),
        "--owner",
        "postgres",
    ]);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    let auto_conf = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto_conf.contains(&format!("wal fetch --repo {repo} %f %p")),
        "{auto_conf}"
    );
    assert!(target.join("recovery.signal").exists());
    let server = RestoredServer::start(cluster.install(), &target, primary.passfile()).unwrap();
    server.wait_for_promotion(Duration::from_secs(60)).unwrap();
    assert_eq!(server.node().psql_db(&db, checksum).unwrap(), source);
}
