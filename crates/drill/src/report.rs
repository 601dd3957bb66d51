//! The result of a drill — passed or failed, with every measurement it got to — and its text
//! rendering. `--output json` is this struct serialised; the store keeps it as evidence
//! (`evidence.rs`).

use crate::measure::{format_seconds, RpoReference};
use pgdbre_backup::format_utc;
use pgdbre_backup::wal::Lsn;
use serde::Serialize;
use std::fmt::Write;
use std::path::PathBuf;

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Restored, answered the smoke SQL, met every target.
    Pass,
    /// Anything else.
    Fail,
}

impl Verdict {
    /// `pass` or `fail`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

/// Where the recovered data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveredTo {
    /// The commit time of the last transaction replayed.
    LastReplayedCommit,
    /// The backup's end time (recovery replayed no transaction).
    BackupEnd,
}

impl RecoveredTo {
    /// For sentences: "the last replayed commit".
    pub fn describe(self) -> &'static str {
        match self {
            RecoveredTo::LastReplayedCommit => "the last replayed commit",
            RecoveredTo::BackupEnd => "the backup's end (no transaction replayed)",
        }
    }
}

/// The measured recovery point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rpo {
    /// Reference point minus the newest data recovered.
    pub seconds: f64,
    /// What the reference point is.
    pub reference: RpoReference,
    /// The reference point, Unix ms.
    pub reference_unix_ms: i64,
    /// What the newest data recovered is.
    pub recovered_to: RecoveredTo,
    /// Its time, Unix ms.
    pub recovered_to_unix_ms: i64,
}

/// How long each phase took, in seconds; `None` for phases the drill did not reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Reading the repository and writing the files.
    pub restore_seconds: Option<f64>,
    /// Server start until it accepted connections (recovery to consistency included).
    pub startup_seconds: Option<f64>,
    /// Accepting connections until recovery ended at the target and the server was promoted.
    pub recovery_seconds: Option<f64>,
    /// The smoke SQL.
    pub smoke_seconds: Option<f64>,
}

/// One database's smoke result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmokeResult {
    /// The database.
    pub database: String,
    /// What it showed: `412 relations, 3 user tables`, or the custom SQL's row count.
    pub detail: String,
}

/// Everything a drill measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillReport {
    /// Drill start, Unix ms.
    pub started_unix_ms: i64,
    /// Drill end (cleanup done), Unix ms.
    pub finished_unix_ms: i64,
    /// Repository location.
    pub repository: String,
    /// The backup restored.
    pub backup_label: Option<String>,
    /// Its PostgreSQL version.
    pub pg_version: Option<String>,
    /// Its stop LSN, the earliest point it can recover to.
    pub backup_stop_lsn: Option<Lsn>,
    /// Its end time, Unix ms.
    pub backup_stop_unix_ms: Option<i64>,
    /// The recovery target: `latest`, `immediate`, `time …`, `lsn …`, `xid …`, `name …`.
    pub target: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed (empty when it passed).
    pub reasons: Vec<String>,
    /// Drill start to the first successful smoke query.
    pub rto_seconds: Option<f64>,
    /// The RTO target.
    pub rto_target_seconds: Option<f64>,
    /// The measured recovery point.
    pub rpo: Option<Rpo>,
    /// The RPO target.
    pub rpo_target_seconds: Option<f64>,
    /// Phase timings.
    pub phases: Phases,
    /// The last WAL position replayed.
    pub replay_lsn: Option<Lsn>,
    /// Smoke results per database.
    pub smoke: Vec<SmokeResult>,
    /// The scratch directory, when kept (`--keep`).
    pub kept_dir: Option<PathBuf>,
    /// The last lines of the server log, secrets redacted.
    pub log_excerpt: Vec<String>,
    /// The id of the evidence row, once recorded.
    pub evidence_id: Option<i64>,
}

impl DrillReport {
    /// The readable report `pgdbre drill` prints.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let backup = match (&self.backup_label, &self.pg_version) {
            (Some(label), Some(version)) => format!("backup {label} (PostgreSQL {version})"),
            (Some(label), None) => format!("backup {label}"),
            _ => "no backup chosen".to_string(),
        };
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        };
        let _ = writeln!(
            out,
            "pgdbre drill: {verdict}: {backup} of {}, target {}",
            self.repository, self.target
        );
        for reason in &self.reasons {
            let _ = writeln!(out, "  reason:   {reason}");
        }
        let target = |seconds: Option<f64>| match seconds {
            Some(seconds) => format!("target {}", format_seconds(seconds)),
            None => "no target".to_string(),
        };
        match self.rto_seconds {
            Some(rto) => {
                let _ = writeln!(
                    out,
                    "  RTO       {:<9} ({}): drill start to the first successful smoke query",
                    format_seconds(rto),
                    target(self.rto_target_seconds)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  RTO       not reached ({})",
                    target(self.rto_target_seconds)
                );
            }
        }
        let phases = [
            (
                "restore",
                self.phases.restore_seconds,
                "files restored and verified",
            ),
            (
                "startup",
                self.phases.startup_seconds,
                "server accepting connections",
            ),
            (
                "recovery",
                self.phases.recovery_seconds,
                "recovery ended at the target, promoted",
            ),
            ("smoke", self.phases.smoke_seconds, "smoke SQL"),
        ];
        for (name, seconds, what) in phases {
            if let Some(seconds) = seconds {
                let _ = writeln!(out, "    {name:<9} {:<9} {what}", format_seconds(seconds));
            }
        }
        if let Some(rpo) = &self.rpo {
            let reference = match rpo.reference {
                RpoReference::TargetTime => "target time",
                RpoReference::DrillStart => "drill start",
            };
            let _ = writeln!(
                out,
                "  RPO       {:<9} ({}): {reference} {} vs {} {}",
                format_seconds(rpo.seconds),
                target(self.rpo_target_seconds),
                utc(rpo.reference_unix_ms),
                rpo.recovered_to.describe(),
                utc(rpo.recovered_to_unix_ms)
            );
        }
        if let Some(replayed) = self.replay_lsn {
            let backup_end = self
                .backup_stop_lsn
                .map(|lsn| format!(" (the backup ends at {lsn})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  replayed  up to {replayed}{backup_end}");
        }
        if !self.smoke.is_empty() {
            let databases: Vec<String> = self
                .smoke
                .iter()
                .map(|result| format!("{}: {}", result.database, result.detail))
                .collect();
            let _ = writeln!(out, "  smoke     {}", databases.join("; "));
        }
        if let Some(dir) = &self.kept_dir {
            let _ = writeln!(out, "  kept      {}", dir.display());
        }
        if self.verdict == Verdict::Fail && !self.log_excerpt.is_empty() {
            let _ = writeln!(out, "  server log (last {} lines):", self.log_excerpt.len());
            for line in &self.log_excerpt {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }
}

fn utc(unix_ms: i64) -> String {
    format_utc(unix_ms.saturating_mul(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::recovery_point;

    fn passed() -> DrillReport {
        DrillReport {
            started_unix_ms: 1_764_094_200_000,
            finished_unix_ms: 1_764_094_210_000,
            repository: "/var/lib/pgdbre/repo".into(),
            backup_label: Some("20261125-180000F".into()),
            pg_version: Some("15.14".into()),
            backup_stop_lsn: Some("0/3000100".parse().unwrap()),
            backup_stop_unix_ms: Some(1_764_094_000_000),
            target: "latest".into(),
            verdict: Verdict::Pass,
            reasons: Vec::new(),
            rto_seconds: Some(4.24),
            rto_target_seconds: Some(900.0),
            rpo: Some(recovery_point(
                RpoReference::DrillStart,
                1_764_094_200_000,
                Some(1_764_094_198_000),
                1_764_094_000_000,
            )),
            rpo_target_seconds: Some(300.0),
            phases: Phases {
                restore_seconds: Some(1.5),
                startup_seconds: Some(0.5),
                recovery_seconds: Some(2.0),
                smoke_seconds: Some(0.05),
            },
            replay_lsn: Some("0/5000148".parse().unwrap()),
            smoke: vec![SmokeResult {
                database: "postgres".into(),
                detail: "412 relations, 0 user tables".into(),
            }],
            kept_dir: None,
            log_excerpt: vec!["LOG:  database system is ready to accept connections".into()],
            evidence_id: Some(3),
        }
    }

    #[test]
    fn text_report_of_a_passed_drill() {
        let text = passed().render_text();
        assert!(text.starts_with("pgdbre drill: PASS: backup 20261125-180000F (PostgreSQL 15.14) of /var/lib/pgdbre/repo, target latest\n"), "{text}");
        assert!(text.contains("  RTO       4.2 s     (target 15m00s): drill start to the first successful smoke query\n"), "{text}");
        assert!(
            text.contains("    recovery  2.0 s     recovery ended at the target, promoted\n"),
            "{text}"
        );
        assert!(text.contains("  RPO       2.0 s     (target 5m00s): drill start 2025-11-25 18:10:00 UTC vs the last replayed commit 2025-11-25 18:09:58 UTC\n"), "{text}");
        assert!(
            text.contains("  replayed  up to 0/5000148 (the backup ends at 0/3000100)\n"),
            "{text}"
        );
        // The log is for failures.
        assert!(!text.contains("server log"), "{text}");
    }

    #[test]
    fn text_report_of_a_failed_drill_shows_why_and_the_log() {
        let mut report = passed();
        report.verdict = Verdict::Fail;
        report.reasons = vec!["RTO 4.2 s exceeds target 1 ms".into()];
        let text = report.render_text();
        assert!(text.contains("pgdbre drill: FAIL"), "{text}");
        assert!(
            text.contains("  reason:   RTO 4.2 s exceeds target 1 ms\n"),
            "{text}"
        );
        assert!(
            text.contains("  server log (last 1 lines):\n    LOG:  database system is ready"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["verdict"], "fail");
        assert_eq!(json["replay_lsn"], "0/5000148");
        assert_eq!(json["rpo"]["reference"], "drill_start");
    }
}
