//! `pg_database_size_bytes{datname}` for every database the role may connect to. Sizing walks
//! every file of every database, so it is a slow collector: its answer is reused for
//! `--slow-interval` (default 60 s) instead of recomputed on every scrape.

use super::{gauge, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct DatabaseSize;

// pg_database_size() reads the directory, takes no relation lock, and needs CONNECT.
const SQL: &str =
    "SELECT datname::text AS datname, pg_catalog.pg_database_size(oid)::float8 AS size \
    FROM pg_catalog.pg_database \
    WHERE pg_catalog.has_database_privilege(oid, 'CONNECT') ORDER BY datname";

const COLUMNS: &[Column] = &[gauge(
    "size",
    "pg_database_size_bytes",
    "Disk space used by the database",
)];

#[async_trait]
impl Collector for DatabaseSize {
    fn id(&self) -> &'static str {
        "database-size"
    }
    fn describe(&self) -> &'static str {
        "`pg_database_size()`: pg_database_size_bytes"
    }
    /// `pg_database_size` stats every file of every database: ~0.2 s with 10,000 tables.
    fn slow(&self) -> bool {
        true
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        query_families(scrape, SQL, &["datname"], COLUMNS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, value};

    #[tokio::test]
    async fn sizes_every_database() {
        let dsn = pgdbre_lab::testing::shared().primary().dsn();
        let families = collect(&DatabaseSize, &dsn).await;
        let size = value(
            &families,
            "pg_database_size_bytes",
            &[("datname", "postgres")],
        )
        .unwrap();
        assert!(size > 1_000_000.0, "{size}");
        assert!(value(
            &families,
            "pg_database_size_bytes",
            &[("datname", "template1")]
        )
        .is_some());
    }
}
