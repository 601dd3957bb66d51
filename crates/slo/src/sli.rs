//! SLI kinds and targets: what an event is, when it is good, and the default objective.
//!
//! | kind | event | good | default objective |
//! |---|---|---|---|
//! | `read_latency_pNN`, `commit_latency_pNN` | one probe of that kind | succeeded within the target | the percentile (p99 → 99 %) |
//! | `error_rate` | one probe (read or commit) | succeeded | 100 − target (< 0.1 → 99.9 %) |
//! | `replica_lag` | one minute | every standby's lag ≤ target all minute | 99.9 % |
//! | `restore_time` | one DR drill | restored with RTO ≤ target | 90 % |

use crate::budget::{format_number, EventCounts};
use crate::duration::Span;
use crate::metrics;
use std::fmt;
use std::time::SystemTime;

/// Which synthetic probe a latency SLI measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Read,
    Commit,
}

impl Probe {
    /// The `probe` label value.
    pub fn label(self) -> &'static str {
        match self {
            Probe::Read => metrics::PROBE_READ,
            Probe::Commit => metrics::PROBE_COMMIT,
        }
    }
}

/// The kind of indicator an SLO measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SliKind {
    /// Probe latency at a percentile (the percentile is the default objective).
    Latency { probe: Probe, percentile: f64 },
    /// Share of failed probes, read and commit together.
    ErrorRate,
    /// Time-slice SLI: a minute is good when no standby lags more than the target.
    ReplicaLag,
    /// One event per DR drill: good when the measured restore time meets the target.
    RestoreTime,
}

/// The SLI kinds as written in the spec, for error messages and docs.
pub const KIND_NAMES: &str =
    "read_latency_pNN, commit_latency_pNN (e.g. read_latency_p99, commit_latency_p999), error_rate, replica_lag, restore_time";

impl SliKind {
    /// Parses `read_latency_p99`, `commit_latency_p999`, `error_rate`, `replica_lag`, `restore_time`.
    pub fn parse(text: &str) -> Result<SliKind, String> {
        match text {
            "error_rate" => return Ok(SliKind::ErrorRate),
            "replica_lag" => return Ok(SliKind::ReplicaLag),
            "restore_time" => return Ok(SliKind::RestoreTime),
            _ => {}
        }
        for (prefix, probe) in [
            ("read_latency", Probe::Read),
            ("commit_latency", Probe::Commit),
        ] {
            let Some(rest) = text.strip_prefix(prefix) else {
                continue;
            };
            let Some(digits) = rest.strip_prefix("_p") else {
                return Err(format!(
                    "`{text}` needs a percentile, e.g. {prefix}_p99 or {prefix}_p999 (99.9)"
                ));
            };
            let percentile = parse_percentile(digits).ok_or_else(|| {
                format!("`{text}`: `p{digits}` is not a percentile; write p50, p90, p95, p99, p999 (99.9), …")
            })?;
            return Ok(SliKind::Latency { probe, percentile });
        }
        Err(format!("unknown SLI kind `{text}`; kinds are {KIND_NAMES}"))
    }

    /// The objective this kind implies when the spec gives none.
    pub fn default_objective(self, target: &Target) -> f64 {
        match self {
            SliKind::Latency { percentile, .. } => percentile,
            SliKind::ErrorRate => 100.0 - target.value,
            SliKind::ReplicaLag => 99.9,
            SliKind::RestoreTime => 90.0,
        }
    }

    /// Events needed in a window before its burn rate counts (`min_events` default).
    pub fn default_min_events(self) -> u64 {
        match self {
            SliKind::Latency { .. } | SliKind::ErrorRate => 100,
            SliKind::ReplicaLag => 10,
            SliKind::RestoreTime => 1,
        }
    }

    /// The unit a bare target number is in, and the units accepted with their scale to it.
    fn units(self) -> (&'static str, &'static [(&'static str, f64)]) {
        match self {
            SliKind::Latency { .. } => ("ms", &[("ms", 1.0), ("s", 1000.0)]),
            SliKind::ErrorRate => ("%", &[("%", 1.0)]),
            SliKind::ReplicaLag | SliKind::RestoreTime => (
                "s",
                &[("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)],
            ),
        }
    }

    /// What one event is, for summaries and alert descriptions.
    pub fn event(self) -> &'static str {
        match self {
            SliKind::Latency {
                probe: Probe::Read, ..
            } => "read probe",
            SliKind::Latency {
                probe: Probe::Commit,
                ..
            } => "commit probe",
            SliKind::ErrorRate => "probe",
            SliKind::ReplicaLag => "minute",
            SliKind::RestoreTime => "DR drill",
        }
    }

    /// Whether events are time slices (budget reads as time) rather than counted events.
    pub fn is_time_slice(self) -> bool {
        matches!(self, SliKind::ReplicaLag)
    }

    /// One sentence: what is good.
    pub fn good_definition(self, target: &Target) -> String {
        match self {
            SliKind::Latency { probe, .. } => format!(
                "a {} probe that succeeds within {}",
                probe.label(),
                target.display_value()
            ),
            SliKind::ErrorRate => "a probe (read or commit) that succeeds".into(),
            SliKind::ReplicaLag => format!(
                "a minute in which every standby's lag stays {} {}",
                target.comparison.symbol(),
                target.display_value()
            ),
            SliKind::RestoreTime => format!(
                "a DR drill that restores with a measured RTO {} {}",
                target.comparison.symbol(),
                target.display_value()
            ),
        }
    }
}

impl fmt::Display for SliKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SliKind::Latency { probe, percentile } => {
                let digits = format_number(*percentile).replace('.', "");
                write!(f, "{}_latency_p{digits}", probe.label())
            }
            SliKind::ErrorRate => f.write_str("error_rate"),
            SliKind::ReplicaLag => f.write_str("replica_lag"),
            SliKind::RestoreTime => f.write_str("restore_time"),
        }
    }
}

/// `99` → 99, `999` → 99.9, `9999` → 99.99, `50` → 50: two integer digits, the rest decimals.
fn parse_percentile(digits: &str) -> Option<f64> {
    if digits.len() < 2 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (whole, decimals) = digits.split_at(2);
    let value: f64 = if decimals.is_empty() {
        whole.parse().ok()?
    } else {
        format!("{whole}.{decimals}").parse().ok()?
    };
    (value > 0.0 && value < 100.0).then_some(value)
}

/// How a measured value is compared to the target. Every kind here is "lower is better".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Below,
    AtMost,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// A parsed target: comparison and value in the kind's base unit (seconds for latency, lag and
/// restore time; percent for error rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub comparison: Comparison,
    pub value: f64,
    kind: SliKind,
}

impl Target {
    /// Parses `"< 40"`, `"<= 5s"`, `"< 0.1%"`; a bare number is in the kind's default unit.
    pub fn parse(kind: SliKind, text: &str) -> Result<Target, String> {
        let trimmed = text.trim();
        let (comparison, rest) = if let Some(rest) = trimmed.strip_prefix("<=") {
            (Comparison::AtMost, rest)
        } else if let Some(rest) = trimmed.strip_prefix('<') {
            (Comparison::Below, rest)
        } else if trimmed.starts_with('>') {
            return Err(format!(
                "`{text}`: a {kind} target is an upper bound (lower is better); write `< N` or `<= N`"
            ));
        } else {
            return Err(format!(
                "`{text}` is not a target; write `< N` or `<= N`, e.g. \"< 40\""
            ));
        };
        let rest = rest.trim();
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, unit) = rest.split_at(split);
        let (default_unit, units) = kind.units();
        let number: f64 = number.parse().map_err(|_| {
            format!("`{text}`: `{rest}` is not a number (write e.g. \"< 40\", in {default_unit})")
        })?;
        let unit = unit.trim();
        let unit = if unit.is_empty() { default_unit } else { unit };
        let Some((_, scale)) = units.iter().find(|(u, _)| *u == unit) else {
            let accepted: Vec<&str> = units.iter().map(|(u, _)| *u).collect();
            return Err(format!(
                "`{text}`: unit `{unit}` does not fit {kind}; use {}",
                accepted.join(", ")
            ));
        };
        let base = match kind {
            // Latency is stored in seconds, the unit of the histogram.
            SliKind::Latency { .. } => number * scale / 1000.0,
            _ => number * scale,
        };
        if !(base.is_finite() && base > 0.0) {
            return Err(format!("`{text}`: the target must be above zero"));
        }
        if kind == SliKind::ErrorRate && base >= 100.0 {
            return Err(format!(
                "`{text}`: an error-rate target is a percentage below 100"
            ));
        }
        Ok(Target {
            comparison,
            value: base,
            kind,
        })
    }

    /// Whether a measured value (in the base unit) is good.
    pub fn is_good(&self, measured: f64) -> bool {
        match self.comparison {
            Comparison::Below => measured < self.value,
            Comparison::AtMost => measured <= self.value,
        }
    }

    /// The value in the unit a reader expects: `40 ms`, `5 s`, `0.1%`.
    pub fn display_value(&self) -> String {
        match self.kind {
            SliKind::Latency { .. } => format!("{} ms", format_number(self.value * 1000.0)),
            SliKind::ErrorRate => format!("{}%", format_number(self.value)),
            SliKind::ReplicaLag | SliKind::RestoreTime => {
                format!("{} s", format_number(self.value))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.comparison.symbol(), self.display_value())
    }
}

/// The outcome of one DR drill, the input of `restore_time` SLOs (written by `pgdbre drill`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrillOutcome {
    pub finished_at: SystemTime,
    /// Measured time to a usable restored server, in seconds; `None` when the drill failed to
    /// restore at all (a bad event whatever the target).
    pub restore_seconds: Option<f64>,
}

/// Good/total drill events among `drills` that finished within `window` before `now`.
pub fn drill_events(
    drills: &[DrillOutcome],
    target: &Target,
    window: Span,
    now: SystemTime,
) -> EventCounts {
    let since = now
        .checked_sub(std::time::Duration::from_secs(window.secs()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let in_window = drills
        .iter()
        .filter(|d| d.finished_at > since && d.finished_at <= now);
    let mut counts = EventCounts::default();
    for drill in in_window {
        counts.total += 1;
        if drill.restore_seconds.is_some_and(|s| target.is_good(s)) {
            counts.good += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const READ_P99: SliKind = SliKind::Latency {
        probe: Probe::Read,
        percentile: 99.0,
    };

    #[test]
    fn parses_kinds() {
        assert_eq!(SliKind::parse("read_latency_p99").unwrap(), READ_P99);
        assert_eq!(
            SliKind::parse("commit_latency_p999").unwrap(),
            SliKind::Latency {
                probe: Probe::Commit,
                percentile: 99.9
            }
        );
        assert_eq!(SliKind::parse("error_rate").unwrap(), SliKind::ErrorRate);
        assert_eq!(SliKind::parse("replica_lag").unwrap(), SliKind::ReplicaLag);
        assert_eq!(
            SliKind::parse("restore_time").unwrap(),
            SliKind::RestoreTime
        );
    }

    #[test]
    fn kinds_round_trip_through_display() {
        for text in [
            "read_latency_p99",
            "commit_latency_p999",
            "read_latency_p50",
            "error_rate",
        ] {
            assert_eq!(SliKind::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn rejects_bad_kinds() {
        let err = SliKind::parse("write_latency_p99").unwrap_err();
        assert!(err.contains("unknown SLI kind"), "{err}");
        assert!(SliKind::parse("read_latency")
            .unwrap_err()
            .contains("percentile"));
        assert!(SliKind::parse("read_latency_p9").is_err());
        assert!(SliKind::parse("read_latency_p00").is_err());
        assert!(SliKind::parse("read_latency_pxx").is_err());
    }

    #[test]
    fn parses_targets_with_units() {
        let t = Target::parse(READ_P99, "< 40").unwrap();
        assert_eq!((t.comparison, t.value), (Comparison::Below, 0.04));
        assert_eq!(Target::parse(READ_P99, "<=0.04s").unwrap().value, 0.04);
        assert_eq!(
            Target::parse(READ_P99, "< 40ms").unwrap().to_string(),
            "< 40 ms"
        );
        let lag = Target::parse(SliKind::ReplicaLag, "<= 5").unwrap();
        assert_eq!((lag.comparison, lag.value), (Comparison::AtMost, 5.0));
        assert_eq!(
            Target::parse(SliKind::RestoreTime, "< 10m").unwrap().value,
            600.0
        );
        assert_eq!(
            Target::parse(SliKind::ErrorRate, "< 0.1%").unwrap().value,
            0.1
        );
    }

    #[test]
    fn rejects_bad_targets() {
        let err = Target::parse(READ_P99, "< forty").unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        assert!(Target::parse(READ_P99, "40")
            .unwrap_err()
            .contains("not a target"));
        assert!(Target::parse(READ_P99, "> 40")
            .unwrap_err()
            .contains("upper bound"));
        assert!(Target::parse(READ_P99, "< 0")
            .unwrap_err()
            .contains("above zero"));
        assert!(Target::parse(READ_P99, "< 40%")
            .unwrap_err()
            .contains("unit"));
        assert!(Target::parse(SliKind::ErrorRate, "< 100").is_err());
        assert!(Target::parse(SliKind::ErrorRate, "< 5s").is_err());
    }

    #[test]
    fn default_objectives() {
        let t = Target::parse(READ_P99, "< 40").unwrap();
        assert_eq!(READ_P99.default_objective(&t), 99.0);
        let t = Target::parse(SliKind::ErrorRate, "< 0.1").unwrap();
        assert!((SliKind::ErrorRate.default_objective(&t) - 99.9).abs() < 1e-9);
        let t = Target::parse(SliKind::ReplicaLag, "<= 5").unwrap();
        assert_eq!(SliKind::ReplicaLag.default_objective(&t), 99.9);
    }

    #[test]
    fn comparison_decides_boundary() {
        let below = Target::parse(SliKind::RestoreTime, "< 600").unwrap();
        let at_most = Target::parse(SliKind::RestoreTime, "<= 600").unwrap();
        assert!(!below.is_good(600.0));
        assert!(at_most.is_good(600.0));
        assert!(below.is_good(599.9));
    }

    #[test]
    fn drills_are_events_in_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let day = |d: u64| now - Duration::from_secs(d * 86_400);
        let target = Target::parse(SliKind::RestoreTime, "< 600").unwrap();
        let drills = [
            DrillOutcome {
                finished_at: day(1),
                restore_seconds: Some(300.0),
            },
            DrillOutcome {
                finished_at: day(5),
                restore_seconds: Some(900.0),
            },
            DrillOutcome {
                finished_at: day(9),
                restore_seconds: None,
            },
            DrillOutcome {
                finished_at: day(40),
                restore_seconds: Some(100.0),
            },
        ];
        let counts = drill_events(&drills, &target, "30d".parse().unwrap(), now);
        assert_eq!(counts, EventCounts { good: 1, total: 3 });
        let none = drill_events(&[], &target, "30d".parse().unwrap(), now);
        assert_eq!(none.bad_ratio(), None);
    }
}
