//! The state store: what `pgdbre serve` measured, kept per minute so `pgdbre slo status` and
//! `pgdbre gate` can compute error budgets and burn rates without Prometheus.
//!
//! It stores counts and knows nothing about SLOs: `pgdbre_slo` reads any [`Store`] as an event
//! source and decides what the counts mean. One trait, so a PostgreSQL-backed store can come later; [`SqliteStore`] is the
//! embedded default (one file, WAL mode). What is kept, per minute:
//!
//! * per server and probe (`read` | `commit`): attempts, errors, and for each bucket bound of
//!   `pgdbre_probe_duration_seconds` the successful probes at or under it (cumulative, as a
//!   Prometheus histogram);
//! * per server and standby: the highest replica lag seen in that minute;
//! * per DR drill (`pgdbre drill`): its evidence ([`DrillRecord`]), never pruned.
//!
//! Bounded: rows older than the retention (35 days by default) are pruned on write. Every write
//! is one transaction, so samples already written survive a crash or a failed later write.

mod drills;
mod sqlite;

pub use drills::DrillRecord;
pub use sqlite::SqliteStore;

use std::path::PathBuf;

/// Minutes since the Unix epoch.
pub type Minute = i64;

/// Default retention: enough for a 30-day SLO window and some slack.
pub const DEFAULT_RETENTION_DAYS: u32 = 35;

/// The counts of one probe on one server in one minute (added to what the minute already has).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeMinute {
    pub server: String,
    /// `read` or `commit`.
    pub probe: String,
    pub minute: Minute,
    pub attempts: u64,
    pub errors: u64,
    /// `(bound in seconds, successful probes that took at most that long)`, cumulative.
    pub within: Vec<(f64, u64)>,
}

/// The highest replica lag of one standby in one minute (the store keeps the maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct LagMinute {
    pub server: String,
    pub standby: String,
    pub minute: Minute,
    pub max_lag_seconds: f64,
}

/// One write: everything recorded since the last one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub probes: Vec<ProbeMinute>,
    pub lags: Vec<LagMinute>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty() && self.lags.is_empty()
    }
}

/// Which minutes and servers a query covers: `from..=to`, and one server or all.
#[derive(Debug, Clone, PartialEq)]
pub struct Range<'a> {
    pub from: Minute,
    pub to: Minute,
    pub server: Option<&'a str>,
}

/// Sums of one probe kind over a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeTotals {
    pub attempts: u64,
    pub errors: u64,
    /// Successful probes within the asked bound (0 when no bound was asked).
    pub within: u64,
}

/// Why the store cannot be used; every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state store {path} is locked by another process (another pgdbre serve on the same file?); \
         hint: stop it or pass --store with another path"
    )]
    Locked { path: PathBuf },
    #[error(
        "state store {path} is read-only; hint: make the file and its directory writable by this \
         user, pass --store with another path, or --store none"
    )]
    ReadOnly { path: PathBuf },
    #[error("no state store at {path}; hint: run `pgdbre serve --store {path}` first, or pass --store with the file it writes")]
    Missing { path: PathBuf },
    #[error("cannot open state store {path}: {message}; hint: check that its directory exists and is writable, or pass --store with another path")]
    Open { path: PathBuf, message: String },
    #[error("state store {path}: {message}")]
    Other { path: PathBuf, message: String },
}

/// The state store. Writes add to a minute's counts; reads sum over a range.
pub trait Store: Send {
    /// Adds a batch in one transaction and prunes rows older than the retention before `now`.
    fn record(&mut self, batch: &Batch, now: Minute) -> Result<(), StoreError>;

    /// Sums a probe kind's counts; `bound` (seconds, a bucket bound) asks for the successful
    /// probes within it.
    fn probe_totals(
        &self,
        range: &Range<'_>,
        probe: &str,
        bound: Option<f64>,
    ) -> Result<ProbeTotals, StoreError>;

    /// Per minute with a sample in the range: the highest lag of any standby.
    fn lag_minutes(&self, range: &Range<'_>) -> Result<Vec<(Minute, f64)>, StoreError>;

    /// The newest minute with any sample, if there is one.
    fn latest_minute(&self) -> Result<Option<Minute>, StoreError>;

    /// Records one DR drill's evidence in its own transaction and returns the id it got.
    fn record_drill(&mut self, drill: &DrillRecord) -> Result<i64, StoreError>;

    /// The drills that finished between `from` and `to` (Unix milliseconds, inclusive), oldest
    /// first.
    fn drills(&self, from: i64, to: i64) -> Result<Vec<DrillRecord>, StoreError>;
}

/// The minute containing `time`.
pub fn minute_of(time: std::time::SystemTime) -> Minute {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    secs.div_euclid(60)
}

/// The default store path: `$XDG_STATE_HOME/pgdbre/state.db`, else
/// `~/.local/state/pgdbre/state.db`; `None` without either variable.
pub fn default_path() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(state) = from("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("pgdbre").join("state.db"));
    }
    from("HOME").map(|home| {
        PathBuf::from(home)
            .join(".local")
            .join("state")
            .join("pgdbre")
            .join("state.db")
    })
}

/// A bucket bound in whole microseconds, the key bounds are stored under (no float equality).
pub fn bound_micros(seconds: f64) -> i64 {
    (seconds * 1_000_000.0).round() as i64
}
