//! The probes against real lab servers: counts grow, the replica lag follows replay, errors are
//! counted by class. Every wait polls with a deadline.

use super::*;
use crate::{encode, ScrapeOptions, Target};
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use std::future::Future;

/// Probes fast so the tests see many rounds quickly.
fn fast() -> ProbeOptions {
    ProbeOptions {
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        recorder: None,
    }
}

fn spawn(dsn: &str) -> Prober {
    Prober::spawn(ConnConfig::resolve(Some(dsn)).expect("lab DSN"), fast())
}

/// The value of the sample of `name` + `suffix` whose labels include all of `labels`.
fn sample(families: &[Family], name: &str, suffix: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.suffix == suffix
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
}

fn count(families: &[Family], probe: &str, result: &str) -> f64 {
    sample(
        families,
        metrics::PROBE_TOTAL,
        "",
        &[("probe", probe), ("result", result)],
    )
    .unwrap_or(0.0)
}

fn errors(families: &[Family], probe: &str, class: &str) -> f64 {
    sample(
        families,
        "pgdbre_probe_errors_total",
        "",
        &[("probe", probe), ("class", class)],
    )
    .unwrap_or(0.0)
}

fn lag(prober: &Prober) -> Option<f64> {
    sample(&prober.families(), metrics::REPLICA_LAG_SECONDS, "", &[])
}

/// Polls `condition` over `read()` until it holds, failing with the last value after `limit`.
async fn wait_until<T: std::fmt::Debug, F: Future<Output = T>>(
    what: &str,
    limit: Duration,
    mut read: impl FnMut() -> F,
    condition: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = read().await;
        if condition(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn results_keep_both_result_series_and_errors_by_class() {
    let mut results = Results::default();
    results.record(Probe::Read, &Ok(Duration::from_millis(3)));
    results.record(Probe::Commit, &Err(Failure::new("42", "permission denied")));
    results.record(Probe::Commit, &Err(Failure::new("connect", "refused")));
    results.replica_lag = Some(1.5);
    let families = results.families("h:5432/db");
    assert_eq!(count(&families, "read", "ok"), 1.0);
    assert_eq!(count(&families, "read", "error"), 0.0);
    assert_eq!(count(&families, "commit", "ok"), 0.0);
    assert_eq!(count(&families, "commit", "error"), 2.0);
    assert_eq!(errors(&families, "commit", "42"), 1.0);
    assert_eq!(errors(&families, "commit", "connect"), 1.0);
    let duration = |probe, le| {
        sample(
            &families,
            metrics::PROBE_DURATION_SECONDS,
            "_bucket",
            &[("probe", probe), ("le", le)],
        )
    };
    assert_eq!(duration("read", "0.0025"), Some(0.0));
    assert_eq!(duration("read", "0.005"), Some(1.0));
    assert_eq!(duration("read", "+Inf"), Some(1.0));
    // A probe that never succeeded still has its (empty) histogram.
    assert_eq!(duration("commit", "+Inf"), Some(0.0));
    assert_eq!(
        sample(
            &families,
            metrics::REPLICA_LAG_SECONDS,
            "",
            &[("standby", "h:5432/db")]
        ),
        Some(1.5)
    );
}

#[tokio::test]
async fn probes_count_up_and_the_replica_lag_is_small() {
    let cluster = pgdbre_lab::testing::shared();
    let database = pgdbre_lab::testing::fresh_database(cluster);
    let primary = spawn(&cluster.primary().dsn_for(&database));
    let replica = spawn(&cluster.replicas()[0].dsn_for(&database));
    let limit = Duration::from_secs(20);
    let first = wait_until(
        "read and commit probes on the primary",
        limit,
        || async { primary.families() },
        |f| count(f, "read", "ok") >= 2.0 && count(f, "commit", "ok") >= 2.0,
    )
    .await;
    // Counters keep growing: probes run on their own interval, not on scrapes.
    for probe in ["read", "commit"] {
        let before = count(&first, probe, "ok");
        wait_until(
            "more probes",
            limit,
            || async { primary.families() },
            |f| count(f, probe, "ok") > before + 2.0,
        )
        .await;
    }
    let families = primary.families();
    assert_eq!(count(&families, "commit", "error"), 0.0, "{families:?}");
    assert!(
        sample(
            &families,
            metrics::PROBE_DURATION_SECONDS,
            "_count",
            &[("probe", "commit")]
        )
        .unwrap()
            >= 2.0
    );
    // A primary has no replica lag; the standby does not commit.
    assert_eq!(lag(&primary), None);
    let seconds = wait_until(
        "replica lag",
        limit,
        || async { lag(&replica) },
        Option::is_some,
    )
    .await
    .unwrap();
    assert!((0.0..2.0).contains(&seconds), "lag {seconds}");
    let standby = replica.families();
    assert_eq!(count(&standby, "commit", "ok"), 0.0);
    assert_eq!(count(&standby, "commit", "error"), 0.0);
    assert!(count(&standby, "read", "ok") >= 1.0);
}

#[tokio::test]
async fn a_role_that_cannot_create_the_heartbeat_gets_commit_errors_and_a_scrape() {
    let cluster = pgdbre_lab::testing::shared();
    let database = pgdbre_lab::testing::fresh_database(cluster);
    let role = format!("probe_{database}");
    cluster
        .primary()
        .psql(&format!("CREATE ROLE {role}"))
        .expect("create role");
    // Logs in as postgres, then acts as a role without CREATE on the database.
    let dsn = format!(
        "{} options='-c role={role}'",
        cluster.primary().dsn_for(&database)
    );
    let config = ConnConfig::resolve(Some(&dsn)).expect("DSN");
    let target = Target::new(config, Arc::new(ScrapeOptions::default())).with_probes(fast());
    let body = wait_until(
        "commit errors of class 42",
        Duration::from_secs(20),
        || async { encode(&target.scrape().await) },
        |body| {
            body.lines().any(|l| {
                l.starts_with("pgdbre_probe_errors_total{")
                    && l.contains("probe=\"commit\",class=\"42\"")
            })
        },
    )
    .await;
    let server = target.name();
    assert!(
        body.contains(&format!("pg_up{{server=\"{server}\"}} 1\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "pgdbre_probe_total{{server=\"{server}\",probe=\"commit\",result=\"ok\"}} 0\n"
        )),
        "{body}"
    );
    // The log says why and what an administrator can do.
    let session = Session::connect(&ConnConfig::resolve(Some(&dsn)).expect("DSN"))
        .await
        .expect("connect");
    let error = heartbeat::ensure(&session).await.unwrap_err().to_string();
    for part in [
        "cannot create pgdbre.heartbeat",
        "permission denied",
        "hint: ",
        "GRANT",
    ] {
        assert!(error.contains(part), "{part} in {error}");
    }
    let exists = cluster
        .primary()
        .psql_db(&database, "SELECT to_regclass('pgdbre.heartbeat') IS NULL")
        .expect("query");
    assert_eq!(exists, "t");
}

#[tokio::test]
async fn replica_lag_follows_a_replay_pause_and_a_dead_primary_counts_connect_errors() {
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1))
        .expect("private cluster");
    let replica_node = &cluster.replicas()[0];
    let options = Arc::new(ScrapeOptions {
        connect_timeout: Duration::from_secs(1),
        ..ScrapeOptions::default()
    });
    let target = |dsn: String| {
        Target::new(
            ConnConfig::resolve(Some(&dsn)).expect("DSN"),
            Arc::clone(&options),
        )
        .with_probes(fast())
    };
    let primary = target(cluster.primary().dsn());
    let replica = spawn(&replica_node.dsn());
    let limit = Duration::from_secs(30);
    wait_until(
        "a small replica lag",
        limit,
        || async { lag(&replica) },
        |lag| lag.is_some_and(|s| s < 1.0),
    )
    .await;

    replica_node
        .psql("SELECT pg_catalog.pg_wal_replay_pause()")
        .expect("pause replay");
    wait_until(
        "the lag to grow while replay is paused",
        limit,
        || async { lag(&replica) },
        |lag| lag.is_some_and(|s| s > 2.0),
    )
    .await;
    replica_node
        .psql("SELECT pg_catalog.pg_wal_replay_resume()")
        .expect("resume replay");
    wait_until(
        "the lag to drop after resuming",
        limit,
        || async { lag(&replica) },
        |lag| lag.is_some_and(|s| s < 1.0),
    )
    .await;

    cluster.primary().kill().expect("kill the primary");
    let server = primary.name().to_owned();
    let body = wait_until(
        "connect errors of both probes",
        limit,
        || async { encode(&primary.scrape().await) },
        |body| {
            ["read", "commit"].iter().all(|probe| {
                body.lines().any(|l| {
                    l.starts_with(&format!(
                        "pgdbre_probe_errors_total{{server=\"{server}\",probe=\"{probe}\",class=\"connect\"}} "
                    ))
                })
            })
        },
    )
    .await;
    // The exporter still answers: pg_up 0 beside the probe series.
    assert!(
        body.contains(&format!("pg_up{{server=\"{server}\"}} 0\n")),
        "{body}"
    );
    assert!(
        body.contains("pgdbre_probe_duration_seconds_bucket{"),
        "{body}"
    );
}

#[tokio::test]
async fn a_standby_watched_alone_reads_without_a_heartbeat_and_commits_once_promoted() {
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1))
        .expect("private cluster");
    let standby = &cluster.replicas()[0];
    // Nothing probes the primary, so nothing creates the heartbeat table.
    let prober = spawn(&standby.dsn());
    let limit = Duration::from_secs(30);
    wait_until(
        "read probes on a standby without the heartbeat table",
        limit,
        || async { prober.families() },
        |f| count(f, "read", "ok") >= 3.0,
    )
    .await;
    let families = prober.families();
    assert_eq!(count(&families, "read", "error"), 0.0, "{families:?}");
    assert_eq!(count(&families, "commit", "ok"), 0.0);
    assert_eq!(lag(&prober), None, "no heartbeat, no lag figure");
    assert_eq!(
        standby
            .psql("SELECT to_regclass('pgdbre.heartbeat') IS NULL")
            .unwrap()
            .trim(),
        "t"
    );

    cluster.primary().stop().expect("stop the primary");
    standby
        .psql("SELECT pg_catalog.pg_promote()")
        .expect("promote the standby");
    // The same probe session sees the promotion: commits start and create the table.
    wait_until(
        "commit probes on the promoted standby",
        limit,
        || async { prober.families() },
        |f| count(f, "commit", "ok") >= 2.0,
    )
    .await;
    let reads = count(&prober.families(), "read", "ok");
    wait_until(
        "reads of the heartbeat table",
        limit,
        || async { prober.families() },
        |f| count(f, "read", "ok") > reads + 2.0,
    )
    .await;
    let families = prober.families();
    assert_eq!(count(&families, "read", "error"), 0.0, "{families:?}");
    assert_eq!(
        standby
            .psql("SELECT count(*) FROM pgdbre.heartbeat")
            .unwrap()
            .trim(),
        "1"
    );
}
