//! `pg_stat_replication_*` (postgres_exporter names) and pgdbre's per-standby lag in bytes and
//! seconds for each stage (sent, write, flush, replay), labelled by the standby's
//! `application_name`.
//!
//! postgres_exporter 0.11 labels these series `slot_name` with the walsender's pid; a pid changes
//! on every reconnect, so pgdbre leaves that label out and keeps `application_name`,
//! `client_addr` and `state`.

use super::{families_from_rows, gauge, Collector, Column, Scrape};
use crate::{Family, MetricType};
use async_trait::async_trait;

pub struct StatReplication;

/// The position standbys are measured against: the primary's current LSN, or on a cascading
/// standby the last LSN it received.
const CURRENT: &str = "CASE WHEN pg_catalog.pg_is_in_recovery() \
    THEN pg_catalog.pg_last_wal_receive_lsn() ELSE pg_catalog.pg_current_wal_lsn() END";

fn sql() -> String {
    format!(
        "SELECT coalesce(application_name, '')::text AS application_name, \
           coalesce(host(client_addr), '')::text AS client_addr, \
           coalesce(state, '')::text AS state, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, '0/0')::float8 AS current_lsn, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, replay_lsn)::float8 AS lsn_diff, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, sent_lsn)::float8 AS sent_bytes, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, write_lsn)::float8 AS write_bytes, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, flush_lsn)::float8 AS flush_bytes, \
           pg_catalog.pg_wal_lsn_diff({CURRENT}, replay_lsn)::float8 AS replay_bytes, \
           coalesce(extract(epoch FROM write_lag), 0)::float8 AS write_seconds, \
           coalesce(extract(epoch FROM flush_lag), 0)::float8 AS flush_seconds, \
           coalesce(extract(epoch FROM replay_lag), 0)::float8 AS replay_seconds \
         FROM pg_catalog.pg_stat_replication ORDER BY application_name, pid"
    )
}

const COLUMNS: &[Column] = &[
    gauge(
        "current_lsn",
        "pg_stat_replication_pg_current_wal_lsn_bytes",
        "WAL position in bytes",
    ),
    gauge(
        "lsn_diff",
        "pg_stat_replication_pg_wal_lsn_diff",
        "Lag in bytes between master and slave",
    ),
];

const STAGES: &[&str] = &["sent", "write", "flush", "replay"];

#[async_trait]
impl Collector for StatReplication {
    fn id(&self) -> &'static str {
        "stat-replication"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_replication`: pg_stat_replication_pg_current_wal_lsn_bytes, pg_stat_replication_pg_wal_lsn_diff, pgdbre_standby_lag_bytes, pgdbre_standby_lag_seconds"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let rows = scrape.session.client().query(sql().as_str(), &[]).await?;
        let mut families = families_from_rows(
            &rows,
            &["application_name", "client_addr", "state"],
            COLUMNS,
        )?;
        let mut bytes = Family::new(
            "pgdbre_standby_lag_bytes",
            "WAL a standby has not yet sent, written, flushed or replayed, in bytes (by stage).",
            MetricType::Gauge,
        );
        let mut seconds = Family::gauge(
            "pgdbre_standby_lag_seconds",
            "Time for recent WAL to be written, flushed or replayed on the standby (by stage; 0 when idle).",
        );
        for row in &rows {
            let name: String = row.try_get("application_name")?;
            let addr: String = row.try_get("client_addr")?;
            for stage in STAGES {
                let labels = [
                    ("application_name", name.as_str()),
                    ("client_addr", addr.as_str()),
                    ("stage", *stage),
                ];
                if let Some(value) =
                    row.try_get::<_, Option<f64>>(format!("{stage}_bytes").as_str())?
                {
                    bytes.push(&labels, value);
                }
                if *stage != "sent" {
                    if let Some(value) =
                        row.try_get::<_, Option<f64>>(format!("{stage}_seconds").as_str())?
                    {
                        seconds.push(&labels, value);
                    }
                }
            }
        }
        families.push(bytes);
        families.push(seconds);
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, value};

    #[tokio::test]
    async fn one_series_per_standby_by_application_name() {
        let cluster = pgdbre_lab::testing::shared();
        cluster
            .wait_for_replay(std::time::Duration::from_secs(30))
            .expect("replica streams");
        let replica = cluster.replicas()[0].name();
        let families = collect(&StatReplication, &cluster.primary().dsn()).await;
        let labels = [("application_name", replica), ("state", "streaming")];
        assert!(
            value(
                &families,
                "pg_stat_replication_pg_current_wal_lsn_bytes",
                &labels
            )
            .unwrap()
                > 0.0
        );
        assert!(value(&families, "pg_stat_replication_pg_wal_lsn_diff", &labels).unwrap() >= 0.0);
        for stage in ["sent", "write", "flush", "replay"] {
            let staged = [("application_name", replica), ("stage", stage)];
            assert!(value(&families, "pgdbre_standby_lag_bytes", &staged).unwrap() >= 0.0);
        }
        let replay = [("application_name", replica), ("stage", "replay")];
        assert!(value(&families, "pgdbre_standby_lag_seconds", &replay).unwrap() >= 0.0);
        // A standby with no standbys of its own exports none of these series.
        let on_replica = collect(&StatReplication, &cluster.replicas()[0].dsn()).await;
        assert!(on_replica.iter().all(|f| f.samples.is_empty()));
    }
}
