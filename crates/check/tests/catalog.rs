//! The whole catalog against real servers: a healthy fresh lab is quiet, and a server that goes
//! away mid-run yields UNKNOWN results rather than a panic.

use pgdbre_check::{
    checks, open_session, run_on_sessions, run_target, RunOptions, Selection, Severity, Status,
    Thresholds,
};
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use pgdbre_pg::ConnConfig;

fn describe(report: &pgdbre_check::TargetReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        for f in &r.findings {
            out.push_str(&format!(
                "{} {} {}: {}\n",
                f.severity.label(),
                r.meta.id,
                f.object,
                f.summary
            ));
        }
        if let Status::Error { message } = &r.status {
            out.push_str(&format!("ERROR {}: {message}\n", r.meta.id));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_fresh_lab_raises_no_warning() {
    let cluster = Cluster::start(
        LabOptions::new(PgInstall::for_tests())
            .replicas(1)
            .name("healthy"),
    )
    .expect("lab starts");
    let catalog = checks::all();
    for node in cluster.nodes() {
        let config = ConnConfig::resolve(Some(&node.dsn())).expect("lab DSN parses");
        let report = run_target(
            &config,
            &catalog,
            &Selection::default(),
            &Thresholds::default(),
            &RunOptions::default(),
        )
        .await;
        assert!(
            report.error.is_none(),
            "{}: {:?}",
            node.name(),
            report.error
        );
        assert_eq!(report.results.len(), catalog.len());
        let loud: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.severity >= Severity::Warning)
            .map(|r| r.meta.id)
            .collect();
        assert!(
            loud.is_empty(),
            "{} is not quiet: {loud:?}\n{}",
            node.name(),
            describe(&report)
        );
        let skipped_on_primary: Vec<_> = report
            .results
            .iter()
            .filter(|r| {
                matches!(r.status, Status::Skipped { .. })
                    && r.meta.requires.role != pgdbre_check::Role::Standby
            })
            .map(|r| r.meta.id)
            .collect();
        if node.name() == "primary" {
            assert!(
                skipped_on_primary.is_empty(),
                "superuser on a primary skipped {skipped_on_primary:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gone_mid_run_reports_unknown_not_panic() {
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).name("gone")).expect("lab starts");
    let config = ConnConfig::resolve(Some(&cluster.primary().dsn())).expect("lab DSN parses");
    let session = open_session(&config, &RunOptions::default())
        .await
        .expect("connects");
    cluster.primary().kill().expect("server stops");
    let catalog = checks::all();
    let report = run_on_sessions(
        &[session],
        &catalog,
        &Selection::default(),
        &Thresholds::default(),
    )
    .await;
    assert_eq!(report.severity(), Severity::Unknown);
    let ran = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Ran))
        .count();
    let errors = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Error { .. }))
        .count();
    assert_eq!(
        ran,
        0,
        "no check can succeed on a dead server:\n{}",
        describe(&report)
    );
    assert!(errors > 0, "checks that query must fail as errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprivileged_role_gets_skips_with_the_grant_never_errors() {
    let cluster = pgdbre_lab::testing::shared();
    let primary = cluster.primary();
    let role = format!("plain_{}", std::process::id());
    primary
        .psql(&format!("CREATE ROLE {role} LOGIN PASSWORD 'plain-pass';"))
        .expect("create role");
    let dsn = format!(
        "host=127.0.0.1 port={} user={role} password=plain-pass dbname=postgres sslmode=disable",
        primary.port()
    );
    let config = ConnConfig::resolve(Some(&dsn)).expect("DSN parses");
    let catalog = checks::all();
    let (selection, thresholds, options) = (
        Selection::default(),
        Thresholds::default(),
        RunOptions::default(),
    );
    let run = || run_target(&config, &catalog, &selection, &thresholds, &options);

    let report = run().await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let errors: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Error { .. }))
        .collect();
    assert!(
        errors.is_empty(),
        "a missing privilege must be a skip, not an error:\n{}",
        describe(&report)
    );
    let grant = format!("GRANT pg_monitor TO \"{role}\";");
    let needs_grant = report
        .results
        .iter()
        .filter(|r| matches!(&r.status, Status::Skipped { fix: Some(fix), .. } if *fix == grant))
        .count();
    assert!(
        needs_grant > 0,
        "checks needing pg_monitor name the grant:\n{:#?}",
        report
            .results
            .iter()
            .map(|r| (&r.meta.id, &r.status))
            .collect::<Vec<_>>()
    );

    primary
        .psql(&format!("GRANT pg_monitor TO {role};"))
        .expect("grant");
    let report = run().await;
    let still = report
        .results
        .iter()
        .filter(|r| matches!(&r.status, Status::Skipped { fix: Some(fix), .. } if *fix == grant))
        .map(|r| r.meta.id)
        .collect::<Vec<_>>();
    assert!(
        still.is_empty(),
        "after the grant these still ask for it: {still:?}"
    );
    assert!(
        report
            .results
            .iter()
            .all(|r| !matches!(r.status, Status::Error { .. })),
        "{}",
        describe(&report)
    );
    primary
        .psql(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .expect("drop role");
}
