//! The collector registry: one file per collector, each with its SQL (version-gated for
//! PostgreSQL 12–18) and a test against a real lab server at the bottom.
//!
//! [`all`] is the single source of truth: the scrape, `pgdbre_collector_up{collector}` and
//! `docs/metrics.md` derive from it. Collectors only read statistics views and catalogs; none
//! calls a function that takes a relation lock (sizes come from `pg_class.relpages`).

mod bgwriter;
mod database_size;
mod locks;
pub mod pgbouncer;
mod replication;
mod replication_slots;
mod server;
mod settings;
mod stat_activity;
mod stat_archiver;
mod stat_database;
mod stat_io;
mod stat_replication;
mod stat_statements;
mod stat_user_tables;
mod stat_wal;
mod wraparound;

#[cfg(test)]
pub(crate) mod test_support;

use crate::{Family, MetricType, ScrapeOptions};
use async_trait::async_trait;
use pgdbre_pg::Session;

/// What a collector gets: the target's session and the scrape limits.
pub struct Scrape<'a> {
    pub session: &'a Session,
    pub options: &'a ScrapeOptions,
}

impl Scrape<'_> {
    /// `server_version_num / 10000`, for version gates.
    pub fn major(&self) -> u32 {
        self.session.info().version.major()
    }
}

/// One unit of metrics: a stable id, one or a few queries, the families they become.
#[async_trait]
pub trait Collector: Send + Sync {
    /// Stable kebab-case id, the `collector` label of `pgdbre_collector_up`.
    fn id(&self) -> &'static str;
    /// One line for the docs: which view and which families.
    fn describe(&self) -> &'static str;
    /// Whether results may be reused for `ScrapeOptions::slow_interval` instead of queried on
    /// every scrape: for collectors whose answer is costly and changes slowly.
    fn slow(&self) -> bool {
        false
    }
    /// Queries the server and returns the families (without the `server` label).
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error>;
}

/// Every collector, in exposition order.
pub fn all() -> Vec<&'static dyn Collector> {
    vec![
        &server::Server,
        &stat_database::StatDatabase,
        &database_size::DatabaseSize,
        &wraparound::Wraparound,
        &locks::Locks,
        &stat_activity::StatActivity,
        &bgwriter::Bgwriter,
        &stat_wal::StatWal,
        &stat_io::StatIo,
        &stat_archiver::StatArchiver,
        &replication::Replication,
        &stat_replication::StatReplication,
        &replication_slots::ReplicationSlots,
        &settings::Settings,
        &stat_user_tables::StatUserTables,
        // Last: the costliest query; the session runs pipelined queries in order, so one that
        // is slow delays only those sent after it.
        &stat_statements::StatStatements,
    ]
}

/// One numeric column of a statistics query and the family it feeds.
pub(crate) struct Column {
    pub column: &'static str,
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
}

pub(crate) const fn gauge(column: &'static str, name: &'static str, help: &'static str) -> Column {
    Column {
        column,
        name,
        help,
        kind: MetricType::Gauge,
    }
}

pub(crate) const fn counter(
    column: &'static str,
    name: &'static str,
    help: &'static str,
) -> Column {
    Column {
        column,
        name,
        help,
        kind: MetricType::Counter,
    }
}

/// Runs `sql` (no parameters) and turns its rows into families with [`families_from_rows`]: the
/// whole of a collector that reads one view.
pub(crate) async fn query_families(
    scrape: &Scrape<'_>,
    sql: &str,
    labels: &[&str],
    columns: &[Column],
) -> Result<Vec<Family>, tokio_postgres::Error> {
    let rows = scrape.session.client().query(sql, &[]).await?;
    families_from_rows(&rows, labels, columns)
}

/// Turns rows into one family per column present in the rows: `labels` name text columns (read
/// as labels, NULL as ""), every column of `columns` is read as `float8` (NULL: no sample).
/// Columns a version of the query does not select are skipped, so one table serves all versions.
pub(crate) fn families_from_rows(
    rows: &[tokio_postgres::Row],
    labels: &[&str],
    columns: &[Column],
) -> Result<Vec<Family>, tokio_postgres::Error> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let present: Vec<&Column> = columns
        .iter()
        .filter(|c| first.columns().iter().any(|col| col.name() == c.column))
        .collect();
    let mut families: Vec<Family> = present
        .iter()
        .map(|c| Family::new(c.name, c.help, c.kind))
        .collect();
    for row in rows {
        let mut label_values = Vec::with_capacity(labels.len());
        for label in labels {
            let value: Option<String> = row.try_get(*label)?;
            label_values.push((*label, value.unwrap_or_default()));
        }
        let label_refs: Vec<(&str, &str)> =
            label_values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (family, column) in families.iter_mut().zip(&present) {
            if let Some(value) = row.try_get::<_, Option<f64>>(column.column)? {
                family.push(&label_refs, value);
            }
        }
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{ScrapeOptions, Target};
    use pgdbre_pg::ConnConfig;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Never answers within any collector timeout.
    struct Stuck;

    #[async_trait]
    impl Collector for Stuck {
        fn id(&self) -> &'static str {
            "stuck"
        }
        fn describe(&self) -> &'static str {
            "test only: `pg_sleep(10)`"
        }
        async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
            scrape
                .session
                .client()
                .simple_query("SELECT pg_catalog.pg_sleep(10)")
                .await?;
            Ok(vec![Family::gauge("stuck_answered", "never").with(&[], 1.0)])
        }
    }

    fn up(families: &[Family], collector: &str) -> Option<f64> {
        let family = families.iter().find(|f| f.name == "pgdbre_collector_up")?;
        family
            .samples
            .iter()
            .find(|s| {
                s.labels
                    .iter()
                    .any(|(k, v)| k == "collector" && v == collector)
            })
            .map(|s| s.value)
    }

    #[tokio::test]
    async fn a_stuck_collector_times_out_alone() {
        let cluster = pgdbre_lab::testing::shared();
        let config = ConnConfig::resolve(Some(&cluster.primary().dsn())).expect("lab DSN");
        let options = ScrapeOptions {
            collector_timeout: Duration::from_millis(500),
            ..ScrapeOptions::default()
        };
        let target = Target::with_collectors(
            config,
            Arc::new(options),
            vec![&server::Server, &stat_database::StatDatabase, &Stuck],
        );
        // Twice: the cancelled statement must not poison the reused session.
        for _ in 0..2 {
            let started = Instant::now();
            let families = target.scrape().await;
            let elapsed = started.elapsed();
            assert!(elapsed < Duration::from_secs(3), "scrape took {elapsed:?}");
            assert_eq!(up(&families, "stuck"), Some(0.0));
            assert_eq!(up(&families, "server"), Some(1.0));
            assert_eq!(up(&families, "stat-database"), Some(1.0));
            assert!(families
                .iter()
                .any(|f| f.name == "pg_stat_database_xact_commit"));
            assert!(!families.iter().any(|f| f.name == "stuck_answered"));
            let pg_up = families.iter().find(|f| f.name == "pg_up").expect("pg_up");
            assert_eq!(pg_up.samples[0].value, 1.0);
        }
    }

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let docs = include_str!("../../../../docs/metrics.md");
        let mut seen = std::collections::HashSet::new();
        for collector in all() {
            let id = collector.id();
            assert!(seen.insert(id), "duplicate collector id {id}");
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{id} is not kebab-case"
            );
            assert!(
                docs.contains(&format!("| `{id}` |")),
                "docs/metrics.md misses {id}"
            );
        }
    }
}
