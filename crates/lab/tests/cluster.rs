//! Real-server tests of the lab harness itself.

use pgdbre_lab::{testing, wait_until, Cluster, LabOptions, PgInstall};
use std::time::{Duration, Instant};

#[test]
fn shared_cluster_answers_and_isolates_databases() {
    let cluster = testing::shared();
    let primary = cluster.primary();
    assert_eq!(primary.psql("SELECT 1 + 1;").unwrap(), "2");
    let database = testing::fresh_database(cluster);
    primary
        .psql_db(
            &database,
            "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
    assert_eq!(
        primary
            .psql_db(&database, "SELECT count(*) FROM t;")
            .unwrap(),
        "2"
    );
    let extensions = primary
        .psql_db(&database, "SELECT extname FROM pg_extension ORDER BY 1;")
        .unwrap();
    assert!(extensions.contains("pg_stat_statements"), "{extensions}");
    let checksums = primary.psql("SHOW data_checksums;").unwrap();
    assert_eq!(checksums, "on");
}

#[test]
fn primary_writes_reach_the_replica() {
    let started = Instant::now();
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1)).unwrap();
    eprintln!("primary + 1 replica up in {:?}", started.elapsed());
    let primary = cluster.primary();
    let replica = &cluster.replicas()[0];
    assert_eq!(replica.name(), "replica1");
    assert_eq!(replica.psql("SELECT pg_is_in_recovery();").unwrap(), "t");
    primary
        .psql("CREATE TABLE replicated (v text); INSERT INTO replicated VALUES ('hello');")
        .unwrap();
    let seen = wait_until(Duration::from_secs(10), "the row on the replica", || {
        replica.psql("SELECT v FROM replicated;").ok()
    })
    .unwrap();
    assert_eq!(seen, "hello");
}

#[test]
fn background_session_holds_a_lock_until_dropped() {
    let cluster = testing::shared();
    let primary = cluster.primary();
    let database = testing::fresh_database(cluster);
    primary
        .psql_db(&database, "CREATE TABLE locked (id int);")
        .unwrap();
    let session = primary
        .background_session(
            &database,
            "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE;",
        )
        .unwrap();
    let pid = session.pid();
    let holds = format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE l.pid = {pid} AND c.relname = 'locked' AND l.mode = 'AccessExclusiveLock' \
         AND l.granted;"
    );
    assert_eq!(primary.psql_db(&database, &holds).unwrap(), "1");
    let state = format!("SELECT state FROM pg_stat_activity WHERE pid = {pid};");
    assert_eq!(primary.psql(&state).unwrap(), "idle in transaction");

    drop(session);
    wait_until(
        Duration::from_secs(10),
        "the session's backend to exit",
        || {
            let gone = format!("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = {pid};");
            (primary.psql(&gone).ok()? == "t").then_some(())
        },
    )
    .unwrap();
}

#[test]
fn background_session_can_wait_on_a_lock() {
    let cluster = testing::shared();
    let primary = cluster.primary();
    let database = testing::fresh_database(cluster);
    primary
        .psql_db(&database, "CREATE TABLE contended (id int);")
        .unwrap();
    let _holder = primary
        .background_session(&database, "BEGIN; LOCK TABLE contended;")
        .unwrap();
    let mut waiter = primary.background_session(&database, "").unwrap();
    waiter.send("BEGIN; LOCK TABLE contended;").unwrap();
    let waiting = format!(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = {};",
        waiter.pid()
    );
    wait_until(
        Duration::from_secs(10),
        "the second session to wait",
        || (primary.psql(&waiting).ok()? == "Lock").then_some(()),
    )
    .unwrap();
}

#[test]
fn teardown_stops_servers_and_removes_the_dir_even_after_a_panic() {
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests())).unwrap();
        let pid: i32 = cluster
            .primary()
            .psql("SELECT pg_postmaster_start_time() IS NOT NULL;")
            .map(|_| std::fs::read_to_string(cluster.primary().data_dir().join("postmaster.pid")))
            .unwrap()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        seen = Some((cluster.dir().to_path_buf(), pid));
        panic!("deliberate failure inside a test");
    }));
    assert!(outcome.is_err());
    let (dir, pid) = seen.unwrap();
    assert!(!dir.exists(), "{} still exists", dir.display());
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "));
    assert!(!alive, "postmaster {pid} survived the teardown");
}

#[test]
fn settings_apply_and_nodes_restart() {
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("work_mem", "8MB")).unwrap();
    let primary = cluster.primary();
    assert_eq!(primary.psql("SHOW work_mem;").unwrap(), "8MB");
    primary.set_settings(&[("work_mem", "16MB")]).unwrap();
    assert_eq!(primary.psql("SHOW work_mem;").unwrap(), "16MB");
    primary.kill().unwrap();
    assert!(!primary.is_running());
    primary.start().unwrap();
    primary.restart().unwrap();
    assert_eq!(primary.psql("SHOW work_mem;").unwrap(), "16MB");
    assert!(primary.log_contents().contains("database system is ready"));
}

#[test]
fn tls_verifies_against_the_lab_ca() {
    let cluster = testing::shared();
    let Some(ca) = cluster.ca_cert() else {
        eprintln!("skipped: this PostgreSQL build has no TLS");
        return;
    };
    assert!(ca.exists());
    let dsn = format!("{} sslmode=verify-full", cluster.primary().tcp_dsn());
    let output = std::process::Command::new(cluster.install().bindir.join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();",
            &dsn,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "t");
}

#[test]
fn every_installed_major_starts_with_a_replica() {
    for install in PgInstall::all() {
        let major = install.major;
        let started = Instant::now();
        let cluster = Cluster::start(LabOptions::new(install).replicas(2))
            .unwrap_or_else(|error| panic!("PostgreSQL {major}: {error}"));
        eprintln!(
            "PostgreSQL {major}: primary + 2 replicas up in {:?}",
            started.elapsed()
        );
        let version = cluster.primary().psql("SHOW server_version_num;").unwrap();
        assert!(version.starts_with(&major.to_string()), "{version}");
        cluster
            .primary()
            .psql("CREATE TABLE t AS SELECT 1 AS x;")
            .unwrap();
        cluster.wait_for_replay(Duration::from_secs(10)).unwrap();
        for replica in cluster.replicas() {
            assert_eq!(replica.psql("SELECT x FROM t;").unwrap(), "1");
        }
        let archived = wait_until(Duration::from_secs(10), "a WAL segment archived", || {
            cluster.primary().psql("SELECT pg_switch_wal();").ok()?;
            let count = cluster
                .primary()
                .psql("SELECT archived_count FROM pg_stat_archiver;")
                .ok()?;
            (count != "0").then_some(count)
        })
        .unwrap();
        assert_ne!(archived, "0");
    }
}
