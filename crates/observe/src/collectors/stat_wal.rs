//! `pgdbre_stat_wal_*` from `pg_stat_wal` (PostgreSQL 14+). PostgreSQL 18 moved the write and
//! sync counters to `pg_stat_io` (object `wal`); those four families are absent there.

use super::{counter, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatWal;

const COLUMNS: &[Column] = &[
    counter(
        "wal_records",
        "pgdbre_stat_wal_records_total",
        "WAL records generated.",
    ),
    counter(
        "wal_fpi",
        "pgdbre_stat_wal_full_page_images_total",
        "WAL full page images generated.",
    ),
    counter(
        "wal_bytes",
        "pgdbre_stat_wal_bytes_total",
        "WAL generated, in bytes.",
    ),
    counter(
        "wal_buffers_full",
        "pgdbre_stat_wal_buffers_full_total",
        "Times WAL data was written to disk because the WAL buffers were full.",
    ),
    counter(
        "wal_write",
        "pgdbre_stat_wal_writes_total",
        "Times WAL buffers were written out to disk (PostgreSQL 14-17).",
    ),
    counter(
        "wal_sync",
        "pgdbre_stat_wal_syncs_total",
        "Times WAL files were synced to disk (PostgreSQL 14-17).",
    ),
    counter(
        "wal_write_time",
        "pgdbre_stat_wal_write_seconds_total",
        "Time spent writing WAL buffers to disk, with track_wal_io_timing (PostgreSQL 14-17).",
    ),
    counter(
        "wal_sync_time",
        "pgdbre_stat_wal_sync_seconds_total",
        "Time spent syncing WAL files to disk, with track_wal_io_timing (PostgreSQL 14-17).",
    ),
];

const SQL_14: &str = "SELECT wal_records::float8 AS wal_records, wal_fpi::float8 AS wal_fpi, \
    wal_bytes::float8 AS wal_bytes, wal_buffers_full::float8 AS wal_buffers_full, \
    wal_write::float8 AS wal_write, wal_sync::float8 AS wal_sync, \
    (wal_write_time / 1000)::float8 AS wal_write_time, \
    (wal_sync_time / 1000)::float8 AS wal_sync_time \
    FROM pg_catalog.pg_stat_wal";

const SQL_18: &str = "SELECT wal_records::float8 AS wal_records, wal_fpi::float8 AS wal_fpi, \
    wal_bytes::float8 AS wal_bytes, wal_buffers_full::float8 AS wal_buffers_full \
    FROM pg_catalog.pg_stat_wal";

#[async_trait]
impl Collector for StatWal {
    fn id(&self) -> &'static str {
        "stat-wal"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_wal` (14+): pgdbre_stat_wal_*_total"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let sql = match scrape.major() {
            ..=13 => return Ok(Vec::new()),
            14..=17 => SQL_14,
            _ => SQL_18,
        };
        query_families(scrape, sql, &[], COLUMNS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, value};

    #[tokio::test]
    async fn wal_bytes_grow_with_writes() {
        let cluster = pgdbre_lab::testing::shared();
        let dsn = cluster.primary().dsn();
        let before = value(
            &collect(&StatWal, &dsn).await,
            "pgdbre_stat_wal_bytes_total",
            &[],
        )
        .expect("PostgreSQL 14+ in the lab");
        let database = pgdbre_lab::testing::fresh_database(cluster);
        cluster
            .primary()
            .psql_db(
                &database,
                "CREATE TABLE w AS SELECT g FROM generate_series(1, 1000) g;",
            )
            .expect("write");
        // pg_stat_wal is flushed by the writing backend when it ends; poll for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let families = collect(&StatWal, &dsn).await;
            let after = value(&families, "pgdbre_stat_wal_bytes_total", &[]).unwrap();
            if after > before {
                assert!(value(&families, "pgdbre_stat_wal_records_total", &[]).unwrap() > 0.0);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "wal_bytes stayed at {before}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
