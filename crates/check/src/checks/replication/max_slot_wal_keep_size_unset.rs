//! `max_slot_wal_keep_size` unset while replication slots exist.
//!
//! With the default `-1` a replication slot retains WAL without limit: one stuck or forgotten
//! consumer fills `pg_wal` and stops the primary. Setting the limit (PostgreSQL 13+) trades that
//! outage for invalidating the one slot that fell too far behind, which
//! `replication-slot-wal-retention` then reports.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Role, Runbook, Severity,
};

/// See the module docs.
pub struct MaxSlotWalKeepSizeUnset;

static META: CheckMeta = CheckMeta {
    id: "max-slot-wal-keep-size-unset",
    category: Category::Replication,
    title: "Unbounded WAL retention by replication slots",
    measures: "Whether replication slots exist while max_slot_wal_keep_size is -1 (no limit on the WAL they retain).",
    params: &[],
    requires: Requires { min_major: 13, pg_monitor: false, superuser: false, role: Role::Any },
    runbook: Runbook {
        why: "With max_slot_wal_keep_size = -1 a slot whose consumer stops reading retains WAL without limit: \
              pg_wal grows until the disk is full and the server stops accepting writes, taking every \
              application down for the sake of one standby or subscription.",
        action: "Set max_slot_wal_keep_size below the free space of the pg_wal volume (leave room for \
                 max_wal_size and a margin); a slot that falls further behind is then invalidated instead, \
                 and only its consumer needs re-seeding. Monitor slot retention so that rarely happens.",
        next: "SELECT slot_name, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) \
               FROM pg_replication_slots; ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();",
    },
};

/// `setting` is in megabytes; -1 means no limit. Slot names are capped to keep evidence short.
const SQL: &str = "\
SELECT (SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size') AS setting,
       count(*)::int8 AS slots,
       count(*) FILTER (WHERE NOT active)::int8 AS inactive_slots,
       (array_agg(slot_name::text ORDER BY slot_name))[1:10] AS slot_names
FROM pg_replication_slots";

#[async_trait::async_trait]
impl Check for MaxSlotWalKeepSizeUnset {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let setting: Option<String> = row.get("setting");
        let slots: i64 = row.get("slots");
        if setting.as_deref() != Some("-1") || slots == 0 {
            return Ok(Vec::new());
        }
        let names: Option<Vec<String>> = row.get("slot_names");
        Ok(vec![Finding::new(
            Severity::Warning,
            "setting max_slot_wal_keep_size",
            format!("{slots} replication slot(s) may retain WAL without limit: max_slot_wal_keep_size is -1"),
        )
        .with("max_slot_wal_keep_size", setting)
        .with("slot_count", slots)
        .with("inactive_slot_count", row.get::<_, i64>("inactive_slots"))
        .with("slot_names", names.unwrap_or_default())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, SlotGuard};
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_slots_without_a_retention_limit() {
        let cluster = own_cluster(0, &[("max_slot_wal_keep_size", "-1")]);
        let primary = cluster.primary();
        let dsn = primary.dsn();

        // No slots yet: nothing can retain WAL.
        let quiet = testkit::findings(&MaxSlotWalKeepSizeUnset, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");

        let slot = SlotGuard::physical(primary, "pgdbre_t_unbounded");
        let findings = testkit::findings(&MaxSlotWalKeepSizeUnset, &dsn, &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding
                .evidence("max_slot_wal_keep_size")
                .and_then(|v| v.as_str()),
            Some("-1")
        );
        assert_eq!(
            finding.evidence("slot_count").and_then(|v| v.as_i64()),
            Some(1)
        );
        assert_eq!(
            finding.evidence("slot_names"),
            Some(&serde_json::json!([slot.name]))
        );
    }

    #[tokio::test]
    async fn quiet_on_the_lab_which_sets_a_limit() {
        let cluster = testing::shared();
        let findings =
            testkit::findings(&MaxSlotWalKeepSizeUnset, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
