//! `--output prometheus`: text exposition for node_exporter's textfile collector or a pushgateway.

use crate::{Severity, Status, TargetReport};
use std::fmt::Write;

/// Renders reports in the Prometheus text exposition format.
pub fn prometheus(reports: &[TargetReport]) -> String {
    let mut out = String::new();
    out.push_str("# HELP pgdbre_check_up Whether the target could be checked (1) or not (0).\n# TYPE pgdbre_check_up gauge\n");
    for r in reports {
        let _ = writeln!(
            out,
            "pgdbre_check_up{{target=\"{}\"}} {}",
            esc(&r.target),
            u8::from(r.error.is_none())
        );
    }
    out.push_str("# HELP pgdbre_check_status Worst severity per check: 0 ok, 1 warning, 2 critical, 3 unknown; -1 skipped.\n# TYPE pgdbre_check_status gauge\n");
    for r in reports {
        for c in &r.results {
            let value = match (&c.status, c.severity) {
                (Status::Skipped { .. }, _) => -1,
                (_, s) => i32::from(s.nagios_code()),
            };
            let _ = writeln!(
                out,
                "pgdbre_check_status{{target=\"{}\",check=\"{}\",category=\"{}\"}} {value}",
                esc(&r.target),
                c.meta.id,
                c.meta.category.name()
            );
        }
    }
    out.push_str("# HELP pgdbre_check_findings Findings per check and severity.\n# TYPE pgdbre_check_findings gauge\n");
    for r in reports {
        for c in &r.results {
            for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
                let n = c.findings.iter().filter(|f| f.severity == severity).count();
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "pgdbre_check_findings{{target=\"{}\",check=\"{}\",severity=\"{}\"}} {n}",
                        esc(&r.target),
                        c.meta.id,
                        severity.label().to_lowercase()
                    );
                }
            }
        }
    }
    out.push_str("# HELP pgdbre_check_duration_seconds Time taken by each check.\n# TYPE pgdbre_check_duration_seconds gauge\n");
    for r in reports {
        for c in &r.results {
            let _ = writeln!(
                out,
                "pgdbre_check_duration_seconds{{target=\"{}\",check=\"{}\"}} {:.6}",
                esc(&r.target),
                c.meta.id,
                c.duration_ms / 1000.0
            );
        }
    }
    out
}

/// Escapes a label value per the exposition format.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
