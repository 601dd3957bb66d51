//! `pgdbre drill` through the built binary against the shared lab cluster: a backup of it is
//! drilled into a scratch server; the verdict, RTO/RPO, the evidence row in the state store,
//! `--history`, and the restore-time SLO that counts the drill. Failures: a missed RTO target and
//! a corrupted repository, each recorded as a failed drill, with the scratch directory removed.
//! With a real WAL archive (`wal push` as `archive_command`): a drill to a time between two batches
//! of commits recovers exactly the first, and its RPO is measured against that time. A cluster
//! with a tablespace is drilled next to itself (the tablespace restored into the scratch).

use pgdbre_backup::wal::Lsn;
use pgdbre_backup::{backup, BackupOptions};
use pgdbre_lab::restored::server_owner;
use pgdbre_lab::testing::{fresh_database, shared};
use pgdbre_lab::{wait_until, Cluster, LabOptions, Node, PgInstall};
use pgdbre_pg::ConnConfig;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
        .env("NO_COLOR", "1")
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

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}\n{}", text(output)))
}

/// One test's files: the repository, the state store, the drills' work directory. The server
/// user must be able to enter it (tempfile makes 0700 directories).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("pgdbre-drill-test-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let fixture = Fixture { dir };
        std::fs::create_dir(fixture.work_dir()).unwrap();
        std::fs::set_permissions(fixture.work_dir(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        fixture
    }

    fn repo(&self) -> String {
        self.dir.path().join("repo").display().to_string()
    }

    fn store(&self) -> String {
        self.dir.path().join("state.db").display().to_string()
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A full backup of the shared cluster's primary; its label.
    fn backup(&self) -> String {
        self.backup_of(shared().primary())
    }

    /// A full backup of `primary`; its label.
    fn backup_of(&self, primary: &Node) -> String {
        let connection = ConnConfig::resolve_with_env(Some(&primary.dsn()), &|_| None).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let summary = runtime
            .block_on(backup(&connection, BackupOptions::new(&self.repo())))
            .unwrap_or_else(|error| panic!("backup: {error}"));
        summary.manifest.label
    }

    /// `pgdbre drill` on this fixture's repository, store and work directory, plus `args`.
    fn drill(&self, args: &[&str]) -> Output {
        let (repo, store, work) = (self.repo(), self.store(), self.work_dir());
        let mut all = vec![
            "drill",
            "--repo",
            &repo,
            "--store",
            &store,
            "--work-dir",
            work.to_str().unwrap(),
            "--timeout",
            "5m",
        ];
        all.extend_from_slice(args);
        pgdbre(&all)
    }

    /// The drills recorded in the store, as `--history --output json` lists them.
    fn history(&self) -> Vec<Value> {
        let out = pgdbre(&[
            "drill",
            "--history",
            "--store",
            &self.store(),
            "--output",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        json(&out).as_array().unwrap().clone()
    }

    /// Whatever the drills left in the work directory (nothing, unless --keep).
    fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.work_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }
}

fn lsn(value: &Value) -> Lsn {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not an LSN: {value}"))
        .parse()
        .unwrap()
}

#[test]
fn drill_passes_records_evidence_and_feeds_the_restore_time_slo() {
    let cluster = shared();
    let db = fresh_database(cluster);
    cluster
        .primary()
        .psql_db(&db, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1000);")
        .unwrap();
    let fixture = Fixture::new();
    let label = fixture.backup();

    let out = fixture.drill(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["verdict"], "pass", "{report:#}");
    assert_eq!(report["backup_label"], label.as_str());
    assert_eq!(report["target"], "latest");
    let major = PgInstall::for_tests().major;
    assert!(
        report["pg_version"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{major}.")),
        "{report:#}"
    );
    let rto = report["rto_seconds"].as_f64().unwrap();
    assert!(rto > 0.0 && rto < 300.0, "RTO {rto}");
    let phases = &report["phases"];
    let phase_sum: f64 = ["restore_seconds", "startup_seconds", "recovery_seconds"]
        .iter()
        .map(|phase| {
            phases[phase]
                .as_f64()
                .unwrap_or_else(|| panic!("{phase}: {report:#}"))
        })
        .sum();
    assert!(
        phase_sum <= rto,
        "phases {phase_sum} s exceed the RTO {rto} s"
    );
    let rpo = &report["rpo"];
    let rpo_seconds = rpo["seconds"].as_f64().unwrap();
    assert!((0.0..600.0).contains(&rpo_seconds), "{rpo:#}");
    assert_eq!(rpo["reference"], "drill_start");
    // Recovery replayed at least up to the end of the backup.
    assert!(
        lsn(&report["replay_lsn"]) >= lsn(&report["backup_stop_lsn"]),
        "{report:#}"
    );
    let smoke = report["smoke"].as_array().unwrap();
    let ours = smoke
        .iter()
        .find(|result| result["database"] == db.as_str())
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        ours["detail"]
            .as_str()
            .unwrap()
            .ends_with(", 1 user tables"),
        "{ours}"
    );
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());

    let history = fixture.history();
    assert_eq!(history.len(), 1, "{history:#?}");
    let evidence = &history[0];
    assert_eq!(evidence["id"], report["evidence_id"]);
    assert_eq!(evidence["backup_label"], label.as_str());
    assert_eq!(evidence["verdict"], "pass");
    assert_eq!(evidence["rto_seconds"], report["rto_seconds"]);
    assert_eq!(evidence["replay_lsn"], report["replay_lsn"]);
    assert!(
        !evidence["log_excerpt"].as_array().unwrap().is_empty(),
        "{evidence:#}"
    );
    let listed = pgdbre(&["drill", "--history", "--store", &fixture.store()]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&format!("pass     {label}")),
        "{}",
        text(&listed)
    );

    let spec = fixture.dir.path().join("slo.yaml");
    std::fs::write(
        &spec,
        "service: app\nslos:\n  - name: restore\n    sli: restore_time\n    target: \"< 10m\"\n    window: 7d\n",
    )
    .unwrap();
    let out = pgdbre(&[
        "slo",
        "status",
        spec.to_str().unwrap(),
        "--store",
        &fixture.store(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = json(&out);
    let restore = &status["slos"][0];
    assert_eq!(
        (restore["good"].as_u64(), restore["total"].as_u64()),
        (Some(1), Some(1)),
        "{status:#}"
    );
    assert_eq!(restore["status"], "met", "{status:#}");
}

#[test]
fn drill_to_a_time_between_two_batches_recovers_the_first_and_measures_the_rpo() {
    let fixture = Fixture::new();
    // The archive_command runs as the server user, which must own the repository.
    std::fs::create_dir(Path::new(&fixture.repo())).unwrap();
    let (uid, gid) = server_owner().unwrap();
    std::os::unix::fs::chown(fixture.repo(), Some(uid), Some(gid)).unwrap();
    let command = format!(
        "{} wal push --repo {} %p",
        env!("CARGO_BIN_EXE_pgdbre"),
        fixture.repo()
    );
    let cluster = Cluster::start(
        LabOptions::new(PgInstall::for_tests())
            .setting("archive_mode", "on")
            .setting("archive_command", &command),
    )
    .unwrap();
    let primary = cluster.primary();
    let out = pgdbre(&[
        "backup",
        "--repo",
        &fixture.repo(),
        "--fast",
        &primary.dsn(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    primary
        .psql("CREATE TABLE batches (id int PRIMARY KEY, batch text); INSERT INTO batches SELECT g, 'a' FROM generate_series(1, 100) g;")
        .unwrap();
    let target_time = primary.psql("SELECT clock_timestamp()").unwrap();
    primary
        .psql("INSERT INTO batches SELECT g, 'b' FROM generate_series(101, 150) g;")
        .unwrap();
    let segment = primary
        .psql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        &format!("{segment} archived"),
        || {
            let last = primary
                .psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
                .ok()?;
            (last.as_str() >= segment.as_str()).then_some(())
        },
    )
    .unwrap_or_else(|error| panic!("{error}\n{}", primary.log_contents()));

    // The smoke SQL divides by zero unless exactly batch a is there.
    let only_a = "SELECT 1 / (count(*) FILTER (WHERE batch = 'a') = 100 AND count(*) = 100)::int FROM batches";
    let out = fixture.drill(&[
        "--target-time",
        &target_time,
        "--smoke-sql",
        only_a,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        report["smoke"][0]["detail"], "custom SQL ok, 1 rows",
        "{report:#}"
    );
    let rpo = &report["rpo"];
    assert_eq!(rpo["reference"], "target_time", "{rpo:#}");
    assert_eq!(rpo["recovered_to"], "last_replayed_commit", "{rpo:#}");
    let seconds = rpo["seconds"].as_f64().unwrap();
    // Batch a committed just before the target time was read.
    assert!((0.0..10.0).contains(&seconds), "{rpo:#}");
    assert!(
        rpo["recovered_to_unix_ms"].as_i64() <= rpo["reference_unix_ms"].as_i64(),
        "{rpo:#}"
    );

    // To the end of the archive: batch b too, replayed past the backup.
    let both = "SELECT 1 / (count(*) = 150)::int FROM batches";
    let out = fixture.drill(&["--smoke-sql", both, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let latest = json(&out);
    assert_eq!(latest["rpo"]["reference"], "drill_start");
    assert!(
        latest["rpo"]["recovered_to_unix_ms"].as_i64() > rpo["recovered_to_unix_ms"].as_i64(),
        "{latest:#}"
    );
    assert!(
        lsn(&latest["replay_lsn"]) > lsn(&report["replay_lsn"]),
        "{latest:#}"
    );
    assert_eq!(fixture.history().len(), 2);
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());
}

#[test]
fn a_drill_restores_tablespaces_into_its_scratch_directory() {
    // Its own server: the shared one must not get a tablespace.
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-drill-tblspc"))
            .unwrap();
    let primary = cluster.primary();
    let fixture = Fixture::new();
    let location = fixture.dir.path().join("tablespace");
    std::fs::create_dir(&location).unwrap();
    let (uid, gid) = server_owner().unwrap();
    std::os::unix::fs::chown(&location, Some(uid), Some(gid)).unwrap();
    primary
        .psql(&format!(
            "CREATE TABLESPACE extra LOCATION '{}'; \
             CREATE TABLE t (id int) TABLESPACE extra; \
             INSERT INTO t SELECT generate_series(1, 1000);",
            location.display()
        ))
        .unwrap();
    fixture.backup_of(primary);

    // The live tablespace directory is in use; the drill restores into its scratch instead.
    let out = fixture.drill(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["verdict"], "pass", "{}", text(&out));
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());
    assert_eq!(primary.psql("SELECT count(*) FROM t").unwrap(), "1000");
}

#[test]
fn a_missed_rto_target_fails_the_drill() {
    let fixture = Fixture::new();
    let label = fixture.backup();
    let out = fixture.drill(&["--target", "immediate", "--rto-target", "1ms", "--keep"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("pgdbre drill: FAIL: backup {label}")),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("exceeds target 1 ms"), "{}", text(&out));
    assert!(stdout.contains("  reason:   RTO "), "{}", text(&out));
    assert!(stdout.contains("  evidence  drill #"), "{}", text(&out));

    let history = fixture.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["verdict"], "fail");
    assert_eq!(history[0]["target"], "immediate");
    assert_eq!(history[0]["rto_target_seconds"], 0.001);
    assert!(
        history[0]["rto_seconds"].as_f64().unwrap() > 0.001,
        "{:#}",
        history[0]
    );
    assert!(
        history[0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("RTO "),
        "{:#}",
        history[0]
    );
    // --keep: the scratch directory stays, with the restored data and the server's log, stopped.
    let kept = fixture.leftovers();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        stdout.contains(&format!("  kept      {}", kept[0].display())),
        "{}",
        text(&out)
    );
    assert!(kept[0].join("pgdata/PG_VERSION").is_file());
    assert!(
        !kept[0].join("pgdata/postmaster.pid").exists(),
        "the kept server still runs"
    );
    let log = std::fs::read_to_string(kept[0].join("server.log")).unwrap();
    assert!(log.contains("database system is shut down"), "{log}");
}

#[test]
fn a_corrupted_repository_fails_cleanly_and_is_recorded() {
    let fixture = Fixture::new();
    let label = fixture.backup();
    let packs = blocks_under(&Path::new(&fixture.repo()).join("packs"));
    // The middle of the largest pack: a block of relation data, which the restore must read.
    let block = packs
        .iter()
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(block).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(block, bytes).unwrap();

    let out = fixture.drill(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("restore failed: object packs/"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("is corrupt"), "{}", text(&out));
    assert!(stdout.contains("RTO       not reached"), "{}", text(&out));
    assert!(
        fixture.leftovers().is_empty(),
        "scratch left behind: {:?}",
        fixture.leftovers()
    );

    let history = fixture.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["verdict"], "fail");
    assert_eq!(history[0]["backup_label"], label.as_str());
    assert_eq!(history[0]["rto_seconds"], Value::Null);
    assert!(
        history[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("corrupt"),
        "{:#}",
        history[0]
    );
}

#[test]
fn bad_input_is_exit_3() {
    let out = pgdbre(&[
        "drill",
        "--repo",
        "/nonexistent",
        "--rto-target",
        "soon",
        "--store",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--rto-target: invalid duration"),
        "{}",
        text(&out)
    );
    let out = pgdbre(&["drill", "--history", "--store", "none"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

fn blocks_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
