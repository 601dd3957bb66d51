//! A drill report as evidence in the state store (`pgdbre_store::DrillRecord`): what
//! `pgdbre drill --history` lists and `restore_time` SLOs count.

use crate::report::DrillReport;
use pgdbre_store::{DrillRecord, Store, StoreError};

/// The store row for `report`.
pub fn to_record(report: &DrillReport) -> DrillRecord {
    DrillRecord {
        id: 0,
        started_unix_ms: report.started_unix_ms,
        finished_unix_ms: report.finished_unix_ms,
        repository: pgdbre_pg::redact(&report.repository),
        backup_label: report.backup_label.clone(),
        target: report.target.clone(),
        verdict: report.verdict.as_str().to_string(),
        reasons: report.reasons.join("\n"),
        rto_seconds: report.rto_seconds,
        rpo_seconds: report.rpo.as_ref().map(|rpo| rpo.seconds),
        rto_target_seconds: report.rto_target_seconds,
        rpo_target_seconds: report.rpo_target_seconds,
        restore_seconds: report.phases.restore_seconds,
        startup_seconds: report.phases.startup_seconds,
        recovery_seconds: report.phases.recovery_seconds,
        smoke_seconds: report.phases.smoke_seconds,
        backup_stop_lsn: report.backup_stop_lsn.map(|lsn| lsn.to_string()),
        replay_lsn: report.replay_lsn.map(|lsn| lsn.to_string()),
        recovered_to_unix_ms: report.rpo.as_ref().map(|rpo| rpo.recovered_to_unix_ms),
        log_excerpt: report.log_excerpt.join("\n"),
    }
}

/// Records `report` in `store` and sets its `evidence_id`.
pub fn record(report: &mut DrillReport, store: &mut dyn Store) -> Result<i64, StoreError> {
    let id = store.record_drill(&to_record(report))?;
    report.evidence_id = Some(id);
    Ok(id)
}
