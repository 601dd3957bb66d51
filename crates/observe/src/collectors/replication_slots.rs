//! `pg_replication_slots_active` and `pg_replication_slots_pg_wal_lsn_diff` (postgres_exporter
//! names, labelled `slot_name`, `database`), plus `pgdbre_replication_slot_safe_wal_size_bytes`
//! (PostgreSQL 13+): how much more WAL the slot may hold back before `max_slot_wal_keep_size`
//! invalidates it.

use super::{families_from_rows, gauge, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct ReplicationSlots;

const CURRENT: &str = "CASE WHEN pg_catalog.pg_is_in_recovery() \
    THEN pg_catalog.pg_last_wal_receive_lsn() ELSE pg_catalog.pg_current_wal_lsn() END";

fn sql(major: u32) -> String {
    let safe = if major >= 13 {
        "safe_wal_size::float8"
    } else {
        "NULL::float8"
    };
    format!(
        "SELECT slot_name::text AS slot_name, coalesce(database, '')::text AS database, \
           active::int::float8 AS active, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, restart_lsn)::float8 AS lsn_diff, \
           {safe} AS safe_wal_size \
         FROM pg_catalog.pg_replication_slots ORDER BY slot_name"
    )
}

const COLUMNS: &[Column] = &[
    gauge("active", "pg_replication_slots_active", "Flag indicating if the slot is active"),
    gauge("lsn_diff", "pg_replication_slots_pg_wal_lsn_diff", "Replication lag in bytes"),
    gauge("safe_wal_size", "pgdbre_replication_slot_safe_wal_size_bytes", "WAL that can still be written before the slot is invalidated by max_slot_wal_keep_size (absent when unlimited)."),
];

#[async_trait]
impl Collector for ReplicationSlots {
    fn id(&self) -> &'static str {
        "replication-slots"
    }
    fn describe(&self) -> &'static str {
        "`pg_replication_slots`: pg_replication_slots_active, pg_replication_slots_pg_wal_lsn_diff, pgdbre_replication_slot_safe_wal_size_bytes"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let rows = scrape
            .session
            .client()
            .query(sql(scrape.major()).as_str(), &[])
            .await?;
        families_from_rows(&rows, &["slot_name", "database"], COLUMNS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, family, value};

    #[tokio::test]
    async fn the_replicas_slot_is_active() {
        let cluster = pgdbre_lab::testing::shared();
        cluster
            .wait_for_replay(std::time::Duration::from_secs(30))
            .expect("replica streams");
        let families = collect(&ReplicationSlots, &cluster.primary().dsn()).await;
        let slots = &family(&families, "pg_replication_slots_active").samples;
        assert_eq!(slots.len(), 1, "{slots:?}");
        let slot = slots[0].labels[0].1.clone();
        assert_eq!(slots[0].value, 1.0);
        let lag = value(
            &families,
            "pg_replication_slots_pg_wal_lsn_diff",
            &[("slot_name", &slot)],
        );
        assert!(lag.unwrap() >= 0.0);
    }
}
