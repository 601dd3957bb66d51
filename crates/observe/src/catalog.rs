//! The health-check catalog of `pgdbre-check`, run in the background on its own interval.
//!
//! The catalog costs far more than a scrape (dozens of queries, two sessions per target), so a
//! scrape never runs it: it exports the last completed run as `pgdbre_check_*` families, rendered
//! by `pgdbre_check::render::prometheus`. Checks are not re-implemented here.

use pgdbre_check::{checks, render, RunOptions, Selection, TargetReport, Thresholds};
use pgdbre_pg::ConnConfig;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The last catalog run per target, refreshed by [`CheckCatalog::spawn`].
#[derive(Clone, Default)]
pub struct CheckCatalog {
    last: Arc<RwLock<Vec<Option<TargetReport>>>>,
}

impl CheckCatalog {
    /// Starts one background loop over `targets`, every `interval`; the first run starts now.
    pub fn spawn(targets: Vec<ConnConfig>, interval: Duration) -> CheckCatalog {
        let catalog = CheckCatalog {
            last: Arc::new(RwLock::new(vec![None; targets.len()])),
        };
        let last = Arc::clone(&catalog.last);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let catalog = checks::all();
            let selection = Selection::default();
            let thresholds = Thresholds::default();
            let options = RunOptions::default();
            loop {
                ticker.tick().await;
                let runs = targets.iter().map(|config| {
                    pgdbre_check::run_target(config, &catalog, &selection, &thresholds, &options)
                });
                let reports = futures::future::join_all(runs).await;
                tracing::info!(targets = reports.len(), "check catalog run finished");
                let mut slot = last
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *slot = reports.into_iter().map(Some).collect();
            }
        });
        catalog
    }

    /// The last completed run of each target, in the order of `spawn`'s targets (`None` until
    /// its first run finishes); the dashboard lists their findings.
    pub fn reports(&self) -> Vec<Option<TargetReport>> {
        self.last
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The `pgdbre_check_*` families of the last completed run (empty before the first).
    pub fn render(&self) -> String {
        let last = self
            .last
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reports: Vec<TargetReport> = last.iter().flatten().cloned().collect();
        if reports.is_empty() {
            return String::new();
        }
        render::prometheus(&reports)
    }
}
