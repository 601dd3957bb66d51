//! `pgdbre_database_xid_age` and `pgdbre_database_mxid_age`: how close each database is to
//! transaction-id and multixact wraparound (compare with `autovacuum_freeze_max_age`).

use super::{gauge, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct Wraparound;

const SQL: &str = "SELECT datname::text AS datname, \
    pg_catalog.age(datfrozenxid)::float8 AS xid_age, \
    pg_catalog.mxid_age(datminmxid)::float8 AS mxid_age \
    FROM pg_catalog.pg_database ORDER BY datname";

const COLUMNS: &[Column] = &[
    gauge(
        "xid_age",
        "pgdbre_database_xid_age",
        "Age of the database's datfrozenxid in transactions; wraparound protection starts at 2^31 - 3 million.",
    ),
    gauge(
        "mxid_age",
        "pgdbre_database_mxid_age",
        "Age of the database's datminmxid in multixacts.",
    ),
];

#[async_trait]
impl Collector for Wraparound {
    fn id(&self) -> &'static str {
        "wraparound"
    }
    fn describe(&self) -> &'static str {
        "`pg_database.datfrozenxid`, `datminmxid`: pgdbre_database_xid_age, pgdbre_database_mxid_age"
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
    async fn ages_are_positive_and_far_from_wraparound() {
        let dsn = pgdbre_lab::testing::shared().primary().dsn();
        let families = collect(&Wraparound, &dsn).await;
        let labels = [("datname", "postgres")];
        let xid_age = value(&families, "pgdbre_database_xid_age", &labels).unwrap();
        assert!(xid_age > 0.0 && xid_age < 200_000_000.0, "{xid_age}");
        let mxid_age = value(&families, "pgdbre_database_mxid_age", &labels).unwrap();
        assert!((0.0..200_000_000.0).contains(&mxid_age), "{mxid_age}");
    }
}
