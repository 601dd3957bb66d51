//! Replication slot WAL retention: how much WAL each slot holds back, and whether the slot is
//! about to be (or has been) invalidated.
//!
//! Every slot, active or not, pins WAL from its `restart_lsn`. With `max_slot_wal_keep_size` set
//! (PostgreSQL 13+), a slot that falls too far behind is invalidated at the next checkpoint:
//! `wal_status` goes `unreserved` (its WAL is no longer protected and will be removed) and then
//! `lost` (the consumer can never resume and a standby must be re-seeded). Without that limit, a
//! slow consumer's slot grows until `pg_wal` fills the disk. `inactive-replication-slots` names
//! the slots nobody reads; this check sizes every slot.

use crate::finding::human_bytes;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct ReplicationSlotWalRetention;

static META: CheckMeta = CheckMeta {
    id: "replication-slot-wal-retention",
    category: Category::Replication,
    title: "Replication slot WAL retention",
    measures: "WAL retained by each replication slot (current WAL position - restart_lsn) and, on PostgreSQL 13+, \
               whether wal_status says the slot is about to be invalidated (unreserved) or already is (lost).",
    params: &[
        Param { name: "warning", default: 1_073_741_824.0, unit: "bytes", help: "WAL retained by a slot that warns" },
        Param { name: "critical", default: 10_737_418_240.0, unit: "bytes", help: "WAL retained by a slot that is critical" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many slots, worst first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "WAL retained for a slot stays in pg_wal: without max_slot_wal_keep_size it grows until the disk \
              is full and the server stops; with it, a slot that falls behind is invalidated at the next \
              checkpoint ('unreserved' means its WAL is about to go, 'lost' means it has gone) and its \
              standby must be re-seeded or its logical subscription re-synchronised.",
        action: "Find why the consumer (active_pid, or the standby or subscription named by the slot) is \
                 behind: down, slow network, slow replay, or long transactions on a logical publisher. For an \
                 'unreserved' slot act now: let the consumer catch up or raise max_slot_wal_keep_size if the \
                 disk allows. For a 'lost' slot, drop it and rebuild the standby (pg_basebackup) or re-create \
                 the subscription.",
        next: "SELECT slot_name, slot_type, active, active_pid, wal_status, safe_wal_size, \
               pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained \
               FROM pg_replication_slots ORDER BY restart_lsn; SHOW max_slot_wal_keep_size;",
    },
};

/// The query for server major `major`: `wal_status`, `safe_wal_size` and `max_slot_wal_keep_size`
/// exist from PostgreSQL 13; before that only the retained bytes can be judged. On a standby the
/// newest WAL position is the last one received. `$1` is the warning threshold, `$2` the limit.
fn sql(major: u32, in_recovery: bool) -> String {
    let current = if in_recovery {
        "COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
    } else {
        "pg_current_wal_lsn()"
    };
    let (wal_status, safe_wal_size, keep_size) = if major >= 13 {
        (
            "wal_status",
            "safe_wal_size::int8",
            "current_setting('max_slot_wal_keep_size')",
        )
    } else {
        ("NULL::text", "NULL::int8", "NULL::text")
    };
    format!(
        "\
SELECT slot_name::text AS slot_name, slot_type, database::text AS database, active, active_pid,
       restart_lsn::text AS restart_lsn,
       pg_wal_lsn_diff({current}, restart_lsn)::int8 AS retained_bytes,
       {wal_status} AS wal_status,
       {safe_wal_size} AS safe_wal_size_bytes,
       {keep_size} AS max_slot_wal_keep_size
FROM pg_replication_slots
WHERE {wal_status} IN ('unreserved', 'lost')
   OR pg_wal_lsn_diff({current}, restart_lsn)::float8 >= $1::float8
ORDER BY {wal_status} IN ('unreserved', 'lost') DESC, retained_bytes DESC NULLS FIRST
LIMIT $2"
    )
}

#[async_trait::async_trait]
impl Check for ReplicationSlotWalRetention {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let info = ctx.info();
        let warning = ctx.param("warning");
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let rows = ctx
            .query(
                &sql(info.version.major(), info.in_recovery),
                &[&warning, &limit],
            )
            .await?;
        let mut findings = Vec::new();
        for row in rows {
            let slot: String = row.get("slot_name");
            let retained: Option<i64> = row.get("retained_bytes");
            let wal_status: Option<String> = row.get("wal_status");
            let (severity, summary) = match wal_status.as_deref() {
                Some("lost") => (
                    Severity::Critical,
                    format!("slot {slot} is invalidated (wal_status lost): the WAL it needs is gone; re-seed its consumer"),
                ),
                Some("unreserved") => (
                    Severity::Critical,
                    format!(
                        "slot {slot} retains {} and is past max_slot_wal_keep_size (wal_status unreserved): \
                         it will be invalidated at the next checkpoint",
                        human_bytes(retained.unwrap_or(0) as f64)
                    ),
                ),
                _ => {
                    let bytes = retained.unwrap_or(0) as f64;
                    let Some(severity) = ctx.severity_above(bytes) else { continue };
                    let threshold = if severity == Severity::Critical { ctx.param("critical") } else { warning };
                    (
                        severity,
                        format!(
                            "slot {slot} retains {} of WAL (threshold {})",
                            human_bytes(bytes),
                            human_bytes(threshold)
                        ),
                    )
                }
            };
            findings.push(
                Finding::new(severity, format!("slot \"{slot}\""), summary)
                    .with("slot_name", slot)
                    .with("slot_type", row.get::<_, Option<String>>("slot_type"))
                    .with("database", row.get::<_, Option<String>>("database"))
                    .with("active", row.get::<_, bool>("active"))
                    .with("active_pid", row.get::<_, Option<i32>>("active_pid"))
                    .with("restart_lsn", row.get::<_, Option<String>>("restart_lsn"))
                    .with("retained_bytes", retained)
                    .with("wal_status", wal_status)
                    .with(
                        "safe_wal_size_bytes",
                        row.get::<_, Option<i64>>("safe_wal_size_bytes"),
                    )
                    .with(
                        "max_slot_wal_keep_size",
                        row.get::<_, Option<String>>("max_slot_wal_keep_size"),
                    ),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{
        own_cluster, unique_name, write_wal, SlotGuard,
    };
    use crate::testkit;

    #[tokio::test]
    async fn reports_retention_then_invalidation_of_a_lagging_slot() {
        // The smallest limit: one 16 MiB segment beyond the slot's restart_lsn is kept.
        let cluster = own_cluster(0, &[("max_slot_wal_keep_size", "16MB")]);
        let primary = cluster.primary();
        let slot = SlotGuard::physical(primary, &unique_name("pgdbre_t_retention"));
        let dsn = primary.dsn();
        let is_ours = |f: &Finding| {
            f.evidence("slot_name").and_then(|v| v.as_str()) == Some(slot.name.as_str())
        };

        // Quiet with the default thresholds while it retains almost nothing.
        let quiet = testkit::findings(&ReplicationSlotWalRetention, &dsn, &[]).await;
        assert!(!quiet.iter().any(is_ours), "{quiet:?}");

        write_wal(primary, "retention_probe", 1_000);
        let retained = testkit::finding_where(
            &ReplicationSlotWalRetention,
            &dsn,
            &[("warning", 1.0)],
            |f| {
                is_ours(f)
                    && f.evidence("retained_bytes")
                        .and_then(|v| v.as_i64())
                        .is_some_and(|b| b > 0)
            },
        )
        .await;
        assert_eq!(retained.severity, Severity::Warning);
        assert_eq!(
            retained.evidence("wal_status").and_then(|v| v.as_str()),
            Some("reserved")
        );
        assert_eq!(
            retained.evidence("active").and_then(|v| v.as_bool()),
            Some(false)
        );
        assert!(retained
            .evidence("safe_wal_size_bytes")
            .and_then(|v| v.as_i64())
            .is_some());

        // Move several segments past the slot, then let a checkpoint remove what it no longer keeps.
        for _ in 0..4 {
            write_wal(primary, "retention_probe", 100);
            primary.psql("SELECT pg_switch_wal();").expect("switch WAL");
        }
        primary.psql("CHECKPOINT;").expect("checkpoint");
        let invalid = testkit::finding_where(&ReplicationSlotWalRetention, &dsn, &[], |f| {
            is_ours(f)
                && matches!(
                    f.evidence("wal_status").and_then(|v| v.as_str()),
                    Some("unreserved") | Some("lost")
                )
        })
        .await;
        assert_eq!(invalid.severity, Severity::Critical);
        assert_eq!(
            invalid
                .evidence("max_slot_wal_keep_size")
                .and_then(|v| v.as_str()),
            Some("16MB")
        );
    }
}
