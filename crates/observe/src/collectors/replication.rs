//! `pg_replication_lag` and `pg_replication_is_replica` (the names of postgres_exporter's
//! `queries.yaml`): on a standby, seconds since the last replayed transaction while WAL is
//! still waiting to be replayed; 0 on a primary and on a caught-up standby.

use super::{gauge, query_families, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct Replication;

const SQL: &str = "SELECT CASE \
      WHEN NOT pg_catalog.pg_is_in_recovery() THEN 0 \
      WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0 \
      ELSE greatest(0, extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp())) \
    END::float8 AS lag, \
    pg_catalog.pg_is_in_recovery()::int::float8 AS is_replica";

const COLUMNS: &[Column] = &[
    gauge(
        "lag",
        "pg_replication_lag",
        "Replication lag behind master in seconds",
    ),
    gauge(
        "is_replica",
        "pg_replication_is_replica",
        "Indicates if the server is a replica",
    ),
];

#[async_trait]
impl Collector for Replication {
    fn id(&self) -> &'static str {
        "replication"
    }
    fn describe(&self) -> &'static str {
        "`pg_last_xact_replay_timestamp()`: pg_replication_lag, pg_replication_is_replica"
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
    async fn tells_the_replica_from_the_primary() {
        let cluster = pgdbre_lab::testing::shared();
        let primary = collect(&Replication, &cluster.primary().dsn()).await;
        assert_eq!(value(&primary, "pg_replication_is_replica", &[]), Some(0.0));
        assert_eq!(value(&primary, "pg_replication_lag", &[]), Some(0.0));
        let replica = collect(&Replication, &cluster.replicas()[0].dsn()).await;
        assert_eq!(value(&replica, "pg_replication_is_replica", &[]), Some(1.0));
        assert!(value(&replica, "pg_replication_lag", &[]).unwrap() >= 0.0);
    }
}
