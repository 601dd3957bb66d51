//! The check-findings section from the last background catalog run (`catalog.rs`): one row per
//! finding, worst first, and a line per server saying how many checks ran, were skipped or
//! failed. A failed check or an unreachable server is a row of severity UNKNOWN, not silence.

use super::model::{FindingRow, FindingsSection};
use pgdbre_check::{Severity, Status, TargetReport};

/// Display order: what needs action first.
fn rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 0,
        Severity::Warning => 1,
        Severity::Unknown => 2,
        Severity::Info => 3,
        Severity::Ok => 4,
    }
}

/// The section for the last run of each target (`None`: its first run has not finished).
pub fn section(last: &[(String, Option<TargetReport>)]) -> FindingsSection {
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (name, report) in last {
        let Some(report) = report else {
            summaries.push((
                name.clone(),
                "first check run still in progress".to_string(),
            ));
            continue;
        };
        if let Some(error) = &report.error {
            summaries.push((name.clone(), "could not be checked".to_string()));
            rows.push(FindingRow {
                severity: Severity::Unknown,
                target: name.clone(),
                check: "(connection)".into(),
                object: String::new(),
                message: error.clone(),
            });
            continue;
        }
        let (mut passed, mut skipped, mut failed) = (0, 0, 0);
        for result in &report.results {
            match &result.status {
                Status::Skipped { .. } => skipped += 1,
                Status::Error { message } => {
                    failed += 1;
                    rows.push(FindingRow {
                        severity: Severity::Unknown,
                        target: name.clone(),
                        check: result.meta.id.into(),
                        object: String::new(),
                        message: format!("check failed: {message}"),
                    });
                }
                Status::Ran if result.findings.is_empty() => passed += 1,
                Status::Ran => rows.extend(result.findings.iter().map(|finding| FindingRow {
                    severity: finding.severity,
                    target: name.clone(),
                    check: result.meta.id.into(),
                    object: finding.object.clone(),
                    message: finding.summary.clone(),
                })),
            }
        }
        let role = report.role.map(|r| format!("{r}, ")).unwrap_or_default();
        summaries.push((
            name.clone(),
            format!(
                "{role}{} checks: {passed} without findings, {skipped} skipped, {failed} failed",
                report.results.len()
            ),
        ));
    }
    rows.sort_by(|a, b| (rank_of(a), &a.target, &a.check).cmp(&(rank_of(b), &b.target, &b.check)));
    FindingsSection::Shown { rows, summaries }
}

fn rank_of(row: &FindingRow) -> u8 {
    rank(row.severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdbre_check::{checks, CheckResult, Finding};

    fn report(results: Vec<CheckResult>) -> TargetReport {
        TargetReport {
            target: "db:5432/app".into(),
            server_version: Some("15.8".into()),
            role: Some("primary"),
            error: None,
            results,
            duration_ms: 1.0,
        }
    }

    #[test]
    fn findings_worst_first_with_a_summary_per_server() {
        let catalog = checks::all();
        let (a, b, c, d) = (
            catalog[0].meta(),
            catalog[1].meta(),
            catalog[2].meta(),
            catalog[3].meta(),
        );
        let last = vec![
            (
                "db:5432/app".to_string(),
                Some(report(vec![
                    CheckResult::new(
                        a,
                        Status::Ran,
                        vec![Finding::new(
                            Severity::Warning,
                            "pid 7",
                            "idle in transaction",
                        )],
                        1.0,
                    ),
                    CheckResult::new(
                        b,
                        Status::Ran,
                        vec![Finding::new(Severity::Critical, "db app", "wraparound")],
                        1.0,
                    ),
                    CheckResult::new(c, Status::Ran, Vec::new(), 1.0),
                    CheckResult::new(
                        d,
                        Status::Error {
                            message: "permission denied".into(),
                        },
                        Vec::new(),
                        1.0,
                    ),
                ])),
            ),
            ("standby:5433/app".to_string(), None),
        ];
        let FindingsSection::Shown { rows, summaries } = section(&last) else {
            panic!("shown");
        };
        let order: Vec<(Severity, &str)> = rows
            .iter()
            .map(|r| (r.severity, r.check.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                (Severity::Critical, b.id),
                (Severity::Warning, a.id),
                (Severity::Unknown, d.id)
            ]
        );
        assert_eq!(rows[2].message, "check failed: permission denied");
        assert_eq!(
            summaries,
            vec![
                (
                    "db:5432/app".to_string(),
                    "primary, 4 checks: 1 without findings, 0 skipped, 1 failed".to_string()
                ),
                (
                    "standby:5433/app".to_string(),
                    "first check run still in progress".to_string()
                )
            ]
        );
    }

    #[test]
    fn an_unreachable_server_is_an_unknown_row() {
        let mut down = report(Vec::new());
        down.error = Some("cannot connect: connection refused".into());
        let FindingsSection::Shown { rows, .. } = section(&[("db:5432/app".into(), Some(down))])
        else {
            panic!("shown");
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].severity, Severity::Unknown);
        assert!(rows[0].message.contains("connection refused"));
    }
}
