//! Faults under a running `pgdbre serve`, through the built binary: a failover. The primary
//! stops and the standby is promoted; the exporter must report the promoted node as a primary on
//! the same session, stay up, and start the commit probe that only primaries get. Own cluster:
//! the test stops its primary and promotes its replica.

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
    fn start(dsns: &[String]) -> Serve {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--store", "none", "--check-interval", "0"])
            .args(["--probe-interval", "200ms"])
            .args(dsns.iter().flat_map(|dsn| ["--dsn", dsn]))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgdbre serve");
        Serve { child, port }
    }

    /// GET /metrics; `None` while the server is not answering yet.
    fn metrics(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// Polls /metrics until `done` holds; panics with the last body at the deadline or when
    /// serve exits.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgdbre serve exited while waiting for {what}: {status}");
            }
            if let Some(body) = self.metrics() {
                if done(&body) {
                    return body;
                }
                last = body;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; last /metrics:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample of `family` for the server on `port` (its `server` label is
/// `host:port/dbname`).
fn sample(body: &str, family: &str, port: u16) -> Option<f64> {
    let server = format!(":{port}/");
    body.lines()
        .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&server))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Successful probes of `probe` on the server on `port` so far (0 before the first).
fn probes_ok(body: &str, probe: &str, port: u16) -> f64 {
    let server = format!(":{port}/");
    body.lines()
        .filter(|l| {
            l.starts_with("pgdbre_probe_total{")
                && l.contains(&server)
                && l.contains(&format!("probe=\"{probe}\""))
                && l.contains("result=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_standby_promoted_under_serve_is_reported_as_primary_and_gets_the_commit_probe() {
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1))
        .expect("start a private cluster");
    let primary = cluster.primary();
    let replica = &cluster.replicas()[0];
    let mut serve = Serve::start(&[primary.dsn(), replica.dsn()]);
    let port = replica.port();

    // The standby reads the heartbeat the primary's commit probe writes.
    let before = serve.wait_for(
        "the standby reported as a replica with read probes",
        |body| {
            sample(body, "pg_up", port) == Some(1.0)
                && sample(body, "pg_replication_is_replica", port) == Some(1.0)
                && probes_ok(body, "read", port) > 0.0
        },
    );
    // A standby gets no commit probe.
    assert_eq!(probes_ok(&before, "commit", port), 0.0, "{before}");

    // Failover: the primary goes away, the standby is promoted.
    primary.stop().expect("stop the primary");
    let promoted = replica
        .psql("SELECT pg_promote()")
        .expect("promote the standby");
    assert!(promoted.contains('t'), "pg_promote() returned {promoted}");

    let after = serve.wait_for("the promoted node reported as a primary", |body| {
        sample(body, "pg_replication_is_replica", port) == Some(0.0)
    });
    assert_eq!(sample(&after, "pg_up", port), Some(1.0), "{after}");
    assert_eq!(
        sample(&after, "pg_up", primary.port()),
        Some(0.0),
        "the stopped primary is down: {after}"
    );
    // The probes follow the new role: commits now succeed on the new primary.
    serve.wait_for("a successful commit probe on the new primary", |body| {
        sample(body, "pg_up", port) == Some(1.0) && probes_ok(body, "commit", port) > 0.0
    });
}
