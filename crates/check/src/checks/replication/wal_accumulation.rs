//! WAL accumulating in `pg_wal` beyond what the server's own settings explain.
//!
//! In steady state `pg_wal` holds about `max_wal_size` plus `wal_keep_size`. Much more than that
//! means something stops WAL from being recycled — a replication slot, a failing archiver, a
//! checkpoint that cannot finish — and the volume fills until the server stops. This check looks
//! at the symptom (bytes in `pg_wal`) and names the likely cause in its evidence, so it fires
//! even when the cause is one no other check knows about.

use crate::finding::human_bytes;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct WalAccumulation;

static META: CheckMeta = CheckMeta {
    id: "wal-accumulation",
    category: Category::Archiving,
    title: "WAL accumulating in pg_wal",
    measures: "Bytes in pg_wal as a multiple of max_wal_size + wal_keep_size, with the slot retaining the most WAL and the archiver backlog as likely causes.",
    params: &[
        Param { name: "warning", default: 2.0, unit: "ratio", help: "pg_wal size / (max_wal_size + wal_keep_size) that warns" },
        Param { name: "critical", default: 4.0, unit: "ratio", help: "pg_wal size / (max_wal_size + wal_keep_size) that is critical" },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "WAL that cannot be recycled grows pg_wal until its volume is full; then the server PANICs and \
              stops accepting writes, and recovery needs free space first.",
        action: "Look at the evidence for the cause: a replication slot with large retained WAL (bring its \
                 consumer back or drop the slot), a backlog of .ready files (fix archive_command), or neither \
                 (check that checkpoints complete: log_checkpoints, pg_stat_bgwriter/pg_stat_checkpointer). \
                 Never delete files from pg_wal by hand.",
        next: "SELECT slot_name, active, wal_status, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) \
               FROM pg_replication_slots ORDER BY restart_lsn; SELECT * FROM pg_stat_archiver;",
    },
};

/// `wal_keep_size` exists from PostgreSQL 13; before that `wal_keep_segments` × 16 MiB is close
/// enough (segment size is rarely changed). The slot's retention is measured against the
/// current insert (primary) or receive (standby) position.
fn sql(major: u32, in_recovery: bool) -> String {
    let keep = if major >= 13 {
        "pg_size_bytes(current_setting('wal_keep_size'))"
    } else {
        "current_setting('wal_keep_segments')::int8 * 16777216"
    };
    let position = if in_recovery {
        "pg_last_wal_receive_lsn()"
    } else {
        "pg_current_wal_lsn()"
    };
    format!(
        "SELECT (SELECT coalesce(sum(size), 0)::int8 FROM pg_ls_waldir()) AS wal_bytes,
                (SELECT count(*)::int8 FROM pg_ls_waldir()) AS wal_files,
                pg_size_bytes(current_setting('max_wal_size')) AS max_wal_size_bytes,
                {keep} AS wal_keep_size_bytes,
                (SELECT count(*)::int8 FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS archive_ready,
                s.slot_name::text AS slot_name,
                pg_wal_lsn_diff({position}, s.restart_lsn)::int8 AS slot_retained_bytes
         FROM (SELECT 1) AS one
         LEFT JOIN LATERAL (SELECT slot_name, restart_lsn FROM pg_replication_slots
                            WHERE restart_lsn IS NOT NULL ORDER BY restart_lsn LIMIT 1) s ON true"
    )
}

#[async_trait::async_trait]
impl Check for WalAccumulation {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let info = ctx.info();
        let row = ctx
            .query_one(&sql(info.version.major(), info.in_recovery), &[])
            .await?;
        let wal_bytes: i64 = row.get("wal_bytes");
        let expected =
            row.get::<_, i64>("max_wal_size_bytes") + row.get::<_, i64>("wal_keep_size_bytes");
        let ratio = wal_bytes as f64 / expected.max(1) as f64;
        let Some(severity) = ctx.severity_above(ratio) else {
            return Ok(Vec::new());
        };
        let slot: Option<String> = row.get("slot_name");
        let slot_retained: Option<i64> = row.get("slot_retained_bytes");
        let ready: i64 = row.get("archive_ready");
        let cause = match (&slot, slot_retained) {
            (Some(name), Some(bytes)) if bytes as f64 >= wal_bytes as f64 * 0.5 => {
                format!("slot \"{name}\" retains {}", human_bytes(bytes as f64))
            }
            _ if ready > 0 => format!("{ready} segment(s) wait for the archiver"),
            _ => "no slot or archiver backlog explains it: check that checkpoints complete"
                .to_string(),
        };
        Ok(vec![Finding::new(
            severity,
            "pg_wal",
            format!(
                "pg_wal holds {} ({ratio:.1}x max_wal_size + wal_keep_size = {}); likely cause: {cause}",
                human_bytes(wal_bytes as f64),
                human_bytes(expected as f64)
            ),
        )
        .with("wal_bytes", wal_bytes)
        .with("wal_files", row.get::<_, i64>("wal_files"))
        .with("ratio", (ratio * 100.0).round() / 100.0)
        .with("max_wal_size_bytes", row.get::<_, i64>("max_wal_size_bytes"))
        .with("wal_keep_size_bytes", row.get::<_, i64>("wal_keep_size_bytes"))
        .with("oldest_slot", slot)
        .with("oldest_slot_retained_bytes", slot_retained)
        .with("archive_ready", ready)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, SlotGuard};
    use crate::testkit;
    use crate::Severity;

    #[tokio::test]
    async fn a_slot_holding_wal_is_named_as_the_cause() {
        // max_wal_size at its minimum (two 16 MiB segments), so a few switched segments held by
        // a slot already exceed twice what the settings explain.
        let cluster = own_cluster(0, &[("max_wal_size", "32MB"), ("min_wal_size", "32MB")]);
        let primary = cluster.primary();
        let dsn = primary.dsn();
        assert!(
            testkit::findings(&WalAccumulation, &dsn, &[])
                .await
                .is_empty(),
            "a fresh server is quiet"
        );
        let _slot = SlotGuard::physical(primary, "holds_wal");
        let mut script = String::from("CREATE TABLE churn (id int);\n");
        for i in 0..8 {
            script.push_str(&format!(
                "INSERT INTO churn VALUES ({i}); SELECT pg_switch_wal();\n"
            ));
        }
        primary
            .psql(&script)
            .expect("write and switch WAL segments");
        let finding = testkit::finding_where(&WalAccumulation, &dsn, &[], |f| {
            f.severity >= Severity::Warning
        })
        .await;
        assert_eq!(
            finding.evidence("oldest_slot").and_then(|v| v.as_str()),
            Some("holds_wal")
        );
        assert!(
            finding.summary.contains("slot \"holds_wal\""),
            "{}",
            finding.summary
        );
        let ratio = finding.evidence("ratio").and_then(|v| v.as_f64()).unwrap();
        assert!(ratio >= 2.0, "ratio {ratio}");
    }
}
