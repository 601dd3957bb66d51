//! `pg_settings_*`: the numeric and boolean settings a reliability engineer alerts or plots
//! against, converted to base units as postgres_exporter does (`_bytes`, `_seconds` suffixes,
//! booleans as 0/1, "[Units converted to …]" in the help). A fixed list keeps the output small;
//! settings a version does not have are simply absent.

use super::{Collector, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct Settings;

/// The settings exported. postgres_exporter exports every numeric setting (~250 series); these
/// are the ones dashboards and capacity/alert rules use.
pub const EXPORTED: &[&str] = &[
    "archive_timeout",
    "autovacuum",
    "autovacuum_analyze_scale_factor",
    "autovacuum_freeze_max_age",
    "autovacuum_max_workers",
    "autovacuum_multixact_freeze_max_age",
    "autovacuum_naptime",
    "autovacuum_vacuum_cost_delay",
    "autovacuum_vacuum_cost_limit",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_work_mem",
    "block_size",
    "checkpoint_completion_target",
    "checkpoint_timeout",
    "data_checksums",
    "deadlock_timeout",
    "effective_cache_size",
    "effective_io_concurrency",
    "fsync",
    "full_page_writes",
    "hot_standby",
    "hot_standby_feedback",
    "idle_in_transaction_session_timeout",
    "jit",
    "lock_timeout",
    "log_min_duration_statement",
    "maintenance_work_mem",
    "max_connections",
    "max_locks_per_transaction",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_slot_wal_keep_size",
    "max_standby_archive_delay",
    "max_standby_streaming_delay",
    "max_wal_senders",
    "max_wal_size",
    "max_worker_processes",
    "min_wal_size",
    "random_page_cost",
    "seq_page_cost",
    "server_version_num",
    "shared_buffers",
    "statement_timeout",
    "superuser_reserved_connections",
    "temp_file_limit",
    "track_commit_timestamp",
    "track_io_timing",
    "vacuum_cost_limit",
    "vacuum_failsafe_age",
    "vacuum_freeze_min_age",
    "vacuum_freeze_table_age",
    "wal_buffers",
    "wal_keep_size",
    "wal_log_hints",
    "wal_receiver_timeout",
    "wal_segment_size",
    "wal_sender_timeout",
    "work_mem",
];

const SQL: &str = "SELECT name, setting, coalesce(unit, ''), vartype, short_desc \
    FROM pg_catalog.pg_settings \
    WHERE vartype IN ('bool', 'integer', 'real') AND name = ANY($1) ORDER BY name";

/// A setting's value in base units and the suffix and help note that say so.
fn normalise(
    setting: &str,
    unit: &str,
    vartype: &str,
) -> Option<(f64, &'static str, &'static str)> {
    if vartype == "bool" {
        return Some((f64::from(u8::from(setting == "on")), "", ""));
    }
    let value: f64 = setting.parse().ok()?;
    let (factor, suffix, note) = match unit {
        "" => (1.0, "", ""),
        "B" => (1.0, "_bytes", " [Units converted to bytes.]"),
        "kB" => (1024.0, "_bytes", " [Units converted to bytes.]"),
        "8kB" => (8192.0, "_bytes", " [Units converted to bytes.]"),
        "16MB" => (16.0 * 1_048_576.0, "_bytes", " [Units converted to bytes.]"),
        "MB" => (1_048_576.0, "_bytes", " [Units converted to bytes.]"),
        "GB" => (1_073_741_824.0, "_bytes", " [Units converted to bytes.]"),
        "ms" => (0.001, "_seconds", " [Units converted to seconds.]"),
        "s" => (1.0, "_seconds", " [Units converted to seconds.]"),
        "min" => (60.0, "_seconds", " [Units converted to seconds.]"),
        "h" => (3600.0, "_seconds", " [Units converted to seconds.]"),
        "d" => (86_400.0, "_seconds", " [Units converted to seconds.]"),
        _ => return None,
    };
    // -1 means "disabled" or "unlimited" and stays -1, as in postgres_exporter.
    let value = if value < 0.0 { value } else { value * factor };
    Some((value, suffix, note))
}

#[async_trait]
impl Collector for Settings {
    fn id(&self) -> &'static str {
        "settings"
    }
    fn describe(&self) -> &'static str {
        "`pg_settings`: pg_settings_<name>[_bytes|_seconds] for a fixed list of settings"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let names: Vec<&str> = EXPORTED.to_vec();
        let rows = scrape.session.client().query(SQL, &[&names]).await?;
        let mut families = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            let setting: String = row.try_get(1)?;
            let unit: String = row.try_get(2)?;
            let vartype: String = row.try_get(3)?;
            let help: String = row.try_get(4)?;
            if let Some((value, suffix, note)) = normalise(&setting, &unit, &vartype) {
                families.push(
                    Family::gauge(
                        format!("pg_settings_{name}{suffix}"),
                        format!("{help}{note}"),
                    )
                    .with(&[], value),
                );
            }
        }
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, family, value};

    #[test]
    fn converts_units_like_postgres_exporter() {
        assert_eq!(
            normalise("16384", "8kB", "integer"),
            Some((134_217_728.0, "_bytes", " [Units converted to bytes.]"))
        );
        assert_eq!(normalise("4096", "kB", "integer").unwrap().0, 4_194_304.0);
        assert_eq!(normalise("300", "s", "integer").unwrap().0, 300.0);
        assert_eq!(normalise("1000", "ms", "integer").unwrap().0, 1.0);
        assert_eq!(normalise("-1", "MB", "integer").unwrap().0, -1.0);
        assert_eq!(normalise("on", "", "bool").unwrap().0, 1.0);
        assert_eq!(normalise("0.9", "", "real").unwrap(), (0.9, "", ""));
    }

    #[tokio::test]
    async fn exports_the_settings_that_matter_in_base_units() {
        let dsn = pgdbre_lab::testing::shared().primary().dsn();
        let families = collect(&Settings, &dsn).await;
        assert!(value(&families, "pg_settings_max_connections", &[]).unwrap() >= 10.0);
        let shared_buffers = value(&families, "pg_settings_shared_buffers_bytes", &[]).unwrap();
        assert!(shared_buffers >= 1_048_576.0, "{shared_buffers}");
        assert_eq!(value(&families, "pg_settings_fsync", &[]), Some(1.0));
        assert!(value(&families, "pg_settings_checkpoint_timeout_seconds", &[]).unwrap() >= 30.0);
        assert!(family(&families, "pg_settings_work_mem_bytes")
            .help
            .ends_with("[Units converted to bytes.]"));
    }
}
