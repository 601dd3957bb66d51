//! Test helpers: run one check against a real lab server and get its result.

use crate::runner::run_one;
use crate::{Check, CheckResult, Finding, Status, Thresholds};
use pgdbre_pg::{ConnConfig, Session};

/// Runs `check` against `dsn` with `overrides` (`param`, value) and returns the full result.
pub async fn run_result(
    check: &'static dyn Check,
    dsn: &str,
    overrides: &[(&str, f64)],
) -> CheckResult {
    let config = ConnConfig::resolve(Some(dsn)).expect("lab DSN parses");
    let session = Session::connect(&config)
        .await
        .expect("connect to lab server");
    let mut thresholds = Thresholds::default();
    let catalog = [check];
    for (name, value) in overrides {
        thresholds
            .set(&format!("{}.{name}={value}", check.meta().id), &catalog)
            .expect("override names a declared parameter");
    }
    run_one(check, &session, &thresholds).await
}

/// Runs `check` and returns its findings, failing the test if it did not run.
pub async fn findings(
    check: &'static dyn Check,
    dsn: &str,
    overrides: &[(&str, f64)],
) -> Vec<Finding> {
    let result = run_result(check, dsn, overrides).await;
    match &result.status {
        Status::Ran => result.findings,
        other => panic!("check {} did not run: {other:?}", check.meta().id),
    }
}

/// Polls `probe` until it returns `Some`, at most `timeout`; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls `check` until a finding satisfies `wanted`, returning that finding.
pub async fn finding_where(
    check: &'static dyn Check,
    dsn: &str,
    overrides: &[(&str, f64)],
    wanted: impl Fn(&Finding) -> bool,
) -> Finding {
    eventually(
        std::time::Duration::from_secs(20),
        &format!("a {} finding", check.meta().id),
        || async {
            findings(check, dsn, overrides)
                .await
                .into_iter()
                .find(|f| wanted(f))
        },
    )
    .await
}
