//! Faults of the state store seen through the binary: a store locked by another process (holding
//! a write transaction) and a store this user may not write (owned by root, used as the
//! `postgres` OS user). Each must give a clear error or warning, never a panic, and lose no
//! sample already written.

use pgdbre_store::{minute_of, Batch, ProbeMinute, Range, SqliteStore, Store};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const SPEC: &str = "\
service: app
slos:
  - name: availability
    sli: error_rate
    target: \"< 0.1\"
    window: 30d
";

/// The server name the seeded samples are recorded under (no real server has it).
const SEEDED: &str = "seeded:5432/app";

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

/// Writes 1000 read probes (2 failed) into the minute before now.
fn seed(store: &Path) {
    let mut writer = SqliteStore::open(store).unwrap();
    let now = minute_of(SystemTime::now());
    let probe = ProbeMinute {
        server: SEEDED.into(),
        probe: "read".into(),
        minute: now - 1,
        attempts: 1000,
        errors: 2,
        within: vec![(0.04, 998)],
    };
    writer
        .record(
            &Batch {
                probes: vec![probe],
                lags: vec![],
            },
            now,
        )
        .unwrap();
}

/// Read probe attempts in the last hour, of one server or all.
fn attempts(store: &Path, server: Option<&str>) -> u64 {
    let reader = SqliteStore::open_read_only(store).unwrap();
    let now = minute_of(SystemTime::now());
    let range = Range {
        from: now - 60,
        to: now + 1,
        server,
    };
    let read = reader.probe_totals(&range, "read", None).unwrap().attempts;
    let commit = reader
        .probe_totals(&range, "commit", None)
        .unwrap()
        .attempts;
    read + commit
}

/// `slo status` JSON of the availability SLO.
fn availability(spec: &Path, store: &Path) -> serde_json::Value {
    let out = pgdbre(&[
        "slo",
        "status",
        spec.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["slos"][0].clone()
}

/// Another process holding a write transaction on the store until released or dropped: Python's
/// `sqlite3` module (python3 is installed by scripts/setup.sh; the `sqlite3` shell is not).
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Takes the write lock (a write in the transaction, so it is really held), says so, and rolls
/// back when its stdin gives a line or closes.
const HOLD: &str = "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute('BEGIN IMMEDIATE')
db.execute('DELETE FROM probe_minute WHERE 0')
print('locked', flush=True)
sys.stdin.readline()
db.execute('ROLLBACK')
";

impl Holder {
    fn lock(store: &Path) -> Holder {
        let mut child = Command::new("python3")
            .args(["-c", HOLD])
            .arg(store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "the lock holder failed");
        Holder { child, stdin }
    }

    fn release(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        self.release();
    }
}

/// `pgdbre serve`, killed and reaped when dropped (also on a failed assert).
struct Serve {
    child: Child,
    port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Sum of `pgdbre_probe_total` over every series of /metrics.
    fn probe_total(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body.lines()
            .filter(|l| l.starts_with("pgdbre_probe_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

fn poll(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_locked_store_is_readable_and_serve_keeps_its_counts_until_it_can_write() {
    let cluster = pgdbre_lab::testing::shared();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.db");
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    seed(&store);
    let mut holder = Holder::lock(&store);

    // Readers do not wait for the writer (WAL): status and gate still answer from the samples.
    let seeded = availability(&spec, &store);
    assert_eq!(seeded["total"], 1000, "{seeded:#}");
    assert_eq!(seeded["good"], 998, "{seeded:#}");
    let out = pgdbre(&[
        "gate",
        "--policy",
        spec.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let log = dir.path().join("serve.log");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Serve {
        child: Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--check-interval",
                "0",
                "--probe-interval",
                "50ms",
                "--store",
            ])
            .arg(&store)
            .args(["--dsn", &cluster.primary().dsn()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pgdbre serve"),
        port,
    };
    let serve_log = || std::fs::read_to_string(&log).unwrap_or_default();
    poll(
        "serve to warn that the store is locked",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("pgdbre serve exited: {status}\n{}", serve_log());
            }
            serve_log().contains("is locked by another process")
        },
    );
    let warning = serve_log();
    assert!(warning.contains(&store.display().to_string()), "{warning}");
    assert!(warning.contains("kept in memory"), "{warning}");
    assert!(!warning.contains("panicked"), "{warning}");
    // Hold the lock until more was probed than one flush interval (5 s of probes, ~200) holds.
    let mut probed = 0;
    poll(
        "probes while the store is locked",
        Duration::from_secs(90),
        || {
            probed = serve.probe_total();
            probed >= 300
        },
    );
    assert_eq!(attempts(&store, None), 1000, "nothing written while locked");
    holder.release();

    // The first write after the release carries everything probed while locked, not only the
    // last flush interval.
    let mut written = 0;
    poll(
        "the first write after the release",
        Duration::from_secs(30),
        || {
            written = attempts(&store, None);
            written > 1000
        },
    );
    assert!(
        written >= 1000 + probed,
        "first write has {} probes, {probed} were made while locked",
        written - 1000
    );
    assert_eq!(
        attempts(&store, Some(SEEDED)),
        1000,
        "the seeded samples are intact"
    );
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "serve must keep running"
    );
}

#[test]
fn a_store_this_user_cannot_write_is_a_clear_error_and_keeps_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    // The postgres OS user may enter the directory and read, not write: owned by root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("state.db");
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    seed(&store);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_postgres = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", "postgres", "--", env!("CARGO_BIN_EXE_pgdbre")])
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("runuser")
    };
    let path = store.to_str().unwrap();
    let serve = || {
        as_postgres(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            path,
            "--dsn",
            "host=127.0.0.1 port=1 dbname=app",
        ])
    };
    let status = || as_postgres(&["slo", "status", spec.to_str().unwrap(), "--store", path]);

    // A cleanly closed store (no -wal or -shm file) that this user cannot write: serve fails at
    // start, before probing anything, naming the file and what to do.
    let out = serve();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path), "{}", text(&out));
    assert!(err.contains("hint:"), "{}", text(&out));
    assert!(!err.contains("panicked"), "{}", text(&out));
    // Reading needs the -shm file, which this user cannot create here: a clear error too.
    let out = status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{}", text(&out));
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            err.contains(path) && err.contains("hint:"),
            "{}",
            text(&out)
        );
    }

    // The owner's writer is running (its -wal and -shm files exist): serve is refused as
    // read-only at start, and slo status reads the samples.
    let owner = SqliteStore::open(&store).unwrap();
    let out = serve();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("state store {path} is read-only")),
        "{}",
        text(&out)
    );
    let out = status();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("998 good of 1000"),
        "{}",
        text(&out)
    );
    drop(owner);
    // The samples are all still there.
    assert_eq!(availability(&spec, &store)["total"], 1000);
}
