//! Shared by the collector tests: run one collector against a lab server and look up samples.

use super::{Collector, Scrape};
use crate::{Family, ScrapeOptions};
use pgdbre_pg::{ConnConfig, Session};

/// Runs `sql` in a fresh database of the shared lab server (failing the test with `what` if it
/// fails) and returns that database's name and DSN.
pub fn seeded_database(sql: &str, what: &str) -> (String, String) {
    let cluster = pgdbre_lab::testing::shared();
    let database = pgdbre_lab::testing::fresh_database(cluster);
    cluster
        .primary()
        .psql_db(&database, sql)
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let dsn = cluster.primary().dsn_for(&database);
    (database, dsn)
}

/// Connects to `dsn` and runs `collector` once, panicking with the server's error if it fails.
pub async fn collect(collector: &dyn Collector, dsn: &str) -> Vec<Family> {
    collect_with(collector, dsn, &ScrapeOptions::default()).await
}

/// [`collect`] with explicit scrape options.
pub async fn collect_with(
    collector: &dyn Collector,
    dsn: &str,
    options: &ScrapeOptions,
) -> Vec<Family> {
    let config = ConnConfig::resolve(Some(dsn)).expect("lab DSN resolves");
    let session = Session::connect(&config).await.expect("lab server accepts");
    let scrape = Scrape {
        session: &session,
        options,
    };
    collector
        .collect(&scrape)
        .await
        .unwrap_or_else(|error| panic!("{}: {}", collector.id(), session.query_error(&error)))
}

/// The family called `name`, panicking with the names present when it is missing.
pub fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| {
        let names: Vec<_> = families.iter().map(|f| f.name.as_str()).collect();
        panic!("no family {name}; have {names:?}")
    })
}

/// The value of the sample of `name` whose labels include all of `labels`.
pub fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    family(families, name)
        .samples
        .iter()
        .find(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
}

/// The label values of `label` over the samples of `name`.
pub fn label_values(families: &[Family], name: &str, label: &str) -> Vec<String> {
    family(families, name)
        .samples
        .iter()
        .filter_map(|s| s.labels.iter().find(|(k, _)| k == label))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The server's major version, as the collectors see it.
pub async fn major(dsn: &str) -> u32 {
    let config = ConnConfig::resolve(Some(dsn)).expect("lab DSN resolves");
    let session = Session::connect(&config).await.expect("lab server accepts");
    session.info().version.major()
}
