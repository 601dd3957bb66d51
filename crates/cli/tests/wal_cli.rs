//! `pgdbre wal push` as a real server's `archive_command` and `pgdbre wal fetch` as a restored
//! server's `restore_command`, through the built binary: archiving keeps up with a pgbench write
//! load, point-in-time recovery between two batches of commits restores exactly the first, and
//! the exit codes PostgreSQL acts on (quiet miss, loud refusal, integrity failure), and push-ahead
//! and prefetch against a real S3-compatible server.

use pgdbre_lab::restored::{server_owner, RestoredServer};
use pgdbre_lab::{wait_until, Cluster, LabOptions, Node, PgInstall};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        .prefix("pgdbre-wal-cli-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (uid, gid) = server_owner().unwrap();
    std::os::unix::fs::chown(&repo, Some(uid), Some(gid)).unwrap();
    (dir, repo.display().to_string())
}

/// A server archiving every WAL file into `repo` with `pgdbre wal push`.
fn archiving_cluster(repo: &str) -> Cluster {
    let command = format!("{PGDBRE} wal push --repo {repo} %p");
    Cluster::start(
        LabOptions::new(PgInstall::for_tests())
            .setting("archive_mode", "on")
            .setting("archive_command", &command)
            .setting("max_wal_size", "256MB"),
    )
    .unwrap()
}

/// `(archived_count, failed_count, last_archived_wal)` from `pg_stat_archiver`.
fn archiver(node: &Node) -> (u64, u64, String) {
    let row = node
        .psql("SELECT archived_count, failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        .unwrap();
    let fields: Vec<&str> = row.split('|').collect();
    (
        fields[0].parse().unwrap(),
        fields[1].parse().unwrap(),
        fields[2].to_string(),
    )
}

/// WAL files waiting for the archiver.
fn ready_backlog(node: &Node) -> usize {
    std::fs::read_dir(node.data_dir().join("pg_wal/archive_status"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(".ready"))
                .count()
        })
        .unwrap_or(0)
}

/// Switches to a new segment and waits until the finished one is archived.
fn archive_current_segment(node: &Node) {
    let segment = node
        .psql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        &format!("{segment} archived"),
        || {
            let (_, failed, last) = archiver(node);
            assert_eq!(
                failed,
                0,
                "archive_command failed:\n{}",
                node.log_contents()
            );
            (last.as_str() >= segment.as_str()).then_some(())
        },
    )
    .unwrap();
}

fn pgbench(node: &Node, args: &[&str]) {
    let output = Command::new(node.install().bindir.join("pgbench"))
        .args(args)
        .arg(node.dsn())
        .output()
        .expect("run pgbench");
    assert!(
        output.status.success(),
        "pgbench {args:?}: {}",
        text(&output)
    );
}

fn table_md5(node: &Node, table: &str) -> String {
    node.psql(&format!(
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"
    ))
    .unwrap()
}

#[test]
fn archiving_keeps_up_with_a_pgbench_write_load() {
    let (_dir, repo) = repo_dir();
    let cluster = archiving_cluster(&repo);
    let primary = cluster.primary();

    // Sample the .ready backlog while the load runs (a measurement, not a synchronisation).
    let stop = Arc::new(AtomicBool::new(false));
    let worst_backlog = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, worst) = (stop.clone(), worst_backlog.clone());
        let status = primary.data_dir().join("pg_wal/archive_status");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let backlog = std::fs::read_dir(&status)
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter(|e| e.file_name().to_string_lossy().ends_with(".ready"))
                            .count()
                    })
                    .unwrap_or(0);
                worst.fetch_max(backlog, Ordering::Relaxed);
                std::thread::park_timeout(Duration::from_millis(50));
            }
        })
    };
    let began = Instant::now();
    let start_lsn = primary.psql("SELECT pg_current_wal_lsn()").unwrap();
    pgbench(primary, &["-i", "-q", "-s", "10"]);
    pgbench(primary, &["-T", "10", "-c", "4", "-j", "2", "-n"]);
    let wal_bytes: f64 = primary
        .psql(&format!(
            "SELECT pg_current_wal_lsn() - '{start_lsn}'::pg_lsn"
        ))
        .unwrap()
        .parse()
        .unwrap();
    let load_seconds = began.elapsed().as_secs_f64();
    archive_current_segment(primary);
    let drained_after = began.elapsed().as_secs_f64() - load_seconds;
    stop.store(true, Ordering::Relaxed);
    sampler.thread().unpark();
    sampler.join().unwrap();

    let (archived, failed, _) = archiver(primary);
    assert_eq!(failed, 0, "{}", primary.log_contents());
    let segments = wal_bytes / f64::from(16 << 20);
    assert!(
        archived as f64 >= segments,
        "archived {archived} of ~{segments:.0} segments"
    );
    assert_eq!(ready_backlog(primary), 0);
    let worst = worst_backlog.load(Ordering::Relaxed);
    eprintln!(
        "wal push: {archived} files ({:.0} MB of WAL) in {load_seconds:.1} s of load, {:.1} MB/s of WAL; \
         worst .ready backlog {worst}; drained {drained_after:.1} s after the load",
        wal_bytes / 1e6,
        wal_bytes / 1e6 / load_seconds
    );
    // Keeping up: the backlog stays within a few push-ahead batches, never grows unbounded.
    assert!(
        worst <= 40,
        "the archiver fell behind: {worst} files waiting"
    );
    let stored = count_files(Path::new(&repo).join("wal").as_path());
    assert!(
        stored as u64 >= archived,
        "{stored} objects for {archived} archived files"
    );
}

#[test]
fn point_in_time_recovery_restores_exactly_the_first_batch() {
    let (dir, repo) = repo_dir();
    let cluster = archiving_cluster(&repo);
    let primary = cluster.primary();
    let backup = pgdbre(&["backup", "--repo", &repo, "--fast", &primary.dsn()]);
    assert!(backup.status.success(), "{}", text(&backup));

    primary
        .psql("CREATE TABLE orders (id int PRIMARY KEY, amount numeric, note text); \
               INSERT INTO orders SELECT g, g * 1.5, md5(g::text) FROM generate_series(1, 50000) g;")
        .unwrap();
    let after_a = table_md5(primary, "orders");
    let target_time = primary.psql("SELECT clock_timestamp()").unwrap();
    primary
        .psql(
            "UPDATE orders SET amount = amount + 1 WHERE id % 3 = 0; \
               INSERT INTO orders SELECT g, 0, 'batch b' FROM generate_series(50001, 60000) g; \
               DELETE FROM orders WHERE id % 7 = 0;",
        )
        .unwrap();
    assert_ne!(table_md5(primary, "orders"), after_a);
    archive_current_segment(primary);

    let pgdata = dir.path().join("restored");
    let restore = pgdbre(&[
        "restore",
        "--repo",
        &repo,
        "--pgdata",
        &pgdata.display().to_string(),
        "--owner",
        "postgres",
        "--target-time",
        &target_time,
        "--target-action",
        "promote",
    ]);
    assert!(restore.status.success(), "{}", text(&restore));
    let server = RestoredServer::start(cluster.install(), &pgdata, primary.passfile()).unwrap();
    server
        .wait_for_promotion(Duration::from_secs(120))
        .unwrap_or_else(|error| panic!("{error}\n{}", server.node().log_contents()));
    assert_eq!(
        table_md5(server.node(), "orders"),
        after_a,
        "{}",
        server.node().log_contents()
    );
    // Recovery fetched through the spool: segments were fetched ahead of the request.
    let log = server.node().log_contents();
    assert!(log.contains("restored log file"), "{log}");

    // One backup: a dry run keeps it and deletes nothing.
    let objects = count_files(Path::new(&repo));
    let expire = pgdbre(&["expire", "--repo", &repo, "--retain-full", "1", "--dry-run"]);
    assert!(expire.status.success(), "{}", text(&expire));
    let report = String::from_utf8_lossy(&expire.stdout);
    assert!(
        report.contains("no backup expired") && report.contains("retained 1 backup(s)"),
        "{report}"
    );
    assert_eq!(count_files(Path::new(&repo)), objects);
    let zero = pgdbre(&["expire", "--repo", &repo, "--retain-full", "0"]);
    assert_eq!(zero.status.code(), Some(3), "{}", text(&zero));
}

#[test]
fn push_and_fetch_exit_codes_are_what_postgresql_expects() {
    let (dir, repo) = repo_dir();
    // Segments come from a server that does not archive; the binary is called by hand.
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("wal_keep_size", "1GB"))
            .unwrap();
    let primary = cluster.primary();
    primary
        .psql("CREATE TABLE w (x int); INSERT INTO w VALUES (1);")
        .unwrap();
    let name = primary
        .psql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let segment = pg_wal.join(&name);
    std::fs::copy(primary.data_dir().join("pg_wal").join(&name), &segment).unwrap();
    let segment_arg = segment.display().to_string();

    for _ in 0..2 {
        let pushed = pgdbre(&["wal", "push", "--repo", &repo, &segment_arg]);
        assert!(pushed.status.success(), "{}", text(&pushed));
    }
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100_000] ^= 0xFF;
    std::fs::write(&segment, &bytes).unwrap();
    let refused = pgdbre(&["wal", "push", "--repo", &repo, &segment_arg]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&name) && stderr.contains(&repo), "{stderr}");

    // The repository location may come from the environment, as archive_command has it.
    let restore_wal = dir.path().join("restore/pg_wal");
    std::fs::create_dir_all(&restore_wal).unwrap();
    let destination = restore_wal.join("RECOVERYXLOG").display().to_string();
    let missing = Command::new(PGDBRE)
        .args(["wal", "fetch", "0000000100000000000000FE", &destination])
        .env("PGDBRE_REPO", &repo)
        .env_remove("PGDBRE_REPO_KEY")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        missing.stderr.is_empty() && missing.stdout.is_empty(),
        "{}",
        text(&missing)
    );

    let fetched = pgdbre(&["wal", "fetch", "--repo", &repo, &name, &destination]);
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert_eq!(
        std::fs::read(&destination).unwrap(),
        std::fs::read(primary.data_dir().join("pg_wal").join(&name)).unwrap()
    );

    let object = Path::new(&repo).join("wal/00000001").join(&name);
    let mut stored = std::fs::read(&object).unwrap();
    let middle = stored.len() / 2;
    stored[middle] ^= 0x40;
    std::fs::write(&object, &stored).unwrap();
    std::fs::remove_dir_all(restore_wal.join("pgdbre-spool")).unwrap();
    let corrupt = pgdbre(&[
        "wal",
        "fetch",
        "--repo",
        &repo,
        "--prefetch",
        "0",
        &name,
        &destination,
    ]);
    assert_eq!(corrupt.status.code(), Some(126), "{}", text(&corrupt));
    assert!(
        String::from_utf8_lossy(&corrupt.stderr).contains(&format!("wal/00000001/{name}")),
        "{}",
        text(&corrupt)
    );

    // A restore_command pointing at no repository must stop recovery, not end it early.
    let nowhere = dir.path().join("no-repo").display().to_string();
    let no_repo = pgdbre(&["wal", "fetch", "--repo", &nowhere, &name, &destination]);
    assert_eq!(no_repo.status.code(), Some(126), "{}", text(&no_repo));

    let bad_name = pgdbre(&[
        "wal",
        "fetch",
        "--repo",
        &repo,
        "RECOVERYHISTORY",
        &destination,
    ]);
    assert_eq!(bad_name.status.code(), Some(3), "{}", text(&bad_name));
}

fn count_files(dir: &Path) -> usize {
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
            } else {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn push_ahead_and_prefetch_through_a_real_s3_server() {
    let s3 = pgdbre_lab::S3Server::start().unwrap();
    let repo = s3.url("wal-cli");
    let with_s3 = |args: &[&str]| {
        Command::new(PGDBRE)
            .args(args)
            .envs(s3.env())
            .env_remove("PGDBRE_REPO")
            .env_remove("PGDBRE_REPO_KEY")
            .output()
            .unwrap()
    };
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("wal_keep_size", "1GB"))
            .unwrap();
    let primary = cluster.primary();
    primary.psql("CREATE TABLE w (x int)").unwrap();
    let names: Vec<String> = (0..4)
        .map(|_| {
            primary
                .psql("INSERT INTO w VALUES (1); SELECT pg_walfile_name(pg_switch_wal());")
                .unwrap()
        })
        .collect();
    let dir = tempfile::Builder::new()
        .prefix("pgdbre-wal-s3-")
        .tempdir_in("/tmp")
        .unwrap();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    for name in &names {
        std::fs::copy(
            primary.data_dir().join("pg_wal").join(name),
            pg_wal.join(name),
        )
        .unwrap();
        std::fs::write(
            pg_wal.join("archive_status").join(format!("{name}.ready")),
            b"",
        )
        .unwrap();
    }
    let path = |name: &str| pg_wal.join(name).display().to_string();

    let first = with_s3(&[
        "wal",
        "push",
        "--repo",
        &repo,
        "--jobs",
        "2",
        &path(&names[0]),
    ]);
    assert!(first.status.success(), "{}", text(&first));
    // The call started a background worker for the other `.ready` files; it acknowledges each
    // in the spool once stored.
    for name in &names[1..] {
        let ack = pg_wal.join("pgdbre-spool/push").join(format!("{name}.ok"));
        wait_until(
            Duration::from_secs(60),
            &format!("{name} pushed ahead"),
            || ack.is_file().then_some(()),
        )
        .unwrap();
    }
    for name in &names {
        let pushed = with_s3(&["wal", "push", "--repo", &repo, &path(name)]);
        assert!(pushed.status.success(), "{name}: {}", text(&pushed));
    }

    let restore_wal = dir.path().join("restore/pg_wal");
    std::fs::create_dir_all(&restore_wal).unwrap();
    let destination = restore_wal.join("RECOVERYXLOG").display().to_string();
    let fetched = with_s3(&[
        "wal",
        "fetch",
        "--repo",
        &repo,
        "--prefetch",
        "2",
        &names[0],
        &destination,
    ]);
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert_eq!(
        std::fs::read(&destination).unwrap(),
        std::fs::read(primary.data_dir().join("pg_wal").join(&names[0])).unwrap()
    );
    for name in &names[1..3] {
        assert!(
            restore_wal.join("pgdbre-spool/fetch").join(name).is_file(),
            "{name} not prefetched"
        );
    }
    let missing = with_s3(&[
        "wal",
        "fetch",
        "--repo",
        &repo,
        "0000000100000000000000FE",
        &destination,
    ]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(missing.stderr.is_empty(), "{}", text(&missing));
}
