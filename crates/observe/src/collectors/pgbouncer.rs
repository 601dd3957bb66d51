//! `pgbouncer_*` from PgBouncer's admin console (`--pgbouncer DSN`, database `pgbouncer`), with
//! pgbouncer_exporter's names so its dashboards keep working.
//!
//! Not a [`super::Collector`]: a PgBouncer is a target of its own, not a view of a PostgreSQL
//! server, and its console only speaks the simple query protocol and only answers `SHOW …`. Like
//! [`crate::Target`] it keeps one connection, re-opened after a failure; a PgBouncer that is down
//! answers `pgbouncer_up 0` within the connect timeout.

use crate::{Family, MetricType, ScrapeOptions};
use pgdbre_pg::ConnConfig;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_postgres::{Client, SimpleQueryMessage};

/// One column of a `SHOW` answer, the family it feeds and the factor to its unit.
struct Column {
    column: &'static str,
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    scale: f64,
}

const fn gauge(column: &'static str, name: &'static str, help: &'static str) -> Column {
    Column {
        column,
        name,
        help,
        kind: MetricType::Gauge,
        scale: 1.0,
    }
}

/// A counter of microseconds, exported in seconds.
const fn micros(column: &'static str, name: &'static str, help: &'static str) -> Column {
    Column {
        column,
        name,
        help,
        kind: MetricType::Counter,
        scale: 1e-6,
    }
}

const fn counter(column: &'static str, name: &'static str, help: &'static str) -> Column {
    Column {
        column,
        name,
        help,
        kind: MetricType::Counter,
        scale: 1.0,
    }
}

const POOLS: &[Column] = &[
    gauge("cl_active", "pgbouncer_pools_client_active_connections", "Client connections linked to server connection and able to process queries, shown as connection"),
    gauge("cl_waiting", "pgbouncer_pools_client_waiting_connections", "Client connections waiting on a server connection, shown as connection"),
    gauge("sv_active", "pgbouncer_pools_server_active_connections", "Server connections linked to a client connection, shown as connection"),
    gauge("sv_idle", "pgbouncer_pools_server_idle_connections", "Server connections idle and ready for a client query, shown as connection"),
    gauge("sv_used", "pgbouncer_pools_server_used_connections", "Server connections idle more than server_check_delay, needing server_check_query, shown as connection"),
    gauge("sv_tested", "pgbouncer_pools_server_testing_connections", "Server connections currently running either server_reset_query or server_check_query, shown as connection"),
    gauge("sv_login", "pgbouncer_pools_server_login_connections", "Server connections currently in the process of logging in, shown as connection"),
];

const STATS: &[Column] = &[
    counter("total_query_count", "pgbouncer_stats_queries_pooled_total", "Total number of SQL queries pooled"),
    micros("total_query_time", "pgbouncer_stats_queries_duration_seconds_total", "Total number of seconds spent by pgbouncer when actively connected to PostgreSQL, executing queries"),
    counter("total_xact_count", "pgbouncer_stats_sql_transactions_pooled_total", "Total number of SQL transactions pooled"),
    micros("total_xact_time", "pgbouncer_stats_server_in_transaction_seconds_total", "Total number of seconds spent by pgbouncer when connected to PostgreSQL in a transaction, either idle in transaction or executing queries"),
    micros("total_wait_time", "pgbouncer_stats_client_wait_seconds_total", "Time spent by clients waiting for a server in seconds"),
    counter("total_received", "pgbouncer_stats_received_bytes_total", "Total volume in bytes of network traffic received by pgbouncer, shown as bytes"),
    counter("total_sent", "pgbouncer_stats_sent_bytes_total", "Total volume in bytes of network traffic sent by pgbouncer, shown as bytes"),
];

const MAXWAIT: &str = "pgbouncer_pools_client_maxwait_seconds";
const MAXWAIT_HELP: &str = "Age of oldest unserved client connection, shown as second";

/// A PgBouncer `pgdbre serve` scrapes through its admin console.
pub struct Pgbouncer {
    config: ConnConfig,
    name: String,
    options: Arc<ScrapeOptions>,
    client: Mutex<Option<Client>>,
}

impl Pgbouncer {
    /// A PgBouncer target for `config` (its `dbname` should be `pgbouncer`); nothing is opened
    /// until the first scrape.
    pub fn new(config: ConnConfig, options: Arc<ScrapeOptions>) -> Pgbouncer {
        Pgbouncer {
            name: config.target(),
            config,
            options,
            client: Mutex::new(None),
        }
    }

    /// The secret-free name (`host:port/pgbouncer`), the `server` label of its series.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `pgbouncer_up` and, when the console answered, the pool and statistics families, each
    /// sample labelled `server`. Concurrent scrapes take turns.
    pub async fn scrape(&self) -> Vec<Family> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = self.connect().await;
        }
        let mut families = Vec::new();
        if let Some(client) = slot.as_ref() {
            let limit = self.options.collector_timeout;
            let both = async {
                futures::try_join!(
                    client.simple_query("SHOW POOLS"),
                    client.simple_query("SHOW STATS")
                )
            };
            match tokio::time::timeout(limit, both).await {
                Ok(Ok((pools, stats))) => {
                    families = pool_families(&pools);
                    families.extend(families_from(&stats, &["database"], STATS));
                }
                Ok(Err(error)) => {
                    tracing::warn!(target_name = %self.name, "pgbouncer console failed: {}", pgdbre_pg::redact(&error.to_string()));
                    *slot = None;
                }
                Err(_) => {
                    tracing::warn!(target_name = %self.name, "pgbouncer console timed out after {limit:?}");
                    *slot = None;
                }
            }
        }
        let up = Family::gauge("pgbouncer_up", "The pgbouncer scrape succeeded")
            .with(&[], f64::from(u8::from(slot.is_some())));
        let mut all = Vec::with_capacity(families.len() + 1);
        all.push(up);
        all.extend(families);
        for family in &mut all {
            family.label_all("server", &self.name);
        }
        all
    }

    async fn connect(&self) -> Option<Client> {
        let limit = self.options.connect_timeout;
        let open = pgdbre_pg::connect_without_detection(&self.config);
        match tokio::time::timeout(limit, open).await {
            Ok(Ok(client)) => Some(client),
            Ok(Err(error)) => {
                tracing::warn!(target_name = %self.name, "cannot connect to pgbouncer: {error}");
                None
            }
            Err(_) => {
                tracing::warn!(target_name = %self.name, "cannot connect to pgbouncer: timed out after {limit:?}");
                None
            }
        }
    }
}

/// `SHOW POOLS`: the connection gauges plus `maxwait` + `maxwait_us` in seconds.
fn pool_families(messages: &[SimpleQueryMessage]) -> Vec<Family> {
    let mut families = families_from(messages, &["database", "user"], POOLS);
    let mut maxwait = Family::gauge(MAXWAIT, MAXWAIT_HELP);
    for row in rows(messages) {
        let seconds = number(row, "maxwait");
        let micros = number(row, "maxwait_us").unwrap_or(0.0);
        if let Some(seconds) = seconds {
            let labels = [
                ("database", row.get("database").unwrap_or_default()),
                ("user", row.get("user").unwrap_or_default()),
            ];
            maxwait.push(&labels, seconds + micros * 1e-6);
        }
    }
    families.push(maxwait);
    families
}

fn rows(messages: &[SimpleQueryMessage]) -> impl Iterator<Item = &tokio_postgres::SimpleQueryRow> {
    messages.iter().filter_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })
}

/// A numeric cell; absent columns (another PgBouncer version) and non-numbers give `None`.
fn number(row: &tokio_postgres::SimpleQueryRow, column: &str) -> Option<f64> {
    let index = row.columns().iter().position(|c| c.name() == column)?;
    row.get(index)?.trim().parse().ok()
}

/// One family per column of `columns`, one sample per row, labelled by the `labels` columns.
fn families_from(
    messages: &[SimpleQueryMessage],
    labels: &[&str],
    columns: &[Column],
) -> Vec<Family> {
    let mut families: Vec<Family> = columns
        .iter()
        .map(|c| Family::new(c.name, c.help, c.kind))
        .collect();
    for row in rows(messages) {
        let values: Vec<(&str, &str)> = labels
            .iter()
            .map(|label| {
                let index = row.columns().iter().position(|c| c.name() == *label);
                (*label, index.and_then(|i| row.get(i)).unwrap_or_default())
            })
            .collect();
        for (family, column) in families.iter_mut().zip(columns) {
            if let Some(value) = number(row, column.column) {
                family.push(&values, value * column.scale);
            }
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::value;
    use pgdbre_lab::Pgbouncer as LabPgbouncer;
    use pgdbre_pg::Session;
    use std::time::{Duration, Instant};

    fn target(bouncer: &LabPgbouncer) -> Pgbouncer {
        let config = ConnConfig::resolve(Some(&bouncer.admin_dsn())).expect("admin DSN");
        Pgbouncer::new(config, Arc::new(ScrapeOptions::default()))
    }

    #[tokio::test]
    async fn counts_pooled_connections() {
        let cluster = pgdbre_lab::testing::shared();
        let database = pgdbre_lab::testing::fresh_database(cluster);
        let bouncer = LabPgbouncer::start(cluster.primary()).expect("start pgbouncer");
        let client_config = ConnConfig::resolve(Some(&bouncer.dsn_for(&database))).expect("DSN");
        let mut clients = Vec::new();
        for _ in 0..3 {
            let session = Session::connect(&client_config)
                .await
                .expect("connect through pgbouncer");
            session
                .client()
                .simple_query("SELECT 1")
                .await
                .expect("query through pgbouncer");
            clients.push(session);
        }

        let target = target(&bouncer);
        let labels = [("database", database.as_str()), ("user", "postgres")];
        let families = target.scrape().await;
        assert_eq!(value(&families, "pgbouncer_up", &[]), Some(1.0));
        assert_eq!(
            value(
                &families,
                "pgbouncer_pools_client_active_connections",
                &labels
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &families,
                "pgbouncer_pools_server_active_connections",
                &labels
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &families,
                "pgbouncer_pools_client_waiting_connections",
                &labels
            ),
            Some(0.0)
        );
        assert!(value(&families, MAXWAIT, &labels).is_some());
        assert!(value(
            &families,
            "pgbouncer_pools_server_idle_connections",
            &labels
        )
        .is_some());

        // Totals are published every stats_period (1 s in the lab).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let families = target.scrape().await;
            let pooled = value(
                &families,
                "pgbouncer_stats_queries_pooled_total",
                &[("database", database.as_str())],
            );
            if pooled.is_some_and(|queries| queries >= 3.0) {
                assert!(value(
                    &families,
                    "pgbouncer_stats_queries_duration_seconds_total",
                    &[("database", database.as_str())]
                )
                .is_some_and(|seconds| seconds > 0.0));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "queries never counted: {pooled:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(clients);
    }

    #[tokio::test]
    async fn a_stopped_pgbouncer_is_down_quickly() {
        let cluster = pgdbre_lab::testing::shared();
        let bouncer = LabPgbouncer::start(cluster.primary()).expect("start pgbouncer");
        let target = target(&bouncer);
        assert_eq!(
            value(&target.scrape().await, "pgbouncer_up", &[]),
            Some(1.0)
        );

        drop(bouncer);
        let started = Instant::now();
        let families = target.scrape().await;
        assert_eq!(value(&families, "pgbouncer_up", &[]), Some(0.0));
        assert_eq!(families.len(), 1, "only pgbouncer_up: {families:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
