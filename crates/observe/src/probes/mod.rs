//! Synthetic SLI probes: what an application sees, measured by doing what it does.
//!
//! Each configured server gets a [`Prober`]: a background task with its own session (never the
//! scrape session, so a slow scrape does not delay a probe nor the reverse) that every
//! [`ProbeOptions::interval`] runs the read probe (`read.rs`, a `SELECT` on the heartbeat
//! table) and, on a primary, the commit probe (`commit.rs`, an upsert of one heartbeat row,
//! which waits for synchronous replication like any commit). Each statement is prepared once
//! per session and bounded by [`ProbeOptions::timeout`]. On a standby the read probe's answer is
//! the replica lag. A scrape only reads the counts kept here.
//!
//! The series are the contract of `pgdbre_slo::metrics`, which the SLO rules read: names, labels
//! and histogram buckets come from there.

mod commit;
mod heartbeat;
mod read;
mod record;

pub use record::Recorder;

use crate::{Family, Histogram};
use pgdbre_pg::{ConnConfig, Session};
use pgdbre_slo::metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::Statement;

/// How often and how long the probes may run.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Time between two rounds of probes.
    pub interval: Duration,
    /// Each probe may take this long (also its session's `statement_timeout`); a slower probe
    /// is an error of class `timeout`.
    pub timeout: Duration,
    /// Opening the probe session may take this long; failing is an error of class `connect`.
    pub connect_timeout: Duration,
    /// Where the probes also record their per-minute counts (`pgdbre serve --store`).
    pub recorder: Option<Recorder>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            recorder: None,
        }
    }
}

/// The probes of one server, running in the background until dropped.
pub struct Prober {
    name: String,
    results: Arc<Mutex<Results>>,
    task: JoinHandle<()>,
}

impl Prober {
    /// Starts probing the server of `config` on the current tokio runtime.
    pub fn spawn(config: ConnConfig, options: ProbeOptions) -> Prober {
        let name = config.target();
        let results = Arc::new(Mutex::new(Results::default()));
        let worker = Worker {
            node: name.clone(),
            config,
            options,
            results: Arc::clone(&results),
            connection: None,
            in_recovery: None,
            last_logged: BTreeMap::new(),
            pending: record::Pending::default(),
        };
        Prober {
            name,
            results,
            task: tokio::spawn(worker.run()),
        }
    }

    /// The probe families so far (without the `server` label, which the target adds).
    pub fn families(&self) -> Vec<Family> {
        let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results.families(&self.name)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The two probes, in the order a round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    Read,
    Commit,
}

impl Probe {
    fn label(self) -> &'static str {
        match self {
            Probe::Read => metrics::PROBE_READ,
            Probe::Commit => metrics::PROBE_COMMIT,
        }
    }
}

/// Why a probe failed: its class (`connect`, `timeout` or a SQLSTATE class such as `42`) and a
/// redacted message for the log.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    class: String,
    message: String,
}

impl Failure {
    const CONNECT: &'static str = "connect";
    const TIMEOUT: &'static str = "timeout";

    fn new(class: &str, message: impl Into<String>) -> Failure {
        Failure {
            class: class.to_owned(),
            message: message.into(),
        }
    }

    /// A failed statement: the class of its SQLSTATE, or `connect` when the session is gone.
    fn query(session: &Session, error: &tokio_postgres::Error) -> Failure {
        let class = match error.code() {
            Some(state) => sqlstate_class(Some(state.code())).to_owned(),
            None if error.is_closed() => Failure::CONNECT.to_owned(),
            None => "client".to_owned(),
        };
        Failure {
            class,
            message: session.query_error(error).to_string(),
        }
    }
}

/// The class of a SQLSTATE: its first two characters (`42501` → `42`).
fn sqlstate_class(sqlstate: Option<&str>) -> &str {
    sqlstate.and_then(|code| code.get(..2)).unwrap_or("client")
}

/// Everything measured since the prober started: counters only grow.
#[derive(Debug, Default)]
struct Results {
    ok: BTreeMap<Probe, u64>,
    errors: BTreeMap<(Probe, String), u64>,
    durations: BTreeMap<Probe, Histogram>,
    /// Seconds since the newest replayed heartbeat, while the server is a standby that answers.
    replica_lag: Option<f64>,
}

impl Results {
    fn record(&mut self, probe: Probe, outcome: &Result<Duration, Failure>) {
        match outcome {
            Ok(took) => {
                *self.ok.entry(probe).or_default() += 1;
                self.durations
                    .entry(probe)
                    .or_insert_with(|| Histogram::new(&metrics::PROBE_DURATION_BUCKETS))
                    .observe(took.as_secs_f64());
            }
            Err(failure) => {
                *self
                    .errors
                    .entry((probe, failure.class.clone()))
                    .or_default() += 1;
            }
        }
    }

    /// The families; every probe attempted at least once has both `result` series and a
    /// histogram (possibly empty), so `rate()` sees a zero rather than nothing.
    fn families(&self, standby: &str) -> Vec<Family> {
        let mut attempted: Vec<Probe> = self.ok.keys().copied().collect();
        attempted.extend(self.errors.keys().map(|(probe, _)| *probe));
        attempted.sort();
        attempted.dedup();

        let mut durations = Family::histogram(
            metrics::PROBE_DURATION_SECONDS,
            "Duration of each successful synthetic probe (read: SELECT of the heartbeat; commit: upsert and commit of one heartbeat row).",
        );
        let mut total = Family::counter(metrics::PROBE_TOTAL, "Synthetic probes run, by result.");
        let mut errors = Family::counter(
            "pgdbre_probe_errors_total",
            "Failed synthetic probes, by class: the SQLSTATE class, connect or timeout.",
        );
        let empty = Histogram::new(&metrics::PROBE_DURATION_BUCKETS);
        for probe in attempted {
            let label = ("probe", probe.label());
            let failed: u64 = self
                .errors
                .iter()
                .filter(|((p, _), _)| *p == probe)
                .map(|(_, count)| count)
                .sum();
            let ok = self.ok.get(&probe).copied().unwrap_or(0);
            total.push(&[label, ("result", metrics::RESULT_OK)], ok as f64);
            total.push(&[label, ("result", metrics::RESULT_ERROR)], failed as f64);
            durations.push_histogram(&[label], self.durations.get(&probe).unwrap_or(&empty));
        }
        for ((probe, class), count) in &self.errors {
            errors.push(&[("probe", probe.label()), ("class", class)], *count as f64);
        }
        let mut lag = Family::gauge(
            metrics::REPLICA_LAG_SECONDS,
            "Seconds since the primary committed the newest heartbeat this standby has replayed (resolution: the probe interval).",
        );
        if let Some(seconds) = self.replica_lag {
            lag.push(&[("standby", standby)], seconds);
        }
        vec![durations, total, errors, lag]
    }
}

/// The probe session and its statements, each prepared on first use.
struct Connection {
    session: Session,
    read: Option<Statement>,
    /// `read` is [`read::WITHOUT_TABLE`]: the heartbeat table did not exist when it was prepared.
    read_without_table: bool,
    commit: Option<Statement>,
}

/// The background task's state; only it touches the session.
struct Worker {
    config: ConnConfig,
    /// This server's name, the key of its heartbeat row.
    node: String,
    options: ProbeOptions,
    results: Arc<Mutex<Results>>,
    connection: Option<Connection>,
    /// What the last session said; unknown before the first one.
    in_recovery: Option<bool>,
    /// The last message logged per probe, so a lasting failure is logged once, not every round.
    last_logged: BTreeMap<Probe, String>,
    /// Counts not yet in the state store (with a recorder).
    pending: record::Pending,
}

impl Worker {
    async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.options.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.round().await;
            if let Some(recorder) = self.options.recorder.clone() {
                recorder.flush(&self.node, &mut self.pending).await;
            }
        }
    }

    /// One round: (re)connect if needed, then each probe that applies to this server.
    async fn round(&mut self) {
        if self
            .connection
            .as_ref()
            .is_some_and(|c| c.session.client().is_closed())
        {
            self.connection = None;
        }
        let connect_failure = if self.connection.is_none() {
            self.connect().await.err()
        } else {
            None
        };
        // Commits are probed only where they can succeed: on a server known to be a primary.
        // One never reached yet counts read failures only.
        let probes: &[Probe] = if self.in_recovery == Some(false) {
            &[Probe::Read, Probe::Commit]
        } else {
            &[Probe::Read]
        };
        for &probe in probes {
            let outcome = match &connect_failure {
                Some(failure) => Err(failure.clone()),
                None => self.timed(probe).await,
            };
            self.log(probe, &outcome);
            let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            results.record(probe, &outcome);
            if probe == Probe::Read && outcome.is_err() {
                results.replica_lag = None;
            }
            if self.options.recorder.is_some() {
                let lag = (probe == Probe::Read)
                    .then_some(results.replica_lag)
                    .flatten();
                drop(results);
                self.pending.add(probe, &outcome, lag);
            }
        }
    }

    async fn connect(&mut self) -> Result<(), Failure> {
        let limit = self.options.connect_timeout;
        let session = match tokio::time::timeout(limit, Session::connect(&self.config)).await {
            Ok(Ok(session)) => session,
            Ok(Err(error)) => return Err(Failure::new(Failure::CONNECT, error.to_string())),
            Err(_) => {
                return Err(Failure::new(
                    Failure::CONNECT,
                    format!("cannot connect: timed out after {limit:?}"),
                ))
            }
        };
        // The server gives up when the probe does; a probe never queues behind a lock for long.
        let timeout = self.options.timeout.as_millis().max(1);
        let setup = format!(
            "SET application_name = 'pgdbre probe'; SET statement_timeout = {timeout}; \
             SET lock_timeout = {timeout}; SET idle_in_transaction_session_timeout = 0"
        );
        match tokio::time::timeout(limit, session.client().batch_execute(&setup)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(Failure::query(&session, &error)),
            Err(_) => {
                return Err(Failure::new(
                    Failure::TIMEOUT,
                    "cannot prepare the probe session: timed out",
                ))
            }
        }
        self.in_recovery = Some(session.info().in_recovery);
        self.connection = Some(Connection {
            session,
            read: None,
            read_without_table: false,
            commit: None,
        });
        Ok(())
    }

    /// One probe under the timeout; its duration when it succeeded. A timed-out session is
    /// dropped: the statement may still be running (a commit waiting for a standby).
    async fn timed(&mut self, probe: Probe) -> Result<Duration, Failure> {
        let limit = self.options.timeout;
        match tokio::time::timeout(limit, self.attempt(probe)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.connection = None;
                Err(Failure::new(
                    Failure::TIMEOUT,
                    format!("{} probe timed out after {limit:?}", probe.label()),
                ))
            }
        }
    }

    /// Prepares the probe's statement if this session has not yet, then runs and times it.
    async fn attempt(&mut self, probe: Probe) -> Result<Duration, Failure> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(Failure::new(Failure::CONNECT, "no probe session"));
        };
        let session = &connection.session;
        let client = session.client();
        match probe {
            Probe::Read => {
                if connection.read.is_none() {
                    let statement = match client.prepare(read::SQL).await {
                        Ok(statement) => statement,
                        Err(error) if read::is_missing_table(&error) => {
                            connection.read_without_table = true;
                            client
                                .prepare(read::WITHOUT_TABLE)
                                .await
                                .map_err(|e| Failure::query(session, &e))?
                        }
                        Err(error) => return Err(Failure::query(session, &error)),
                    };
                    connection.read = Some(statement);
                }
                let statement = connection.read.as_ref().expect("prepared above");
                let started = Instant::now();
                let answer = read::run(client, statement)
                    .await
                    .map_err(|e| Failure::query(session, &e))?;
                let took = started.elapsed();
                if connection.read_without_table && answer.table_exists {
                    // The next round prepares the real read, which measures replica lag.
                    connection.read = None;
                    connection.read_without_table = false;
                }
                self.in_recovery = Some(answer.in_recovery);
                let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
                results.replica_lag = answer
                    .in_recovery
                    .then_some(answer.heartbeat_age)
                    .flatten()
                    .map(|age| age.max(0.0));
                Ok(took)
            }
            Probe::Commit => {
                if connection.commit.is_none() {
                    heartbeat::ensure(session).await.map_err(|error| Failure {
                        class: sqlstate_class(error.sqlstate()).to_owned(),
                        message: error.to_string(),
                    })?;
                    let statement = client
                        .prepare(commit::SQL)
                        .await
                        .map_err(|e| Failure::query(session, &e))?;
                    connection.commit = Some(statement);
                }
                let statement = connection.commit.as_ref().expect("prepared above");
                let started = Instant::now();
                commit::run(client, statement, &self.node)
                    .await
                    .map_err(|e| Failure::query(session, &e))?;
                Ok(started.elapsed())
            }
        }
    }

    /// Logs a failure when it differs from the last one logged, and a recovery once.
    fn log(&mut self, probe: Probe, outcome: &Result<Duration, Failure>) {
        match outcome {
            Err(failure) => {
                if self.last_logged.get(&probe) != Some(&failure.message) {
                    tracing::warn!(
                        target_name = %self.node,
                        probe = probe.label(),
                        class = %failure.class,
                        "probe failed: {}",
                        failure.message
                    );
                    self.last_logged.insert(probe, failure.message.clone());
                }
            }
            Ok(_) => {
                if self.last_logged.remove(&probe).is_some() {
                    tracing::info!(target_name = %self.node, probe = probe.label(), "probe succeeds again");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
