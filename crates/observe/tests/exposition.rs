//! A real scrape of the lab (primary and replica as two targets, merged as `/metrics` merges
//! them) is valid exposition for `promtool check metrics`, and a failing collector costs only its
//! own series.

use pgdbre_observe::{encode, merge, ProbeOptions, ScrapeOptions, Target};
use pgdbre_pg::ConnConfig;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

fn target(dsn: &str, options: ScrapeOptions) -> Target {
    Target::new(
        ConnConfig::resolve(Some(dsn)).expect("lab DSN"),
        Arc::new(options),
    )
}

/// promtool's lint rules that postgres_exporter's own names break; pgdbre keeps those names for
/// compatibility, so they are allowed for `pg_*` families only. Everything else must be clean.
const COMPATIBILITY_LINTS: &[&str] = &[
    "counter metrics should have \"_total\" suffix",
    "non-histogram and non-summary metrics should not have \"_count\" suffix",
];

/// Runs `promtool check metrics` and fails on a parse error or on any lint problem not explained
/// by a postgres_exporter-compatible name.
fn assert_promtool_accepts(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`, installed by scripts/setup.sh)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // 0: clean; 3: lint problems only; anything else: the text did not parse.
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "promtool rejected the exposition ({:?}):\n{report}",
        output.status
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        let allowed =
            line.starts_with("pg_") && COMPATIBILITY_LINTS.iter().any(|lint| line.ends_with(lint));
        assert!(
            allowed,
            "promtool problem not explained by compatibility: {line}"
        );
    }
}

#[tokio::test]
async fn a_real_scrape_passes_promtool() {
    let cluster = pgdbre_lab::testing::shared();
    let primary = target(&cluster.primary().dsn(), ScrapeOptions::default());
    let replica = target(&cluster.replicas()[0].dsn(), ScrapeOptions::default());
    // Twice: the second scrape reuses the sessions.
    for _ in 0..2 {
        let (one, two) = tokio::join!(primary.scrape(), replica.scrape());
        let body = encode(&merge(vec![one, two]));
        assert_promtool_accepts(&body);
        for name in [
            "pg_up{",
            "pg_static{",
            "pg_stat_database_xact_commit{",
            "pgdbre_collector_up{",
        ] {
            let series = body.lines().filter(|l| l.starts_with(name)).count();
            assert!(series >= 2, "{name} for both servers in\n{body}");
        }
        let failed: Vec<_> = body
            .lines()
            .filter(|l| l.starts_with("pgdbre_collector_up{") && l.ends_with(" 0"))
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
    }
    // The check catalog's families, appended to /metrics, pass too.
    let report = pgdbre_check::run_target(
        primary.config(),
        &pgdbre_check::checks::all(),
        &pgdbre_check::Selection::default(),
        &pgdbre_check::Thresholds::default(),
        &pgdbre_check::RunOptions::default(),
    )
    .await;
    let scrape = encode(&primary.scrape().await);
    assert_promtool_accepts(&format!(
        "{scrape}{}",
        pgdbre_check::render::prometheus(&[report])
    ));
}

#[tokio::test]
async fn a_failing_collector_costs_only_its_own_series() {
    let cluster = pgdbre_lab::testing::shared();
    // An invalid regular expression makes the server reject the per-table query.
    let options = ScrapeOptions {
        table_include: Some("(".into()),
        ..ScrapeOptions::default()
    };
    let broken = target(&cluster.primary().dsn(), options);
    let body = encode(&broken.scrape().await);
    let server = broken.name();
    assert!(
        body.contains(&format!("pg_up{{server=\"{server}\"}} 1\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "pgdbre_collector_up{{server=\"{server}\",collector=\"stat-user-tables\"}} 0\n"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "pgdbre_collector_up{{server=\"{server}\",collector=\"stat-database\"}} 1\n"
        )),
        "{body}"
    );
    assert!(body.contains("pg_stat_database_xact_commit{"));
    // The session survives the error: the next scrape still works.
    let again = encode(&broken.scrape().await);
    assert!(
        again.contains(&format!("pg_up{{server=\"{server}\"}} 1\n")),
        "{again}"
    );
}

#[tokio::test]
async fn slow_collectors_answer_from_their_last_result_within_the_interval() {
    let cluster = pgdbre_lab::testing::shared();
    let dsn = cluster.primary().dsn();
    let cached = target(&dsn, ScrapeOptions::default());
    let uncached = target(
        &dsn,
        ScrapeOptions {
            slow_interval: std::time::Duration::ZERO,
            ..ScrapeOptions::default()
        },
    );
    cached.scrape().await;
    let database = pgdbre_lab::testing::fresh_database(cluster);
    let size = format!(
        "pg_database_size_bytes{{server=\"{}\",datname=\"{database}\"}}",
        cached.name()
    );
    let body = encode(&cached.scrape().await);
    assert!(
        !body.contains(&size),
        "database sizes were recomputed:\n{body}"
    );
    assert!(body.contains("pg_database_size_bytes{"), "{body}");
    let body = encode(&uncached.scrape().await);
    assert!(body.contains(&size), "{body}");
}

#[tokio::test]
async fn a_scrape_with_probe_histograms_passes_promtool() {
    let cluster = pgdbre_lab::testing::shared();
    let database = pgdbre_lab::testing::fresh_database(cluster);
    let probes = ProbeOptions {
        interval: std::time::Duration::from_millis(100),
        ..ProbeOptions::default()
    };
    let primary = target(
        &cluster.primary().dsn_for(&database),
        ScrapeOptions::default(),
    )
    .with_probes(probes.clone());
    let replica = target(
        &cluster.replicas()[0].dsn_for(&database),
        ScrapeOptions::default(),
    )
    .with_probes(probes);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let commits = format!(
        "pgdbre_probe_duration_seconds_count{{server=\"{}\",probe=\"commit\"}} ",
        primary.name()
    );
    let lag = format!(
        "pgdbre_replica_lag_seconds{{server=\"{0}\",standby=\"{0}\"}} ",
        replica.name()
    );
    loop {
        let (one, two) = tokio::join!(primary.scrape(), replica.scrape());
        let body = encode(&merge(vec![one, two]));
        let committed = body
            .lines()
            .find_map(|l| l.strip_prefix(&commits))
            .is_some_and(|count| count != "0");
        if committed && body.contains(&lag) {
            assert_promtool_accepts(&body);
            for le in ["0.001", "0.04", "1", "5", "+Inf"] {
                assert!(
                    body.contains(&format!("probe=\"read\",le=\"{le}\"}}")),
                    "{le} in\n{body}"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no commit probes or replica lag in\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
