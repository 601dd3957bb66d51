//! `pg_locks_count{datname,mode}`: every database × every lock mode, zeros included (as
//! postgres_exporter does, so a series never disappears when its count drops to zero).

use super::{gauge, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct Locks;

const SQL: &str =
    "SELECT d.datname::text AS datname, m.mode, coalesce(l.count, 0)::float8 AS count \
    FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), \
                 ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), \
                 ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) \
    CROSS JOIN pg_catalog.pg_database d \
    LEFT JOIN (SELECT database, pg_catalog.lower(mode) AS mode, count(*) AS count \
               FROM pg_catalog.pg_locks WHERE database IS NOT NULL \
               GROUP BY database, pg_catalog.lower(mode)) l \
      ON l.mode = m.mode AND l.database = d.oid \
    ORDER BY d.datname, m.mode";

const COLUMNS: &[Column] = &[gauge("count", "pg_locks_count", "Number of locks")];

#[async_trait]
impl Collector for Locks {
    fn id(&self) -> &'static str {
        "locks"
    }
    fn describe(&self) -> &'static str {
        "`pg_locks`: pg_locks_count"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        query_families(scrape, SQL, &["datname", "mode"], COLUMNS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, family, value};

    #[tokio::test]
    async fn counts_a_held_lock() {
        let cluster = pgdbre_lab::testing::shared();
        let database = pgdbre_lab::testing::fresh_database(cluster);
        cluster
            .primary()
            .psql_db(&database, "CREATE TABLE held (id int);")
            .expect("create");
        let _holder = cluster
            .primary()
            .background_session(&database, "BEGIN; LOCK TABLE held IN SHARE MODE;")
            .expect("hold a lock");
        let dsn = cluster.primary().dsn();
        let families = collect(&Locks, &dsn).await;
        let labels = [("datname", database.as_str()), ("mode", "sharelock")];
        assert!(value(&families, "pg_locks_count", &labels).unwrap() >= 1.0);
        let zero = [("datname", database.as_str()), ("mode", "sireadlock")];
        assert_eq!(value(&families, "pg_locks_count", &zero), Some(0.0));
        // Every database has all nine modes.
        assert_eq!(family(&families, "pg_locks_count").samples.len() % 9, 0);
    }
}
