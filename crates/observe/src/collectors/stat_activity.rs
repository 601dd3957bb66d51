//! `pg_stat_activity_count` and `pg_stat_activity_max_tx_duration` per database and state
//! (postgres_exporter's query shape: every database × every state, zeros included), plus
//! pgdbre's server-wide oldest transaction and oldest snapshot (`backend_xmin`) ages.

use super::{families_from_rows, gauge, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatActivity;

const SQL: &str = "SELECT d.datname::text AS datname, s.state, \
    coalesce(a.count, 0)::float8 AS count, \
    coalesce(a.max_tx_duration, 0)::float8 AS max_tx_duration \
    FROM (VALUES ('active'), ('idle'), ('idle in transaction'), \
                 ('idle in transaction (aborted)'), ('fastpath function call'), \
                 ('disabled')) AS s(state) \
    CROSS JOIN pg_catalog.pg_database d \
    LEFT JOIN (SELECT datname, state, count(*) AS count, \
                      max(extract(epoch FROM now() - xact_start)) AS max_tx_duration \
               FROM pg_catalog.pg_stat_activity GROUP BY datname, state) a \
      ON a.state = s.state AND a.datname = d.datname \
    ORDER BY d.datname, s.state";

// The scrape's own backend is left out: its transaction is the scrape itself.
const OLDEST_SQL: &str = "SELECT \
    coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8 AS oldest_xact, \
    coalesce(max(greatest(pg_catalog.age(backend_xid), pg_catalog.age(backend_xmin))), 0)::float8 AS oldest_xmin \
    FROM pg_catalog.pg_stat_activity \
    WHERE pid <> pg_catalog.pg_backend_pid() AND xact_start IS NOT NULL";

const COLUMNS: &[Column] = &[
    gauge(
        "count",
        "pg_stat_activity_count",
        "number of connections in this state",
    ),
    gauge(
        "max_tx_duration",
        "pg_stat_activity_max_tx_duration",
        "max duration in seconds any active transaction has been running",
    ),
];

const OLDEST_COLUMNS: &[Column] = &[
    gauge(
        "oldest_xact",
        "pgdbre_oldest_transaction_seconds",
        "Age of the oldest open transaction on the server (0 when none), in seconds.",
    ),
    gauge(
        "oldest_xmin",
        "pgdbre_oldest_backend_xmin_age",
        "Age in transactions of the oldest transaction id or snapshot a backend holds; it holds back vacuum.",
    ),
];

#[async_trait]
impl Collector for StatActivity {
    fn id(&self) -> &'static str {
        "stat-activity"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_activity`: pg_stat_activity_count, pg_stat_activity_max_tx_duration, pgdbre_oldest_transaction_seconds, pgdbre_oldest_backend_xmin_age"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let client = scrape.session.client();
        let (rows, oldest) =
            futures::try_join!(client.query(SQL, &[]), client.query(OLDEST_SQL, &[]))?;
        let mut families = families_from_rows(&rows, &["datname", "state"], COLUMNS)?;
        families.extend(families_from_rows(&oldest, &[], OLDEST_COLUMNS)?);
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, value};

    #[tokio::test]
    async fn sees_an_idle_transaction_and_its_age() {
        let cluster = pgdbre_lab::testing::shared();
        let database = pgdbre_lab::testing::fresh_database(cluster);
        let _open = cluster
            .primary()
            .background_session(&database, "BEGIN; SELECT txid_current();")
            .expect("open a transaction");
        let dsn = cluster.primary().dsn();
        let families = collect(&StatActivity, &dsn).await;
        let idle = [
            ("datname", database.as_str()),
            ("state", "idle in transaction"),
        ];
        assert_eq!(value(&families, "pg_stat_activity_count", &idle), Some(1.0));
        assert!(value(&families, "pg_stat_activity_max_tx_duration", &idle).unwrap() >= 0.0);
        let disabled = [("datname", database.as_str()), ("state", "disabled")];
        assert_eq!(
            value(&families, "pg_stat_activity_count", &disabled),
            Some(0.0)
        );
        assert!(value(&families, "pgdbre_oldest_transaction_seconds", &[]).unwrap() > 0.0);
        assert!(value(&families, "pgdbre_oldest_backend_xmin_age", &[]).unwrap() >= 1.0);
    }
}
