//! Black-box tests of `pgdbre slo status` and `pgdbre gate` through the built binary, on state
//! stores written through the `pgdbre_store` API, and one end to end: `pgdbre serve --store`
//! probing a lab primary, then `pgdbre slo status` reading what it recorded.

use pgdbre_store::{minute_of, Batch, Minute, ProbeMinute, Range, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const SPEC: &str = "\
service: payments-db
slos:
  - name: availability
    sli: error_rate
    target: \"< 0.1\"
    window: 30d
  - name: read-latency
    sli: read_latency_p99
    target: \"< 40\"
    window: 30d
burn_policies:
  - if_burn_rate: \"> 2.0x\"
    over: 1h
    action: freeze-deploys
";

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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slo.yaml"), SPEC).unwrap();
        Fixture { dir }
    }

    fn spec(&self) -> String {
        self.dir.path().join("slo.yaml").display().to_string()
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    /// Records `attempts` read probes with `errors` failures and `slow` successes above 40 ms
    /// into each of the two minutes before now.
    fn record(&self, attempts: u64, errors: u64, slow: u64) {
        let mut store = SqliteStore::open(&self.store()).unwrap();
        let now = minute_of(SystemTime::now());
        let probes = [now - 1, now - 2]
            .into_iter()
            .map(|minute| ProbeMinute {
                server: "db1:5432/app".into(),
                probe: "read".into(),
                minute,
                attempts,
                errors,
                within: vec![(0.04, attempts - errors - slow), (0.1, attempts - errors)],
            })
            .collect();
        store
            .record(
                &Batch {
                    probes,
                    lags: vec![],
                },
                now,
            )
            .unwrap();
    }

    fn status_json(&self) -> serde_json::Value {
        let out = pgdbre(&[
            "slo",
            "status",
            &self.spec(),
            "--store",
            self.store().to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn gate(&self, extra: &[&str]) -> Output {
        let store = self.store();
        let mut args = vec![
            "gate",
            "--policy",
            self.dir.path().join("slo.yaml").to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pgdbre(&refs)
    }
}

fn slo<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no SLO {name} in {status}"))
}

#[test]
fn burn_above_the_policy_freezes_and_below_ships() {
    // 10 errors in 1000 probes: 1 % bad against a 0.1 % budget, a burn rate of 10x.
    let hot = Fixture::new();
    hot.record(1000, 10, 0);
    let status = hot.status_json();
    let availability = slo(&status, "availability");
    assert_eq!(availability["total"], 2000, "{status}");
    assert_eq!(availability["good"], 1980, "{status}");
    assert_eq!(availability["status"], "not met", "{status}");
    let one_hour = availability["burn_rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["window"] == "1h")
        .unwrap();
    assert!(
        (one_hour["burn_rate"].as_f64().unwrap() - 10.0).abs() < 1e-6,
        "{status}"
    );
    assert_eq!(availability["burn_rates"].as_array().unwrap().len(), 6);
    let out = hot.gate(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{}", text(&out));
    for part in [
        "availability",
        "10x",
        "over 1h",
        "burn_policies[0]",
        "freeze-deploys",
    ] {
        assert!(line.contains(part), "missing {part}: {}", text(&out));
    }
    // A migration is not frozen by a freeze-deploys policy.
    let out = hot.gate(&["--change", "migration"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // 1 error in 1000: burn rate 1x, under the 2x of the policy.
    let calm = Fixture::new();
    calm.record(1000, 1, 5);
    let out = calm.gate(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("ok to ship"), "{}", text(&out));
    let status = calm.status_json();
    let latency = slo(&status, "read-latency");
    // Bad read-latency events: 1 failed + 5 slow per minute.
    assert_eq!(latency["good"], 1988, "{status}");
    assert_eq!(latency["status"], "met", "{status}");
    let json = calm.gate(&["--output", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["decision"], "ship");
    assert_eq!(value["checks"].as_array().unwrap().len(), 2, "{value}");

    let out = pgdbre(&[
        "slo",
        "status",
        &calm.spec(),
        "--store",
        calm.store().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = stdout(&out);
    assert!(shown.contains("availability: error_rate"), "{shown}");
    assert!(shown.contains("burn rate: 5m 1x"), "{shown}");
}

#[test]
fn unknown_data_is_never_met_and_blocks_only_when_asked() {
    let empty = Fixture::new();
    drop(SqliteStore::open(&empty.store()).unwrap());
    let status = empty.status_json();
    let availability = slo(&status, "availability");
    assert_eq!(availability["status"], "unknown", "{status}");
    assert_eq!(availability["reason"], "no data in the window", "{status}");
    assert!(availability["budget"].is_null(), "{status}");
    let out = empty.gate(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("unknown, not blocking"),
        "{}",
        text(&out)
    );
    let out = empty.gate(&["--fail-on-unknown"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stdout(&out).contains("no data in the window"),
        "{}",
        text(&out)
    );

    // Fewer probes than min_events (100 by default): unknown with the reason, even all bad.
    let few = Fixture::new();
    few.record(20, 20, 0);
    let status = few.status_json();
    let availability = slo(&status, "availability");
    assert_eq!(availability["status"], "unknown", "{status}");
    assert_eq!(
        availability["reason"], "40 events, fewer than the 100 needed",
        "{status}"
    );
    let out = few.gate(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn unusable_spec_or_store_is_exit_3() {
    let fixture = Fixture::new();
    let missing = fixture.store();
    let out = fixture.gate(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!missing.exists(), "the gate must not create a store");

    std::fs::write(fixture.dir.path().join("slo.yaml"), "service: x\nslos: 3\n").unwrap();
    drop(SqliteStore::open(&fixture.store()).unwrap());
    let out = fixture.gate(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("slo.yaml:2"),
        "{}",
        text(&out)
    );
    let out = pgdbre(&[
        "slo",
        "status",
        &fixture.spec(),
        "--store",
        "/nonexistent/x.db",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

/// `pgdbre serve`, killed and reaped when dropped (also on a failed assert).
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attempts(store: &Path, now: Minute) -> u64 {
    let Ok(store) = SqliteStore::open_read_only(store) else {
        return 0;
    };
    let range = Range {
        from: now - 10,
        to: now + 1,
        server: None,
    };
    store
        .probe_totals(&range, "read", None)
        .map(|t| t.attempts)
        .unwrap_or(0)
}

#[test]
fn serve_records_probes_that_slo_status_reads() {
    let cluster = pgdbre_lab::testing::shared();
    let fixture = Fixture::new();
    let store = fixture.store();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &listen, "--check-interval", "0"])
            .args(["--probe-interval", "100ms", "--store"])
            .arg(&store)
            .args(["--dsn", &cluster.primary().dsn()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgdbre serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while attempts(&store, minute_of(SystemTime::now())) == 0 {
        if let Ok(Some(status)) = serve.0.try_wait() {
            panic!("pgdbre serve exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no probe minutes in {}",
            store.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = fixture.status_json();
    let availability = slo(&status, "availability");
    assert!(availability["total"].as_u64().unwrap() > 0, "{status}");
    // Too few probes yet for 100 events, or known: never "met" without the events.
    if availability["total"].as_u64().unwrap() < 100 {
        assert_eq!(availability["status"], "unknown", "{status}");
    }
    drop(serve);
}
