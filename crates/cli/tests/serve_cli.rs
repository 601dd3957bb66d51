//! Black-box tests of `pgdbre serve` through the built binary: the endpoints over plain HTTP, a
//! server that dies and comes back, and `/probe` for a second server. The server gets its own
//! cluster because the test kills its primary.

use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `pgdbre serve` child process, killed (and reaped) when dropped, also on a failed assert.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &listen, "--store", "none"])
            .args(args)
            .env_remove("PGPASSWORD")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgdbre serve");
        let mut serve = Serve { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = serve.get("/healthz") {
                return serve;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("pgdbre serve exited early: {status}");
            }
            assert!(Instant::now() < deadline, "/healthz never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain HTTP/1.1 GET: status and body.
    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The value of the first sample line that starts with `prefix` (a name and its labels).
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn pg_up(body: &str) -> Option<f64> {
    sample(body, "pg_up{")
}

/// Percent-encodes a DSN for a query string.
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn serves_metrics_survives_a_dead_server_and_probes_the_replica() {
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1))
        .expect("start a private cluster");
    let primary = cluster.primary();
    let replica = &cluster.replicas()[0];
    let serve = Serve::start(&[
        "--dsn",
        &primary.dsn(),
        "--check-interval",
        "1s",
        "--probe-interval",
        "200ms",
    ]);

    let (status, index) = serve.get("/").expect("GET /");
    assert_eq!(status, 200);
    assert!(
        index.contains("href=\"/metrics\"") && index.contains("/probe"),
        "{index}"
    );

    let body = serve.metrics();
    assert_eq!(pg_up(&body), Some(1.0), "{body}");
    for name in [
        "pg_static{",
        "pg_postmaster_start_time_seconds{",
        "pg_stat_database_xact_commit{",
        "pg_stat_bgwriter_checkpoints_req_total{",
        "pg_database_size_bytes{",
        "pg_locks_count{",
        "pg_stat_activity_count{",
        "pg_replication_lag{",
        "pg_stat_replication_pg_wal_lsn_diff{",
        "pg_replication_slots_active{",
        "pg_stat_archiver_archived_count{",
        "pg_settings_max_connections{",
        "pgdbre_database_xid_age{",
        "pgdbre_standby_lag_bytes{",
        "pgdbre_scrape_duration_seconds{",
    ] {
        assert!(sample(&body, name).is_some(), "no {name} in\n{body}");
    }
    let failed: Vec<_> = body
        .lines()
        .filter(|l| l.starts_with("pgdbre_collector_up{") && l.ends_with(" 0"))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // The catalog runs in the background; its families appear once its first run is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sample(&serve.metrics(), "pgdbre_check_up{").is_none() {
        assert!(Instant::now() < deadline, "no pgdbre_check_up after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The synthetic probes run in the background: commits show up without any scrape asking.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve.metrics().lines().any(|l| {
        l.starts_with("pgdbre_probe_total{")
            && l.contains("probe=\"commit\",result=\"ok\"}")
            && !l.ends_with(" 0")
    }) {
        assert!(
            Instant::now() < deadline,
            "no successful commit probe after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // /probe by DSN: the replica, which is not a configured target.
    let (status, probed) = serve
        .get(&format!("/probe?target={}", encode_query(&replica.dsn())))
        .expect("GET /probe");
    assert_eq!(status, 200, "{probed}");
    assert_eq!(pg_up(&probed), Some(1.0), "{probed}");
    assert_eq!(
        sample(&probed, "pg_replication_is_replica{"),
        Some(1.0),
        "{probed}"
    );
    let (status, _) = serve.get("/probe").expect("GET /probe");
    assert_eq!(status, 400);

    // The server dies: the scrape answers quickly with pg_up 0.
    primary.kill().expect("kill the primary");
    let started = Instant::now();
    let body = serve.metrics();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pg_up(&body), Some(0.0), "{body}");
    assert_eq!(
        sample(&body, "pgdbre_collector_up{server=").map(|v| v as i64),
        Some(0),
        "{body}"
    );
    assert!(sample(&body, "pg_stat_database_xact_commit{").is_none());
    // The probes count the outage as connect errors, served beside pg_up 0.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve
        .metrics()
        .lines()
        .any(|l| l.starts_with("pgdbre_probe_errors_total{") && l.contains("class=\"connect\""))
    {
        assert!(
            Instant::now() < deadline,
            "no connect errors of the probes after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // It comes back: the next scrapes reconnect.
    primary.start().expect("start the primary again");
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg_up(&serve.metrics()) != Some(1.0) {
        assert!(Instant::now() < deadline, "pg_up stayed 0 after restart");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(["serve", "--dsn", "hostt=localhost"])
        .output()
        .expect("run pgdbre");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hostt"));
    let out = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(["serve", "--collector-timeout", "soon"])
        .output()
        .expect("run pgdbre");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
    let out = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(["serve", "--probe-timeout", "0"])
        .output()
        .expect("run pgdbre");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--probe-timeout"));
}

#[test]
fn an_unreachable_server_is_pg_up_0_without_its_password() {
    let secret = "S3cr3t-Pa55word";
    let dsn = format!(
        "postgresql://postgres:{secret}@127.0.0.1:{}/postgres",
        free_port()
    );
    let serve = Serve::start(&["--dsn", &dsn, "--check-interval", "0"]);
    let started = Instant::now();
    let body = serve.metrics();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(pg_up(&body), Some(0.0), "{body}");
    assert!(!body.contains(secret), "{body}");
    let (status, probed) = serve
        .get(&format!("/probe?target={}", encode_query(&dsn)))
        .expect("GET /probe");
    assert_eq!(status, 200);
    assert_eq!(pg_up(&probed), Some(0.0), "{probed}");
    assert!(!probed.contains(secret), "{probed}");
}

#[test]
fn scrapes_pg_stat_statements_and_a_pgbouncer() {
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests())).expect("start a private cluster");
    let primary = cluster.primary();
    let bouncer = pgdbre_lab::Pgbouncer::start(primary).expect("start pgbouncer");
    let admin = bouncer.admin_dsn();
    let serve = Serve::start(&[
        "--dsn",
        &primary.dsn(),
        "--check-interval",
        "0",
        "--pgbouncer",
        &admin,
    ]);
    let body = serve.metrics();
    assert_eq!(sample(&body, "pgbouncer_up{"), Some(1.0), "{body}");
    assert!(
        body.contains("pgbouncer_pools_client_active_connections{"),
        "{body}"
    );
    assert!(
        sample(&body, "pgdbre_stat_statements_calls_total{").is_some(),
        "{body}"
    );
    assert!(body.contains("collector=\"stat-statements\"} 1"), "{body}");

    drop(bouncer);
    let started = Instant::now();
    let body = serve.metrics();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sample(&body, "pgbouncer_up{"), Some(0.0), "{body}");
    assert_eq!(pg_up(&body), Some(1.0), "{body}");

    let out = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(["serve", "--pgbouncer", "host=127.0.0.1 dbname=postgres"])
        .output()
        .expect("run pgdbre");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dbname=pgbouncer"));
}
