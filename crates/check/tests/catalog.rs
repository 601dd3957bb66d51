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
