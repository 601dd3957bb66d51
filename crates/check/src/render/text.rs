//! Human summary: findings ranked by severity with evidence and the next step, then a tally.

use crate::finding::human_bytes;
use crate::{Severity, Status, TargetReport};
use serde_json::Value;
use std::fmt::Write;

/// Renders reports as text; `color` adds ANSI colours to severity labels.
pub fn text(reports: &[TargetReport], color: bool) -> String {
    let mut out = String::new();
    for report in reports {
        target(&mut out, report, color);
    }
    out
}

fn paint(label: &str, severity: Severity, color: bool) -> String {
    if !color {
        return format!("{label:<8}");
    }
    let code = match severity {
        Severity::Critical | Severity::Unknown => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "36",
        Severity::Ok => "32",
    };
    format!("\x1b[{code}m{label:<8}\x1b[0m")
}

fn target(out: &mut String, report: &TargetReport, color: bool) {
    let version = report
        .server_version
        .as_deref()
        .map(|v| format!(" — PostgreSQL {v}"))
        .unwrap_or_default();
    let role = report.role.map(|r| format!(", {r}")).unwrap_or_default();
    let _ = writeln!(out, "{}{version}{role}", report.target);
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "  {} {error}\n",
            paint("UNKNOWN", Severity::Unknown, color)
        );
        return;
    }
    let mut ranked: Vec<_> = report
        .results
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| b.severity.cmp(&a.severity).then(ra.meta.id.cmp(rb.meta.id)));
    for (result, finding) in &ranked {
        let _ = writeln!(
            out,
            "  {} {:<32} {}: {}",
            paint(finding.severity.label(), finding.severity, color),
            result.meta.id,
            finding.object,
            finding.summary
        );
        let evidence: Vec<String> = finding
            .evidence
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", evidence_value(k, v)))
            .collect();
        if !evidence.is_empty() {
            let _ = writeln!(out, "           {}", evidence.join("  "));
        }
    }
    // One "what to do" per check that fired, not per finding.
    let mut fired: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.severity >= Severity::Warning && !r.findings.is_empty())
        .collect();
    fired.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.meta.id.cmp(b.meta.id)));
    if !fired.is_empty() {
        let _ = writeln!(
            out,
            "\n  What to do (full runbook: pgdbre check --explain ID):"
        );
        for result in fired {
            let _ = writeln!(
                out,
                "  - {}: {}",
                result.meta.id, result.meta.runbook.action
            );
        }
    }
    let errors: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| match &r.status {
            Status::Error { message } => Some((r.meta.id, message)),
            _ => None,
        })
        .collect();
    for (id, message) in &errors {
        let _ = writeln!(
            out,
            "  {} {id:<32} check failed: {message}",
            paint("UNKNOWN", Severity::Unknown, color)
        );
    }
    let skipped: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| match &r.status {
            Status::Skipped { reason, fix } => Some((r.meta.id, reason, fix)),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "\n  Skipped:");
        for (id, reason, fix) in &skipped {
            let fix = fix
                .as_deref()
                .map(|f| format!(" — fix: {f}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  - {id}: {reason}{fix}");
        }
    }
    let count = |s: Severity| {
        report
            .results
            .iter()
            .filter(|r| r.severity == s && matches!(r.status, Status::Ran))
            .count()
    };
    let _ = writeln!(
        out,
        "\n  {} checks in {:.0} ms: {} critical, {} warning, {} info, {} ok, {} skipped, {} failed\n",
        report.results.len(),
        report.duration_ms,
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
        count(Severity::Ok),
        skipped.len(),
        errors.len()
    );
}

/// Evidence shown as a DBRE reads it: byte counts humanised, long strings cut.
fn evidence_value(key: &str, value: &Value) -> String {
    match value {
        Value::Number(n) if key.ends_with("_bytes") => human_bytes(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => {
            let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
            if one_line.chars().count() > 80 {
                format!("\"{}…\"", one_line.chars().take(80).collect::<String>())
            } else if one_line.contains(' ') {
                format!("\"{one_line}\"")
            } else {
                one_line
            }
        }
        other => other.to_string(),
    }
}
