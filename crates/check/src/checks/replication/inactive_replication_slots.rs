//! Inactive replication slots: slots no consumer is connected to.
//!
//! A slot keeps every WAL segment from its `restart_lsn` on (and, for logical slots, the catalog
//! rows its decoding may still need), whether or not anyone reads from it. A slot left behind by a
//! decommissioned standby or an abandoned logical subscription fills `pg_wal` until the disk is
//! full and the primary stops. `replication-slot-wal-retention` sizes what any slot retains;
//! this check names the slots nobody uses.

use crate::finding::human_bytes;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct InactiveReplicationSlots;

static META: CheckMeta = CheckMeta {
    id: "inactive-replication-slots",
    category: Category::Replication,
    title: "Inactive replication slots",
    measures: "Replication slots with no connected consumer (active = false) and the WAL each retains \
               (current WAL position - restart_lsn).",
    params: &[
        Param {
            name: "critical",
            default: 10_737_418_240.0,
            unit: "bytes",
            help: "WAL retained by an inactive slot that is critical (any inactive slot warns)",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many slots, largest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "An inactive slot retains WAL (and, for a logical slot, old catalog rows) for a consumer that is \
              not reading: pg_wal grows until the disk fills and the server stops accepting writes.",
        action: "Find the slot's consumer from its name (a standby, a logical subscription, a CDC connector). \
                 If it is only temporarily down, bring it back before the retained WAL outgrows the disk. If it \
                 is gone for good, drop the slot. Set max_slot_wal_keep_size so a forgotten slot is invalidated \
                 before it fills the disk.",
        next: "SELECT slot_name, slot_type, database, active, restart_lsn, \
               pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained \
               FROM pg_replication_slots WHERE NOT active; -- then: SELECT pg_drop_replication_slot('<slot_name>');",
    },
};

/// The query for server major `major`; `wal_status` is PostgreSQL 13+, `inactive_since` and
/// `invalidation_reason` 17+. On a standby the newest WAL position is the last one received.
fn sql(major: u32, in_recovery: bool) -> String {
    let current = if in_recovery {
        "COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
    } else {
        "pg_current_wal_lsn()"
    };
    let wal_status = if major >= 13 {
        "wal_status"
    } else {
        "NULL::text"
    };
    let (inactive_seconds, invalidation_reason) = if major >= 17 {
        (
            "EXTRACT(EPOCH FROM now() - inactive_since)::float8",
            "invalidation_reason",
        )
    } else {
        ("NULL::float8", "NULL::text")
    };
    format!(
        "\
SELECT slot_name::text AS slot_name, slot_type, database::text AS database, plugin::text AS plugin,
       restart_lsn::text AS restart_lsn,
       pg_wal_lsn_diff({current}, restart_lsn)::int8 AS retained_bytes,
       {wal_status} AS wal_status,
       {inactive_seconds} AS inactive_seconds,
       {invalidation_reason} AS invalidation_reason,
       count(*) OVER ()::int8 AS inactive_slots
FROM pg_replication_slots
WHERE NOT active AND NOT temporary
ORDER BY {wal_status} IS NOT DISTINCT FROM 'lost' DESC, retained_bytes DESC NULLS LAST
LIMIT $1"
    )
}

#[async_trait::async_trait]
impl Check for InactiveReplicationSlots {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let info = ctx.info();
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let critical = ctx.param("critical");
        let mut findings = Vec::new();
        for row in ctx
            .query(&sql(info.version.major(), info.in_recovery), &[&limit])
            .await?
        {
            let slot: String = row.get("slot_name");
            let retained: Option<i64> = row.get("retained_bytes");
            let wal_status: Option<String> = row.get("wal_status");
            let lost = wal_status.as_deref() == Some("lost");
            let (severity, summary) = if lost {
                (Severity::Critical, format!("inactive slot {slot} is invalidated (wal_status lost): its consumer cannot resume"))
            } else {
                let bytes = retained.unwrap_or(0) as f64;
                let severity = if bytes >= critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                (
                    severity,
                    format!(
                        "inactive slot {slot} retains {} of WAL (critical at {})",
                        human_bytes(bytes),
                        human_bytes(critical)
                    ),
                )
            };
            findings.push(
                Finding::new(severity, format!("slot \"{slot}\""), summary)
                    .with("slot_name", slot)
                    .with("slot_type", row.get::<_, Option<String>>("slot_type"))
                    .with("database", row.get::<_, Option<String>>("database"))
                    .with("plugin", row.get::<_, Option<String>>("plugin"))
                    .with("restart_lsn", row.get::<_, Option<String>>("restart_lsn"))
                    .with("retained_bytes", retained)
                    .with("wal_status", wal_status)
                    .with(
                        "inactive_seconds",
                        row.get::<_, Option<f64>>("inactive_seconds")
                            .map(f64::round),
                    )
                    .with(
                        "invalidation_reason",
                        row.get::<_, Option<String>>("invalidation_reason"),
                    )
                    .with("inactive_slots", row.get::<_, i64>("inactive_slots")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, unique_name, SlotGuard};
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_the_slot_of_a_stopped_standby() {
        let cluster = own_cluster(1, &[]);
        let replica = &cluster.replicas()[0];
        let slot = format!("{}_slot", replica.name());
        let dsn = cluster.primary().dsn();

        // Streaming: its slot is active, so nothing to report.
        let quiet = testkit::findings(&InactiveReplicationSlots, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");

        replica.stop().expect("stop the replica");
        let finding = testkit::finding_where(&InactiveReplicationSlots, &dsn, &[], |f| {
            f.evidence("slot_name").and_then(|v| v.as_str()) == Some(slot.as_str())
        })
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("slot \"{slot}\""));
        assert_eq!(
            finding.evidence("slot_type").and_then(|v| v.as_str()),
            Some("physical")
        );
        assert!(finding
            .evidence("retained_bytes")
            .and_then(|v| v.as_i64())
            .is_some_and(|b| b >= 0));
    }

    #[tokio::test]
    async fn reports_an_unused_slot_and_its_retention_as_critical_above_the_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let slot = SlotGuard::physical(primary, &unique_name("pgdbre_t_inactive"));
        let dsn = primary.dsn();
        let wanted = |f: &Finding| {
            f.evidence("slot_name").and_then(|v| v.as_str()) == Some(slot.name.as_str())
        };

        let finding = testkit::finding_where(
            &InactiveReplicationSlots,
            &dsn,
            &[("max_findings", 1000.0)],
            wanted,
        )
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding.evidence("slot_type").and_then(|v| v.as_str()),
            Some("physical")
        );
        assert!(finding
            .evidence("restart_lsn")
            .and_then(|v| v.as_str())
            .is_some());

        // A freshly reserved slot retains at least 0 bytes: a threshold of 0 makes it critical.
        let critical = testkit::finding_where(
            &InactiveReplicationSlots,
            &dsn,
            &[("max_findings", 1000.0), ("critical", 0.0)],
            wanted,
        )
        .await;
        assert_eq!(critical.severity, Severity::Critical);
        drop(slot);
    }
}
