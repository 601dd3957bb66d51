//! Restore across a timeline switch, through the built binary: a full backup taken on timeline 1,
//! then a failover (the primary stops, its standby is promoted to timeline 2, both archiving
//! with `pgdbre wal push` into one repository). Restoring the timeline-1 backup with the default
//! `recovery_target_timeline = latest` must fetch `00000002.history` through `wal fetch`, follow
//! the switch, and end with exactly the timeline-2 contents; a backup taken on timeline 2
//! restores exactly too.

use pgdbre_lab::restored::{server_owner, RestoredServer};
use pgdbre_lab::{wait_until, Cluster, LabOptions, Node, PgInstall};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const PGDBRE: &str = env!("CARGO_BIN_EXE_pgdbre");

fn pgdbre(args: &[&str]) -> Output {
    Command::new(PGDBRE)
        .args(args)
        .env_remove("PGDBRE_REPO")
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

/// A temp dir the server user may enter, with a repository directory `<dir>/repo` it owns
/// (the archive_command runs as the server user).
fn repo_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("pgdbre-timeline-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (uid, gid) = server_owner().unwrap();
    std::os::unix::fs::chown(&repo, Some(uid), Some(gid)).unwrap();
    (dir, repo.display().to_string())
}

/// The timeline `node` writes (or replays) WAL on, from its current WAL file name.
fn timeline(node: &Node) -> u32 {
    let file = node
        .psql(
            "SELECT pg_walfile_name(CASE WHEN pg_is_in_recovery() \
             THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)",
        )
        .unwrap();
    u32::from_str_radix(&file[..8], 16).unwrap()
}

/// Switches `node` to a new segment and waits until the finished one (and every file before
/// it, history files included) is archived.
fn archive_current_segment(node: &Node) {
    let segment = node
        .psql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        &format!("{} to archive {segment}", node.name()),
        || {
            let row = node
                .psql("SELECT failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver")
                .unwrap();
            let (failed, last) = row.split_once('|').unwrap();
            assert_eq!(
                failed,
                "0",
                "archive_command failed:\n{}",
                node.log_contents()
            );
            (last >= segment.as_str()).then_some(())
        },
    )
    .unwrap();
}

fn table_md5(node: &Node) -> String {
    node.psql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM accounts t")
        .unwrap()
}

/// Restores backup `set` (the latest without one) into `pgdata`, starts it and waits until
/// recovery has ended.
fn restore_and_start(
    cluster: &Cluster,
    repo: &str,
    pgdata: &Path,
    set: Option<&str>,
) -> RestoredServer {
    let pgdata_arg = pgdata.display().to_string();
    let mut args = vec![
        "restore",
        "--repo",
        repo,
        "--pgdata",
        &pgdata_arg,
        "--owner",
        "postgres",
    ];
    if let Some(set) = set {
        args.extend(["--set", set]);
    }
    let restore = pgdbre(&args);
    assert!(restore.status.success(), "{}", text(&restore));
    let server =
        RestoredServer::start(cluster.install(), pgdata, cluster.primary().passfile()).unwrap();
    server
        .wait_for_promotion(Duration::from_secs(120))
        .unwrap_or_else(|error| panic!("{error}\n{}", server.node().log_contents()));
    server
}

/// The label of the only backup `pgdbre backup` just reported.
fn backup(repo: &str, node: &Node) -> String {
    let output = pgdbre(&["backup", "--repo", repo, "--fast", &node.dsn()]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .find(|word| word.len() == 16 && word.ends_with('F'))
        .unwrap_or_else(|| panic!("no backup label in:\n{stdout}"))
        .to_string()
}

#[test]
fn restore_after_a_timeline_switch_follows_the_promoted_standby() {
    let (dir, repo) = repo_dir();
    // Every node archives; a standby's archive_mode = on takes effect when it is promoted.
    let command = format!("{PGDBRE} wal push --repo {repo} %p");
    let cluster = Cluster::start(
        LabOptions::new(PgInstall::for_tests())
            .replicas(1)
            .setting("archive_mode", "on")
            .setting("archive_command", &command),
    )
    .unwrap();
    let primary = cluster.primary();
    let standby = &cluster.replicas()[0];
    primary
        .psql(
            "CREATE TABLE accounts (id int PRIMARY KEY, balance numeric, note text); \
             INSERT INTO accounts SELECT g, g * 10, md5(g::text) FROM generate_series(1, 20000) g;",
        )
        .unwrap();
    let timeline_1_backup = backup(&repo, primary);

    // More commits on timeline 1, archived and replayed, then a failover.
    primary
        .psql(
            "UPDATE accounts SET balance = balance - 1 WHERE id % 5 = 0; \
             INSERT INTO accounts SELECT g, 0, 'timeline 1' FROM generate_series(20001, 25000) g;",
        )
        .unwrap();
    archive_current_segment(primary);
    cluster.wait_for_replay(Duration::from_secs(60)).unwrap();
    let on_timeline_1 = table_md5(primary);
    primary.stop().unwrap();
    assert_eq!(standby.psql("SELECT pg_promote(true, 60)").unwrap(), "t");
    assert_eq!(timeline(standby), 2);
    assert_eq!(table_md5(standby), on_timeline_1);

    // Commits only timeline 2 has, archived by the promoted node.
    standby
        .psql(
            "DELETE FROM accounts WHERE id % 7 = 0; \
             INSERT INTO accounts SELECT g, 2, 'timeline 2' FROM generate_series(25001, 30000) g;",
        )
        .unwrap();
    let on_timeline_2 = table_md5(standby);
    assert_ne!(on_timeline_2, on_timeline_1);
    archive_current_segment(standby);
    assert!(Path::new(&repo)
        .join("wal/00000002/00000002.history")
        .exists());

    // The timeline-1 backup, recovered to the latest timeline: it follows the switch.
    let restored = restore_and_start(
        &cluster,
        &repo,
        &dir.path().join("from-timeline-1"),
        Some(&timeline_1_backup),
    );
    let node = restored.node();
    assert_eq!(table_md5(node), on_timeline_2, "{}", node.log_contents());
    let log = node.log_contents();
    assert!(
        log.contains("restored log file \"00000002.history\" from archive"),
        "{log}"
    );
    // Recovery ended on timeline 2 and promoted to 3, branching off 2.
    assert_eq!(timeline(node), 3, "{}", node.log_contents());
    let history = node
        .psql("SELECT pg_read_file('pg_wal/00000003.history')")
        .unwrap();
    assert!(
        history.lines().any(|line| line.starts_with("1\t"))
            && history.lines().any(|line| line.starts_with("2\t")),
        "{history}"
    );
    drop(restored);

    // A backup taken on timeline 2 stores its history file and restores exactly.
    let timeline_2_backup = backup(&repo, standby);
    let restored = restore_and_start(
        &cluster,
        &repo,
        &dir.path().join("from-timeline-2"),
        Some(&timeline_2_backup),
    );
    assert_eq!(table_md5(restored.node()), on_timeline_2);
    drop(restored);

    let verify = pgdbre(&["verify", "--repo", &repo]);
    assert!(verify.status.success(), "{}", text(&verify));
}
