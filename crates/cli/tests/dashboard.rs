//! The dashboard of `pgdbre serve` as a browser renders it: the built binary against the shared
//! lab cluster (a primary and a streaming replica), with the example SLO spec and a state store
//! in a temp dir, loaded in headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup.sh`). The assertions read the DOM Chromium built, not the bytes we sent.

use pgdbre_lab::testing;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The SLO names of `examples/slo.yaml`.
const SLOS: [&str; 5] = [
    "read-latency",
    "commit-latency",
    "availability",
    "replica-lag",
    "restore-time",
];

/// The `pgdbre serve` child process, killed (and reaped) when dropped, also on a failed assert.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_remove("PGPASSWORD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgdbre serve");
        let mut serve = Serve { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(serve.get("/healthz"), Ok((200, _))) {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("pgdbre serve exited early: {status}");
            }
            assert!(Instant::now() < deadline, "/healthz never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
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

/// A headless Chromium run in its own process group; the whole group (renderer, GPU and zygote
/// processes included) is killed when dropped, also on a failed assert or a timeout.
struct Chromium {
    child: Child,
}

impl Chromium {
    /// Runs Chromium with `args` on `url`, its stdout into `stdout`, and waits for it to exit.
    fn run(profile: &Path, args: &[&str], url: &str, stdout: &Path) -> Chromium {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the dashboard test needs headless Chromium; \
             run ./scripts/setup.sh (it installs Debian's `chromium`)"
        );
        let out = std::fs::File::create(stdout).expect("create the output file");
        let log = std::fs::File::create(profile.with_extension("log")).expect("create log");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let mut chromium = Chromium { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match chromium.child.try_wait().expect("wait for chromium") {
                Some(status) => {
                    let log =
                        std::fs::read_to_string(profile.with_extension("log")).unwrap_or_default();
                    assert!(status.success(), "chromium failed: {status}\n{log}");
                    return chromium;
                }
                None => assert!(
                    Instant::now() < deadline,
                    "chromium did not finish {args:?} within 120 s"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this struct created; no memory is touched.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The part of `html` from the element with `id` to the end of the first `</tag>` after it.
fn element<'a>(html: &'a str, id: &str, tag: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id}:\n{html}"));
    let rest = &html[start..];
    let end = rest
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("element {id} is not closed"));
    &rest[..end]
}

/// Whether the served page shows what the browser test needs: a finished catalog run, the
/// availability SLO evaluated from recorded probes, and the standby's heartbeat lag measured.
fn ready(html: &str, standby: &str) -> bool {
    let catalog_ran =
        html.contains("id=\"findings\"") && !html.contains("first check run still in progress");
    let recorded = html.contains("id=\"slo-availability\"")
        && !html.contains("<article class=\"slo unknown\" id=\"slo-availability\"");
    let heartbeat = format!(
        "<td><code>{standby}</code></td><td>heartbeat probe (pgdbre.heartbeat)</td><td>—</td><td class=\"good\">"
    );
    catalog_ran && recorded && html.contains(&heartbeat)
}

fn examples_slo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/slo.yaml")
}

#[test]
fn dashboard_renders_slos_findings_and_replica_lag_in_chromium() {
    let cluster = testing::shared();
    cluster
        .wait_for_replay(Duration::from_secs(30))
        .expect("the replica streams");
    let database = testing::fresh_database(cluster);
    // A table without a primary key, named with markup: a finding whose text must be escaped.
    cluster
        .primary()
        .psql_db(&database, "CREATE TABLE \"<i>no_pk</i>\" (id int);")
        .expect("create the table");
    cluster
        .wait_for_replay(Duration::from_secs(30))
        .expect("the replica has the database");
    let primary = cluster.primary().dsn_for(&database);
    let replica_node = &cluster.replicas()[0];
    let replica = replica_node.dsn_for(&database);
    let replica_name = format!(
        "{}:{}/{database}",
        replica_node.socket_dir().display(),
        replica_node.port()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("state.db");
    let slo = examples_slo();
    let serve = Serve::start(&[
        "--dsn",
        &primary,
        "--dsn",
        &replica,
        "--slo",
        slo.to_str().expect("utf-8 path"),
        "--store",
        store.to_str().expect("utf-8 path"),
        "--probe-interval",
        "100ms",
        "--check-interval",
        "2s",
    ]);

    // Poll the page until the probes have recorded enough events (min_events 100) and the
    // catalog has run once; the state store is written every few seconds.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut html = String::new();
    while !ready(&html, &replica_name) {
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed recorded probes, a catalog run and the heartbeat lag \
             of {replica_name}:\n{html}"
        );
        std::thread::sleep(Duration::from_millis(250));
        let (status, body) = serve.get("/").expect("GET /");
        assert_eq!(status, 200, "{body}");
        html = body;
    }

    let dom_file = dir.path().join("dom.html");
    let dom_run = Chromium::run(
        &dir.path().join("chromium-dom"),
        &["--dump-dom"],
        &serve.url(),
        &dom_file,
    );
    drop(dom_run);
    let dom = std::fs::read_to_string(&dom_file).expect("read the DOM");
    assert!(dom.contains("<h1>payments-db</h1>"), "{dom}");
    assert!(dom.contains("href=\"/metrics\"") && dom.contains("href=\"/healthz\""));

    // One card with a burn-rate chart per SLO of the spec.
    assert_eq!(
        dom.matches("<svg class=\"burn-chart\"").count(),
        SLOS.len(),
        "{dom}"
    );
    for name in SLOS {
        let card = element(&dom, &format!("slo-{name}"), "article");
        assert!(card.contains(&format!("<span>{name}</span>")), "{card}");
        assert!(card.contains("<svg class=\"burn-chart\""), "{card}");
        assert!(card.contains("class=\"threshold\""), "{card}");
    }
    // Recorded probes: availability has a number and a budget bar; no drills: restore time is
    // unknown, grey, "no data", never met.
    let availability = element(&dom, "slo-availability", "article");
    assert!(
        !availability.contains("<dd class=\"unknown\">"),
        "{availability}"
    );
    assert!(availability.contains("class=\"fill "), "{availability}");
    let restore = element(&dom, "slo-restore-time", "article");
    assert!(
        dom.contains("<article class=\"slo unknown\" id=\"slo-restore-time\""),
        "{restore}"
    );
    assert!(
        restore.contains("<dd class=\"unknown\">no data</dd>"),
        "{restore}"
    );
    assert!(restore.contains("class=\"no-data\""), "{restore}");

    // Findings of the catalog run, with the table name escaped: text, not an <i> element.
    let findings = element(&dom, "findings", "section");
    assert!(
        findings.contains("tables-without-primary-key"),
        "{findings}"
    );
    assert!(findings.contains("&lt;i&gt;no_pk&lt;/i&gt;"), "{findings}");
    assert!(!dom.contains("<i>no_pk</i>"), "{findings}");

    // Replica lag: the primary's view of the standby and the standby's own heartbeat.
    let lag = element(&dom, "replica-lag", "section");
    assert!(
        lag.contains(&format!(
            "<td><code>{}</code></td><td>pg_stat_replication on ",
            replica_node.name()
        )) && lag.contains("<td>streaming</td>"),
        "{lag}"
    );
    assert!(
        lag.contains(&format!(
            "<td><code>{replica_name}</code></td><td>heartbeat probe"
        )),
        "{lag}"
    );

    // The same page as an image, as in docs/dashboard.png.
    let shot = dir.path().join("dashboard.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let shot_run = Chromium::run(
        &dir.path().join("chromium-shot"),
        &[&shot_arg, "--window-size=1280,1600", "--hide-scrollbars"],
        &serve.url(),
        &dir.path().join("shot.out"),
    );
    drop(shot_run);
    let png = std::fs::read(&shot).expect("read the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {}-byte screenshot is blank",
        png.len()
    );
}

#[test]
fn serve_rejects_a_bad_slo_spec_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("slo.yaml");
    std::fs::write(
        &spec,
        "service: db\nslos:\n  - name: availability\n    sli: error_rate\n    target: \"< 0.1\"\n    window: 30x\n",
    )
    .expect("write spec");
    let output = Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--store", "none", "--slo"])
        .arg(&spec)
        .output()
        .expect("run pgdbre serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:6: ", spec.display())) && stderr.contains("window"),
        "{stderr}"
    );
}

#[test]
fn without_slo_the_dashboard_says_how_to_add_one_and_shows_a_down_server() {
    // Nothing listens on a port just released: the server is down, the page still renders.
    let down = format!("host=127.0.0.1 port={} user=nobody dbname=app", free_port());
    let serve = Serve::start(&[
        "--dsn",
        &down,
        "--store",
        "none",
        "--check-interval",
        "0",
        "--connect-timeout",
        "500ms",
    ]);
    let (status, html) = serve.get("/").expect("GET /");
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("pgdbre serve --slo FILE"), "{html}");
    assert!(!html.contains("<svg"), "{html}");
    assert!(
        html.contains("<span class=\"dot bad\"></span><code>127.0.0.1:"),
        "{html}"
    );
    assert!(html.contains("The check catalog is off"), "{html}");
    assert!(html.contains("No standbys seen"), "{html}");
}
