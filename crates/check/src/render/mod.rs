//! Rendering reports for people (text) and machines (JSON, Nagios, Prometheus).
//!
//! Renderers only format: they never decide severity. The process exit code for every format
//! is [`exit_code`], the Nagios convention (0 ok, 1 warning, 2 critical, 3 unknown).

pub mod catalog;
mod json;
mod nagios;
mod prometheus;
mod text;

pub use json::{json, JSON_SCHEMA_VERSION};
pub use nagios::nagios;
pub use prometheus::prometheus;
pub use text::text;

use crate::{Severity, TargetReport};

/// The worst severity over all targets.
pub fn worst(reports: &[TargetReport]) -> Severity {
    reports
        .iter()
        .map(TargetReport::severity)
        .max()
        .unwrap_or(Severity::Ok)
}

/// Exit code for a run: 0 ok/info, 1 warning, 2 critical, 3 unknown (a target or check failed).
pub fn exit_code(reports: &[TargetReport]) -> u8 {
    worst(reports).nagios_code()
}

/// Snapshots of what a user sees, one named case per scenario; review changes with
/// `cargo insta review` (or `INSTA_UPDATE=always`) and commit the `.snap` files.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, CheckMeta, CheckResult, Finding, Param, Requires, Runbook, Status};

    static META: CheckMeta = CheckMeta {
        id: "long-running-transactions",
        category: Category::Transactions,
        title: "Long-running transactions",
        measures: "Age of each open transaction.",
        params: &[Param {
            name: "warning",
            default: 300.0,
            unit: "seconds",
            help: "warns",
        }],
        requires: Requires::MONITOR,
        runbook: Runbook {
            why: "Pins the xmin horizon.",
            action: "Commit or terminate it.",
            next: "SELECT 1;",
        },
    };
    static OTHER: CheckMeta = CheckMeta {
        id: "replication-lag",
        category: Category::Replication,
        title: "Replication lag",
        measures: "Lag per standby.",
        params: &[],
        requires: Requires::MONITOR,
        runbook: Runbook {
            why: "Stale reads.",
            action: "Find the bottleneck.",
            next: "SELECT 2;",
        },
    };

    fn result(meta: &'static CheckMeta, status: Status, findings: Vec<Finding>) -> CheckResult {
        CheckResult::new(meta, status, findings, 1.5)
    }

    fn report(results: Vec<CheckResult>) -> TargetReport {
        TargetReport {
            target: "db1:5432/app".into(),
            server_version: Some("15.18".into()),
            role: Some("primary"),
            error: None,
            results,
            duration_ms: 12.25,
        }
    }

    fn with_findings() -> Vec<TargetReport> {
        let finding = Finding::new(
            Severity::Critical,
            "pid 42",
            "transaction open for 2h 0m by app (idle in transaction)",
        )
        .with("pid", 42)
        .with("age_seconds", 7200)
        .with("retained_bytes", 3_221_225_472_i64)
        .with(
            "query",
            "UPDATE accounts SET balance = balance - 1 WHERE id = 7",
        );
        vec![report(vec![
            result(&META, Status::Ran, vec![finding]),
            result(
                &OTHER,
                Status::Skipped {
                    reason: "applies to primaries only".into(),
                    fix: None,
                },
                vec![],
            ),
        ])]
    }

    fn unreachable() -> Vec<TargetReport> {
        vec![TargetReport {
            target: "db2:5432/app".into(),
            server_version: None,
            role: None,
            error: Some("could not connect to db2:5432/app: connection refused".into()),
            results: vec![],
            duration_ms: 3.0,
        }]
    }

    fn healthy() -> Vec<TargetReport> {
        vec![report(vec![
            result(&META, Status::Ran, vec![]),
            result(
                &OTHER,
                Status::Error {
                    message: "connection closed".into(),
                },
                vec![],
            ),
        ])]
    }

    #[test]
    fn text_findings() {
        insta::assert_snapshot!(text(&with_findings(), false));
    }

    #[test]
    fn text_unreachable() {
        insta::assert_snapshot!(text(&unreachable(), false));
    }

    #[test]
    fn nagios_cases() {
        let lines = [
            nagios(&with_findings()),
            nagios(&unreachable()),
            nagios(&healthy()),
        ]
        .concat();
        insta::assert_snapshot!(lines);
    }

    #[test]
    fn prometheus_findings() {
        insta::assert_snapshot!(prometheus(&with_findings()));
    }

    #[test]
    fn json_findings() {
        insta::assert_snapshot!(json(&with_findings()));
    }

    #[test]
    fn exit_codes_follow_the_worst_severity() {
        assert_eq!(exit_code(&with_findings()), 2);
        assert_eq!(exit_code(&unreachable()), 3);
        assert_eq!(exit_code(&healthy()), 3, "a failed check is unknown");
    }
}
