//! The dashboard's view model: plain values, already decided (health, labels, numbers), so the
//! renderers in `page.rs` and `svg.rs` only lay them out and can be tested without a server.

/// How a value is coloured. `Unknown` is its own state, never shown as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Good,
    Warning,
    Bad,
    Unknown,
}

impl Health {
    /// The CSS class of this state.
    pub fn class(self) -> &'static str {
        match self {
            Health::Good => "good",
            Health::Warning => "warning",
            Health::Bad => "bad",
            Health::Unknown => "unknown",
        }
    }
}

/// The whole page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The service of the SLO spec, else `pgdbre serve`.
    pub title: String,
    /// When the page was rendered, `YYYY-MM-DD HH:MM:SS UTC`.
    pub generated: String,
    /// Seconds between reloads (`<meta http-equiv="refresh">`).
    pub refresh_secs: u32,
    pub targets: Vec<TargetRow>,
    pub slos: SloSection,
    pub findings: FindingsSection,
    pub lag: Vec<LagRow>,
}

/// One configured server and whether the last scrape reached it.
#[derive(Debug, Clone)]
pub struct TargetRow {
    pub name: String,
    /// `primary` or `standby` when reached.
    pub role: Option<&'static str>,
    pub up: bool,
}

/// The SLO section.
#[derive(Debug, Clone)]
pub enum SloSection {
    /// `pgdbre serve` was started without `--slo`.
    NotConfigured,
    Configured {
        /// The spec file, as given.
        file: String,
        /// Why nothing could be evaluated (no state store, an unreadable one), if so.
        problem: Option<String>,
        slos: Vec<SloView>,
    },
}

/// One SLO: its state over its window, burn rates, and the burn-rate history.
#[derive(Debug, Clone)]
pub struct SloView {
    pub name: String,
    /// What is measured and the target: `read latency p99 < 40ms`.
    pub indicator: String,
    /// `99.9% over 30d`.
    pub objective: String,
    /// Met, not met, or unknown.
    pub health: Health,
    /// Good events in percent over the SLO window, when known.
    pub sli_percent: Option<f64>,
    /// Why the SLO window cannot be evaluated.
    pub unknown_reason: Option<String>,
    /// Share of the error budget left over the SLO window, when known (negative: overspent).
    pub budget_remaining: Option<f64>,
    pub burn: Vec<BurnCell>,
    pub chart: BurnChart,
}

/// The burn rate over one window.
#[derive(Debug, Clone)]
pub struct BurnCell {
    /// `5m`, `1h`, ...
    pub window: String,
    pub rate: Option<f64>,
    /// Why the rate is unknown.
    pub reason: Option<String>,
    pub health: Health,
}

/// Burn rate over time, one point per step, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnChart {
    /// Minutes since the Unix epoch of the first point.
    pub first_minute: i64,
    /// Minutes between two points.
    pub step_minutes: i64,
    /// The trailing window each point's burn rate is computed over, e.g. `1h`.
    pub window: String,
    /// `None`: unknown at that point (no data, too few events, missing samples).
    pub points: Vec<Option<f64>>,
    /// Alert thresholds of the spec's alerting profile, plus the 1x line.
    pub thresholds: Vec<Threshold>,
}

/// A horizontal line on the burn chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub rate: f64,
    /// `page 14.4x (1h)`.
    pub label: String,
    pub health: Health,
}

/// The check-findings section.
#[derive(Debug, Clone)]
pub enum FindingsSection {
    /// `--check-interval 0`.
    Disabled,
    Shown {
        rows: Vec<FindingRow>,
        /// One line per target: `5 checks ok, 2 skipped` or `not run yet`.
        summaries: Vec<(String, String)>,
    },
}

/// One finding of the last catalog run.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub severity: pgdbre_check::Severity,
    pub target: String,
    pub check: String,
    pub object: String,
    pub message: String,
}

/// The lag of one standby, as one source measured it.
#[derive(Debug, Clone, PartialEq)]
pub struct LagRow {
    /// The standby: its `application_name`, or the configured target it is.
    pub standby: String,
    /// `pg_stat_replication on <primary>` or `heartbeat probe`.
    pub source: String,
    /// `streaming`, `catchup`, ... when the primary reports it.
    pub state: Option<String>,
    pub lag_seconds: Option<f64>,
    /// WAL not yet replayed, when the primary reports it.
    pub bytes_behind: Option<f64>,
    pub health: Health,
}
