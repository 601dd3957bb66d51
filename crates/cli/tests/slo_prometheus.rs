//! `pgdbre slo status --prometheus` and `pgdbre gate --prometheus` against a real Prometheus
//! (Debian package `prometheus`) scraping a real `pgdbre serve` that probes a lab primary and its
//! standby; then the primary stops and the error-rate SLO must burn. Plus the failures: nothing
//! listening, and a server that is not Prometheus.

use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Error rate under 5 %, reads within 2.5 s (beyond the probe timeout: every successful read is
/// good), lag at most 5 s. Low objectives and min_events so a minute of probes is enough.
const SPEC: &str = "\
service: lab
alerting:
  windows:
    - {severity: ticket, long: 1h, short: 5m, burn_rate: 2}
slos:
  - name: availability
    sli: error_rate
    target: \"< 5\"
    window: 30d
    min_events: 20
  - name: read-latency
    sli: read_latency_p99
    target: \"< 2500\"
    objective: 90
    window: 30d
    min_events: 20
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
    min_events: 1
burn_policies:
  - if_burn_rate: \"> 1x\"
    over: 5m
    slo: availability
    action: freeze-deploys
";

/// A child process (serve, Prometheus) killed and reaped when dropped, also on a failed assert.
struct Daemon {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Daemon {
    fn spawn(name: &'static str, command: &mut Command, port: u16) -> Daemon {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { name, child, port }
    }

    /// Polls `path` until it answers 200.
    fn wait_ready(&mut self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http_get(self.port, path) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} never answered {path}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A plain HTTP/1.1 GET: status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
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

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
        .env("NO_COLOR", "1")
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

/// `pgdbre slo status --prometheus URL --output json`, parsed.
fn status_json(spec: &Path, prometheus: &str) -> serde_json::Value {
    let out = pgdbre(&[
        "slo",
        "status",
        spec.to_str().unwrap(),
        "--prometheus",
        prometheus,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn slo<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no SLO {name} in {status}"))
}

fn burn<'a>(slo: &'a serde_json::Value, window: &str) -> &'a serde_json::Value {
    slo["burn_rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["window"] == window)
        .unwrap_or_else(|| panic!("no {window} burn window in {slo}"))
}

/// Re-runs `slo status` until `done` holds (or panics with the last answer at the deadline).
fn poll_status(
    spec: &Path,
    prometheus: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = status_json(spec, prometheus);
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never {what}: {status:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn slo_status_and_gate_read_a_real_prometheus() {
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1))
        .expect("start a private cluster");
    let primary = cluster.primary();
    let replica = &cluster.replicas()[0];
    let dir = tempfile::tempdir().unwrap();

    let serve_port = free_port();
    let mut serve = Daemon::spawn(
        "pgdbre serve",
        Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &format!("127.0.0.1:{serve_port}")])
            .args(["--store", "none", "--check-interval", "0"])
            .args(["--probe-interval", "100ms", "--connect-timeout", "1s"])
            .args(["--dsn", &primary.dsn(), "--dsn", &replica.dsn()]),
        serve_port,
    );
    serve.wait_ready("/healthz");

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pgdbre\n    static_configs:\n      \
             - targets: ['127.0.0.1:{serve_port}']\n"
        ),
    )
    .unwrap();
    let prometheus_port = free_port();
    let mut prometheus = Daemon::spawn(
        "prometheus",
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}")),
        prometheus_port,
    );
    prometheus.wait_ready("/-/ready");
    let url = prometheus.url();
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, SPEC).unwrap();

    // Healthy: once Prometheus holds enough probe samples, reads are known and met. A lag
    // minute counts once the 1m subquery has a step after the first sample (up to a minute).
    let status = poll_status(&spec, &url, "enough probes and a lag minute", |s| {
        slo(s, "read-latency")["total"].as_u64().unwrap_or(0) >= 20
            && slo(s, "availability")["total"].as_u64().unwrap_or(0) >= 20
            && slo(s, "lag")["total"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(status["prometheus"], url, "{status:#}");
    let reads = slo(&status, "read-latency");
    assert_eq!(reads["status"], "met", "{status:#}");
    assert!(reads["sli"].as_f64().unwrap() >= 0.9, "{status:#}");
    assert!(
        reads["budget"]["remaining"].as_f64().is_some(),
        "{status:#}"
    );
    let availability = slo(&status, "availability");
    assert_eq!(availability["status"], "met", "{status:#}");
    // The 5m burn window holds the same probes as the 30d window (Prometheus is minutes old).
    let five = burn(availability, "5m");
    assert!(five["total"].as_u64().unwrap() >= 20, "{status:#}");
    assert!(five["burn_rate"].as_f64().unwrap() < 1.0, "{status:#}");
    // Lag: minutes with a sample are counted; the rest of the 30 days is missing, so unknown.
    let lag = slo(&status, "lag");
    assert_eq!(lag["status"], "unknown", "{status:#}");
    assert!(
        lag["reason"]
            .as_str()
            .unwrap()
            .contains("time slices have no sample"),
        "{status:#}"
    );
    // The standby keeps up: every observed minute is good.
    assert_eq!(lag["good"], lag["total"], "{status:#}");

    let gate = |extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--policy",
            spec.to_str().unwrap(),
            "--prometheus",
            &url,
        ];
        args.extend_from_slice(extra);
        pgdbre(&args)
    };
    let out = gate(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok to ship"),
        "{}",
        text(&out)
    );

    // Inject errors: the primary stops, its probes fail while the standby's reads go on.
    primary.stop().expect("stop the primary");
    let status = poll_status(&spec, &url, "the error budget burning", |s| {
        burn(slo(s, "availability"), "5m")["burn_rate"]
            .as_f64()
            .is_some_and(|rate| rate > 1.0)
    });
    let five = burn(slo(&status, "availability"), "5m");
    assert!(
        five["good"].as_u64().unwrap() < five["total"].as_u64().unwrap(),
        "{status:#}"
    );
    let out = gate(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["decision"], "freeze", "{decision:#}");
    assert!(
        decision["message"]
            .as_str()
            .unwrap()
            .contains("availability"),
        "{decision:#}"
    );

    // A server that is not Prometheus: its HTTP error, exit 3.
    let out = pgdbre(&[
        "slo",
        "status",
        spec.to_str().unwrap(),
        "--prometheus",
        &serve.url(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answered HTTP 404"), "{}", text(&out));
    drop(prometheus);

    // A query Prometheus refuses to run: its own error message, exit 3. A second Prometheus
    // allowed to load one sample per query refuses as soon as it has scraped a few.
    let strict_port = free_port();
    let mut strict = Daemon::spawn(
        "prometheus --query.max-samples=1",
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("strict").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{strict_port}"))
            .arg("--query.max-samples=1"),
        strict_port,
    );
    strict.wait_ready("/-/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = pgdbre(&[
            "gate",
            "--policy",
            spec.to_str().unwrap(),
            "--prometheus",
            &strict.url(),
        ]);
        // Before its first scrapes every query is empty (unknown data, exit 0).
        if out.status.code() != Some(0) {
            break out;
        }
        assert!(Instant::now() < deadline, "never refused: {}", text(&out));
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected the query") && err.contains("too many samples"),
        "{}",
        text(&out)
    );
    drop(strict);
    drop(serve);
}

#[test]
fn unreachable_prometheus_is_one_clear_sentence_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    // Bound then released: nothing listens there.
    let port = free_port();
    let url = format!("http://alice:s3cret@127.0.0.1:{port}");
    let spec = spec.to_str().unwrap();
    for args in [
        vec!["slo", "status", spec, "--prometheus", &url],
        vec!["gate", "--policy", spec, "--prometheus", &url],
    ] {
        let out = pgdbre(&args);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "cannot reach Prometheus at http://***@127.0.0.1:{port}"
            )),
            "{}",
            text(&out)
        );
        assert!(err.contains("hint:"), "{}", text(&out));
        assert!(!err.contains("s3cret"), "{}", text(&out));
        assert!(!err.contains("panicked"), "{}", text(&out));
        assert_eq!(err.trim().lines().count(), 1, "{}", text(&out));
    }
    // --store and --prometheus are two sources: not both.
    let out = pgdbre(&[
        "slo",
        "status",
        spec,
        "--prometheus",
        "http://127.0.0.1:9090",
        "--store",
        "x.db",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}
