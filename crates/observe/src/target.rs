//! One monitored server: its resolved configuration and the session reused across scrapes.
//!
//! A scrape never hangs on a dead server: opening a session is bounded by the connect timeout
//! and every collector by its own timeout (also the session's `statement_timeout`, so the server
//! cancels what the scrape gave up on). A closed session is dropped and re-opened on the next
//! scrape, so a server that comes back is seen again without restarting `pgdbre serve`.

use crate::collectors::{self, Collector, Scrape};
use crate::{Family, ProbeOptions, Prober, ScrapeOptions};
use futures::future::join_all;
use pgdbre_pg::{ConnConfig, Session};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// A server `pgdbre serve` scrapes.
pub struct Target {
    config: ConnConfig,
    name: String,
    options: Arc<ScrapeOptions>,
    collectors: Vec<&'static dyn Collector>,
    session: Mutex<Option<Session>>,
    /// The last answer of each slow collector and when it was computed.
    cache: std::sync::Mutex<HashMap<&'static str, (Instant, Vec<Family>)>>,
    /// The synthetic probes of this server, when enabled; a scrape reads their counts.
    prober: Option<Prober>,
}

impl Target {
    /// A target for `config`; nothing is opened until the first scrape.
    pub fn new(config: ConnConfig, options: Arc<ScrapeOptions>) -> Target {
        Target {
            name: config.target(),
            config,
            options,
            collectors: collectors::all(),
            session: Mutex::new(None),
            cache: std::sync::Mutex::new(HashMap::new()),
            prober: None,
        }
    }

    /// Also runs the synthetic probes on this server, in the background on their own session
    /// (spawned on the current tokio runtime); their series join every scrape, also when the
    /// scrape itself cannot connect.
    pub fn with_probes(mut self, options: ProbeOptions) -> Target {
        self.prober = Some(Prober::spawn(self.config.clone(), options));
        self
    }

    /// A target that runs `collectors` instead of the registry (tests of the scrape itself).
    #[cfg(test)]
    pub(crate) fn with_collectors(
        config: ConnConfig,
        options: Arc<ScrapeOptions>,
        collectors: Vec<&'static dyn Collector>,
    ) -> Target {
        Target {
            collectors,
            ..Target::new(config, options)
        }
    }

    /// The secret-free name (`host:port/dbname`), the `server` label of its series.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resolved connection settings.
    pub fn config(&self) -> &ConnConfig {
        &self.config
    }

    /// Runs every collector and returns its families, each sample labelled `server`, plus the
    /// probe families (with probes enabled), `pg_up`, `pgdbre_collector_up`, `pgdbre_collector_duration_seconds` and
    /// `pgdbre_scrape_duration_seconds`. Concurrent scrapes of one target take turns.
    pub async fn scrape(&self) -> Vec<Family> {
        let started = Instant::now();
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| s.client().is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = self.connect().await;
        }

        let mut up = Family::gauge(
            "pgdbre_collector_up",
            "Whether the collector succeeded on this scrape (1) or failed or timed out (0).",
        );
        let mut durations = Family::gauge(
            "pgdbre_collector_duration_seconds",
            "How long the collector took on this scrape.",
        );
        let mut families = Vec::new();
        let mut connected = false;
        if let Some(session) = slot.as_ref() {
            let scrape = Scrape {
                session,
                options: &self.options,
            };
            let runs = self.collectors.iter().map(|c| self.run_one(*c, &scrape));
            let mut succeeded = 0;
            for (collector, (result, seconds)) in self.collectors.iter().zip(join_all(runs).await) {
                let ok = result.is_some();
                // A slow collector may have answered from its cache without asking the server.
                succeeded += usize::from(ok && !collector.slow());
                up.push(&[("collector", collector.id())], f64::from(u8::from(ok)));
                durations.push(&[("collector", collector.id())], seconds);
                families.extend(result.unwrap_or_default());
            }
            // A session that died mid-scrape, or one on which nothing answers any more (a
            // network partition), is re-opened next time.
            connected = !session.client().is_closed() && succeeded > 0;
            if !connected {
                *slot = None;
            }
        }
        if !connected {
            families.clear();
            up.samples.clear();
            durations.samples.clear();
            for collector in &self.collectors {
                up.push(&[("collector", collector.id())], 0.0);
            }
        }

        let pg_up = Family::gauge(
            "pg_up",
            "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
        )
        .with(&[], f64::from(u8::from(connected)));
        let scrape_duration = Family::gauge(
            "pgdbre_scrape_duration_seconds",
            "How long the whole scrape of this server took.",
        )
        .with(&[], started.elapsed().as_secs_f64());

        let mut all = Vec::with_capacity(families.len() + 8);
        all.push(pg_up);
        all.extend(families);
        if let Some(prober) = &self.prober {
            all.extend(prober.families());
        }
        all.push(up);
        all.push(durations);
        all.push(scrape_duration);
        for family in &mut all {
            family.label_all("server", &self.name);
        }
        all
    }

    /// Opens and prepares a session, or logs why not (the error text is already redacted).
    async fn connect(&self) -> Option<Session> {
        let limit = self.options.connect_timeout;
        let session = match tokio::time::timeout(limit, Session::connect(&self.config)).await {
            Ok(Ok(session)) => session,
            Ok(Err(error)) => {
                tracing::warn!(target_name = %self.name, "cannot connect: {error}");
                return None;
            }
            Err(_) => {
                tracing::warn!(target_name = %self.name, "cannot connect: timed out after {limit:?}");
                return None;
            }
        };
        // The server cancels a statement the scrape has stopped waiting for; a collector never
        // queues behind a lock it would be reporting.
        let setup = format!(
            "SET statement_timeout = {}; SET lock_timeout = 500; \
             SET idle_in_transaction_session_timeout = 0; SET jit = off",
            self.options.collector_timeout.as_millis().max(1)
        );
        let prepared = tokio::time::timeout(limit, session.client().batch_execute(&setup)).await;
        match prepared {
            Ok(Ok(())) => {
                tracing::info!(target_name = %self.name, version = %session.info().version, "connected");
                Some(session)
            }
            Ok(Err(error)) => {
                tracing::warn!(target_name = %self.name, "cannot prepare session: {}", session.query_error(&error));
                None
            }
            Err(_) => {
                tracing::warn!(target_name = %self.name, "cannot prepare session: timed out");
                None
            }
        }
    }

    /// One collector under its timeout: its families (None when it failed) and its seconds. A
    /// slow collector answers from its cache while that is younger than `slow_interval`.
    async fn run_one(
        &self,
        collector: &'static dyn Collector,
        scrape: &Scrape<'_>,
    ) -> (Option<Vec<Family>>, f64) {
        let started = Instant::now();
        let slow = collector.slow() && !self.options.slow_interval.is_zero();
        if slow {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, families)) = cache.get(collector.id()) {
                if at.elapsed() < self.options.slow_interval {
                    return (Some(families.clone()), started.elapsed().as_secs_f64());
                }
            }
        }
        // The server cancels a stuck statement at `collector_timeout` (statement_timeout); the
        // queries pipelined behind it on this session only run then, so the client waits a
        // little longer, or one stuck collector would time out every other one too.
        let limit = self.options.collector_timeout + self.options.collector_timeout / 2;
        let result = match tokio::time::timeout(limit, collector.collect(scrape)).await {
            Ok(Ok(families)) => {
                if slow {
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache.insert(collector.id(), (Instant::now(), families.clone()));
                }
                Some(families)
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    target_name = %self.name,
                    collector = collector.id(),
                    "collector failed: {}",
                    scrape.session.query_error(&error)
                );
                None
            }
            Err(_) => {
                tracing::warn!(target_name = %self.name, collector = collector.id(), "collector timed out after {limit:?}");
                None
            }
        };
        (result, started.elapsed().as_secs_f64())
    }
}
