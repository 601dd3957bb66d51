//! `pg_stat_archiver_*`: is WAL archiving keeping up (postgres_exporter 0.11's names).

use super::{counter, gauge, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatArchiver;

const SQL: &str = "SELECT archived_count::float8 AS archived_count, \
    failed_count::float8 AS failed_count, \
    extract(epoch FROM now() - last_archived_time)::float8 AS last_archive_age, \
    extract(epoch FROM now() - last_failed_time)::float8 AS last_failure_age \
    FROM pg_catalog.pg_stat_archiver";

const COLUMNS: &[Column] = &[
    counter(
        "archived_count",
        "pg_stat_archiver_archived_count",
        "Number of WAL files that have been successfully archived",
    ),
    counter(
        "failed_count",
        "pg_stat_archiver_failed_count",
        "Number of failed attempts for archiving WAL files",
    ),
    gauge(
        "last_archive_age",
        "pg_stat_archiver_last_archive_age",
        "Time in seconds since last WAL segment was successfully archived",
    ),
    gauge(
        "last_failure_age",
        "pgdbre_archiver_last_failure_age_seconds",
        "Time since the last failed attempt to archive a WAL file (absent if none).",
    ),
];

#[async_trait]
impl Collector for StatArchiver {
    fn id(&self) -> &'static str {
        "stat-archiver"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_archiver`: pg_stat_archiver_archived_count, _failed_count, _last_archive_age, pgdbre_archiver_last_failure_age_seconds"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        query_families(scrape, SQL, &[], COLUMNS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, value};

    #[tokio::test]
    async fn counts_archived_segments() {
        let cluster = pgdbre_lab::testing::shared();
        let dsn = cluster.primary().dsn();
        // The lab archives WAL; a switch makes sure one segment has been through it.
        cluster
            .primary()
            .psql("SELECT pg_switch_wal(); CREATE TEMP TABLE x (); SELECT pg_switch_wal();")
            .expect("switch wal");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let families = collect(&StatArchiver, &dsn).await;
            let archived = value(&families, "pg_stat_archiver_archived_count", &[]).unwrap();
            assert_eq!(
                value(&families, "pg_stat_archiver_failed_count", &[]),
                Some(0.0)
            );
            if archived >= 1.0 {
                let age = value(&families, "pg_stat_archiver_last_archive_age", &[]).unwrap();
                assert!(age >= 0.0, "{age}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "nothing archived");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
