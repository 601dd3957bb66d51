//! `pgdbre_stat_io_*` from `pg_stat_io` (PostgreSQL 16+), one series per backend type, object
//! and context (the view's own grain, a few dozen rows). Byte counts are `op_bytes` × operations
//! on 16–17 and the view's own byte columns on 18.

use super::{counter, families_from_rows, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatIo;

const COLUMNS: &[Column] = &[
    counter(
        "reads",
        "pgdbre_stat_io_reads_total",
        "Read operations (pg_stat_io).",
    ),
    counter(
        "read_bytes",
        "pgdbre_stat_io_read_bytes_total",
        "Bytes read (pg_stat_io).",
    ),
    counter(
        "read_time",
        "pgdbre_stat_io_read_seconds_total",
        "Time spent in read operations, with track_io_timing (pg_stat_io).",
    ),
    counter(
        "writes",
        "pgdbre_stat_io_writes_total",
        "Write operations (pg_stat_io).",
    ),
    counter(
        "write_bytes",
        "pgdbre_stat_io_write_bytes_total",
        "Bytes written (pg_stat_io).",
    ),
    counter(
        "write_time",
        "pgdbre_stat_io_write_seconds_total",
        "Time spent in write operations, with track_io_timing (pg_stat_io).",
    ),
    counter(
        "extends",
        "pgdbre_stat_io_extends_total",
        "Relation extend operations (pg_stat_io).",
    ),
    counter(
        "hits",
        "pgdbre_stat_io_hits_total",
        "Times a wanted block was found in a shared buffer (pg_stat_io).",
    ),
    counter(
        "evictions",
        "pgdbre_stat_io_evictions_total",
        "Times a block was evicted from a buffer to reuse it (pg_stat_io).",
    ),
    counter(
        "reuses",
        "pgdbre_stat_io_reuses_total",
        "Times a ring buffer was reused (pg_stat_io).",
    ),
    counter(
        "fsyncs",
        "pgdbre_stat_io_fsyncs_total",
        "fsync calls (pg_stat_io).",
    ),
];

const LABELS: &str =
    "backend_type::text AS backend_type, object::text AS object, context::text AS context";
const COMMON: &str = "reads::float8 AS reads, (read_time / 1000)::float8 AS read_time, \
    writes::float8 AS writes, (write_time / 1000)::float8 AS write_time, \
    extends::float8 AS extends, hits::float8 AS hits, evictions::float8 AS evictions, \
    reuses::float8 AS reuses, fsyncs::float8 AS fsyncs";
const BYTES_16: &str =
    "(reads * op_bytes)::float8 AS read_bytes, (writes * op_bytes)::float8 AS write_bytes";
const BYTES_18: &str = "read_bytes::float8 AS read_bytes, write_bytes::float8 AS write_bytes";

fn sql(major: u32) -> String {
    let bytes = if major >= 18 { BYTES_18 } else { BYTES_16 };
    format!(
        "SELECT {LABELS}, {COMMON}, {bytes} FROM pg_catalog.pg_stat_io \
         ORDER BY backend_type, object, context"
    )
}

#[async_trait]
impl Collector for StatIo {
    fn id(&self) -> &'static str {
        "stat-io"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_io` (16+): pgdbre_stat_io_*_total{backend_type,object,context}"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        if !scrape.session.info().has_pg_stat_io() {
            return Ok(Vec::new());
        }
        let rows = scrape
            .session
            .client()
            .query(sql(scrape.major()).as_str(), &[])
            .await?;
        families_from_rows(&rows, &["backend_type", "object", "context"], COLUMNS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, major, value};

    #[tokio::test]
    async fn client_backends_hit_shared_buffers() {
        let dsn = pgdbre_lab::testing::shared().primary().dsn();
        let families = collect(&StatIo, &dsn).await;
        if major(&dsn).await < 16 {
            assert!(families.is_empty());
            return;
        }
        let labels = [
            ("backend_type", "client backend"),
            ("object", "relation"),
            ("context", "normal"),
        ];
        assert!(value(&families, "pgdbre_stat_io_hits_total", &labels).unwrap() > 0.0);
        assert!(value(&families, "pgdbre_stat_io_read_bytes_total", &labels).is_some());
    }
}
