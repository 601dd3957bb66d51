//! `--output nagios`: one status line with perfdata, for Nagios/Icinga/Sensu plugins.

use crate::render::worst;
use crate::{Severity, Status, TargetReport};

/// Renders the plugin output line: `PGDBRE CRITICAL - ... | perfdata`.
pub fn nagios(reports: &[TargetReport]) -> String {
    // Info findings do not change the plugin state: Nagios knows only OK/WARNING/CRITICAL/UNKNOWN.
    let severity = match worst(reports) {
        Severity::Info => Severity::Ok,
        other => other,
    };
    let mut problems = Vec::new();
    let mut perf = Vec::new();
    for report in reports {
        if let Some(error) = &report.error {
            problems.push(format!("{}: {error}", report.target));
            continue;
        }
        for result in &report.results {
            if let Status::Error { message } = &result.status {
                problems.push(format!(
                    "{} {}: check failed: {message}",
                    report.target, result.meta.id
                ));
            }
            for finding in result
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
            {
                problems.push(format!(
                    "{} {} {}: {}",
                    finding.severity.label(),
                    result.meta.id,
                    finding.object,
                    finding.summary
                ));
            }
        }
        let count = |s: Severity| report.results.iter().filter(|r| r.severity == s).count();
        let prefix = if reports.len() > 1 {
            format!("{}_", report.target.replace([' ', '\''], "_"))
        } else {
            String::new()
        };
        perf.push(format!(
            "'{prefix}critical'={} '{prefix}warning'={} '{prefix}time'={:.3}s",
            count(Severity::Critical),
            count(Severity::Warning),
            report.duration_ms / 1000.0
        ));
    }
    let summary = if problems.is_empty() {
        let checks: usize = reports.iter().map(|r| r.results.len()).sum();
        format!("{checks} checks passed")
    } else {
        problems.join("; ")
    };
    if perf.is_empty() {
        format!("PGDBRE {} - {summary}\n", severity.label())
    } else {
        format!(
            "PGDBRE {} - {summary} | {}\n",
            severity.label(),
            perf.join(" ")
        )
    }
}
