//! `pg_stat_bgwriter_*_total` with postgres_exporter 0.11's names.
//!
//! PostgreSQL 17 moved the checkpoint counters to `pg_stat_checkpointer`; they are exported under
//! the same `pg_stat_bgwriter_*` names so dashboards keep working across an upgrade.
//! `buffers_backend` and `buffers_backend_fsync` no longer exist in 17 (see `pg_stat_io`, which
//! the `stat-io` collector exports); those two families are absent there.

use super::{counter, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct Bgwriter;

const COLUMNS: &[Column] = &[
    counter("checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed_total", "Number of scheduled checkpoints that have been performed"),
    counter("checkpoints_req", "pg_stat_bgwriter_checkpoints_req_total", "Number of requested checkpoints that have been performed"),
    counter("checkpoint_write_time", "pg_stat_bgwriter_checkpoint_write_time_total", "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds"),
    counter("checkpoint_sync_time", "pg_stat_bgwriter_checkpoint_sync_time_total", "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds"),
    counter("buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint_total", "Number of buffers written during checkpoints"),
    counter("buffers_clean", "pg_stat_bgwriter_buffers_clean_total", "Number of buffers written by the background writer"),
    counter("maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total", "Number of times the background writer stopped a cleaning scan because it had written too many buffers"),
    counter("buffers_backend", "pg_stat_bgwriter_buffers_backend_total", "Number of buffers written directly by a backend"),
    counter("buffers_backend_fsync", "pg_stat_bgwriter_buffers_backend_fsync_total", "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)"),
    counter("buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"),
    counter("stats_reset", "pg_stat_bgwriter_stats_reset_total", "Time at which these statistics were last reset"),
];

const SQL_BEFORE_17: &str = "SELECT checkpoints_timed::float8 AS checkpoints_timed, \
    checkpoints_req::float8 AS checkpoints_req, \
    checkpoint_write_time::float8 AS checkpoint_write_time, \
    checkpoint_sync_time::float8 AS checkpoint_sync_time, \
    buffers_checkpoint::float8 AS buffers_checkpoint, buffers_clean::float8 AS buffers_clean, \
    maxwritten_clean::float8 AS maxwritten_clean, buffers_backend::float8 AS buffers_backend, \
    buffers_backend_fsync::float8 AS buffers_backend_fsync, \
    buffers_alloc::float8 AS buffers_alloc, \
    extract(epoch FROM stats_reset)::float8 AS stats_reset \
    FROM pg_catalog.pg_stat_bgwriter";

const SQL_17: &str = "SELECT c.num_timed::float8 AS checkpoints_timed, \
    c.num_requested::float8 AS checkpoints_req, c.write_time::float8 AS checkpoint_write_time, \
    c.sync_time::float8 AS checkpoint_sync_time, c.buffers_written::float8 AS buffers_checkpoint, \
    b.buffers_clean::float8 AS buffers_clean, b.maxwritten_clean::float8 AS maxwritten_clean, \
    b.buffers_alloc::float8 AS buffers_alloc, \
    extract(epoch FROM b.stats_reset)::float8 AS stats_reset \
    FROM pg_catalog.pg_stat_bgwriter b CROSS JOIN pg_catalog.pg_stat_checkpointer c";

#[async_trait]
impl Collector for Bgwriter {
    fn id(&self) -> &'static str {
        "bgwriter"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_bgwriter` (+ `pg_stat_checkpointer` on 17+): pg_stat_bgwriter_*_total"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let sql = if scrape.session.info().has_pg_stat_checkpointer() {
            SQL_17
        } else {
            SQL_BEFORE_17
        };
        query_families(scrape, sql, &[], COLUMNS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, major, value};

    #[tokio::test]
    async fn checkpoint_counters_keep_their_names_on_every_version() {
        let cluster = pgdbre_lab::testing::shared();
        // A checkpoint counts as requested on every version.
        cluster.primary().psql("CHECKPOINT;").expect("checkpoint");
        let dsn = cluster.primary().dsn();
        let families = collect(&Bgwriter, &dsn).await;
        assert!(value(&families, "pg_stat_bgwriter_checkpoints_req_total", &[]).unwrap() >= 1.0);
        assert!(value(&families, "pg_stat_bgwriter_buffers_alloc_total", &[]).unwrap() > 0.0);
        assert!(value(&families, "pg_stat_bgwriter_checkpoints_timed_total", &[]).is_some());
        let has_backend = families
            .iter()
            .any(|f| f.name == "pg_stat_bgwriter_buffers_backend_total");
        assert_eq!(has_backend, major(&dsn).await < 17);
    }
}
