//! Error-budget and burn-rate arithmetic: pure functions over counts, no I/O.
//!
//! * error budget = (1 − objective) × window (as time) or × total events (as events);
//! * burn rate = observed bad ratio / (1 − objective): 1.0 spends the budget exactly over the
//!   window, 14.4 spends a 30-day budget in just over two days;
//! * "no data is never met": no events, too few events, or missing samples make an evaluation
//!   [`Evaluation::Unknown`], never healthy.

use crate::duration::Span;
use std::fmt;

/// The share of good events (or good time slices) promised, in percent, strictly between 0 and 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Objective(f64);

impl Objective {
    /// `percent` must be finite and strictly between 0 and 100.
    pub fn new(percent: f64) -> Option<Objective> {
        (percent.is_finite() && percent > 0.0 && percent < 100.0).then_some(Objective(percent))
    }

    pub fn percent(self) -> f64 {
        self.0
    }

    /// The allowed bad ratio, 1 − objective (0.001 for 99.9 %).
    ///
    /// Computed as (100 − p) / 100 and rounded to 12 significant digits so that 99.9 gives
    /// exactly the 0.001 a reader expects in generated thresholds.
    pub fn budget_ratio(self) -> f64 {
        round_significant((100.0 - self.0) / 100.0)
    }

    /// The highest burn rate possible: every event bad. A threshold at or above it never triggers.
    pub fn max_burn_rate(self) -> f64 {
        1.0 / self.budget_ratio()
    }

    /// Error budget of a window as time: (1 − objective) × window, in seconds.
    pub fn budget_time(self, window: Span) -> f64 {
        self.budget_ratio() * window.as_secs_f64()
    }

    /// Error budget as a number of bad events allowed among `total` events.
    pub fn budget_events(self, total: u64) -> f64 {
        self.budget_ratio() * total as f64
    }

    /// The bad-ratio threshold that corresponds to burning at `burn_rate`.
    pub fn bad_ratio_at(self, burn_rate: f64) -> f64 {
        round_significant(burn_rate * self.budget_ratio())
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", format_number(self.0))
    }
}

/// Good and total events (or time slices) over some window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventCounts {
    pub good: u64,
    pub total: u64,
}

impl EventCounts {
    /// `None` when `good > total` (inconsistent input is not silently clamped).
    pub fn new(good: u64, total: u64) -> Option<EventCounts> {
        (good <= total).then_some(EventCounts { good, total })
    }

    pub fn bad(self) -> u64 {
        self.total - self.good
    }

    /// Bad / total; `None` without events.
    pub fn bad_ratio(self) -> Option<f64> {
        (self.total > 0).then(|| self.bad() as f64 / self.total as f64)
    }
}

/// Time-slice counts (e.g. minutes) for time-slice SLIs such as replica lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SliceCounts {
    pub good: u64,
    pub bad: u64,
    /// Slices in the window for which there is no sample at all.
    pub missing: u64,
}

/// Why an evaluation cannot say whether the SLO is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownReason {
    /// No events at all in the window.
    NoData,
    /// Fewer events than the SLO's `min_events`: one bad event among three is not a 33 % burn.
    TooFewEvents { seen: u64, required: u64 },
    /// Some time slices of the window have no sample.
    MissingSamples { missing: u64, expected: u64 },
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownReason::NoData => write!(f, "no data in the window"),
            UnknownReason::TooFewEvents { seen, required } => {
                write!(f, "{seen} events, fewer than the {required} needed")
            }
            UnknownReason::MissingSamples { missing, expected } => {
                write!(f, "{missing} of {expected} time slices have no sample")
            }
        }
    }
}

/// Budget accounting of one window with enough data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetReport {
    pub counts: EventCounts,
    /// Bad events the objective allows over these counts.
    pub allowed_bad: f64,
    /// Share of the budget spent: bad / allowed (above 1.0 when overspent).
    pub spent: f64,
    /// 1 − spent, negative when overspent.
    pub remaining: f64,
    /// Bad ratio / (1 − objective).
    pub burn_rate: f64,
    pub met: bool,
}

/// The outcome of evaluating an SLO over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evaluation {
    Unknown(UnknownReason),
    Known(BudgetReport),
}

impl Evaluation {
    /// True only for a known evaluation within budget: unknown is never "met".
    pub fn is_met(&self) -> bool {
        matches!(self, Evaluation::Known(report) if report.met)
    }

    /// The burn rate, when known.
    pub fn burn_rate(&self) -> Option<f64> {
        match self {
            Evaluation::Known(report) => Some(report.burn_rate),
            Evaluation::Unknown(_) => None,
        }
    }
}

/// Burn rate for a bad ratio: ratio / (1 − objective).
pub fn burn_rate(bad_ratio: f64, objective: Objective) -> f64 {
    bad_ratio / objective.budget_ratio()
}

/// Evaluates event counts (`None`: the samples needed to count are missing) against an objective.
pub fn evaluate(objective: Objective, counts: Option<EventCounts>, min_events: u64) -> Evaluation {
    let Some(counts) = counts else {
        return Evaluation::Unknown(UnknownReason::NoData);
    };
    if counts.total == 0 {
        return Evaluation::Unknown(UnknownReason::NoData);
    }
    if counts.total < min_events {
        return Evaluation::Unknown(UnknownReason::TooFewEvents {
            seen: counts.total,
            required: min_events,
        });
    }
    let allowed_bad = objective.budget_events(counts.total);
    let bad = counts.bad() as f64;
    let spent = bad / allowed_bad;
    let bad_ratio = bad / counts.total as f64;
    Evaluation::Known(BudgetReport {
        counts,
        allowed_bad,
        spent,
        remaining: 1.0 - spent,
        burn_rate: burn_rate(bad_ratio, objective),
        // Met means the good share reaches the objective; compared in percent to avoid
        // the rounding of (1 − objective) deciding a boundary case.
        met: counts.good as f64 * 100.0 >= objective.percent() * counts.total as f64,
    })
}

/// Evaluates time slices: any missing slice makes the window unknown (a minute nobody measured
/// is not a good minute), otherwise the slices are events.
pub fn evaluate_slices(objective: Objective, slices: SliceCounts, min_events: u64) -> Evaluation {
    let observed = slices.good + slices.bad;
    if observed == 0 {
        return Evaluation::Unknown(UnknownReason::NoData);
    }
    if slices.missing > 0 {
        return Evaluation::Unknown(UnknownReason::MissingSamples {
            missing: slices.missing,
            expected: observed + slices.missing,
        });
    }
    evaluate(
        objective,
        EventCounts::new(slices.good, observed),
        min_events,
    )
}

/// Rounds to 12 significant digits, removing binary noise such as 0.0009999999999999432.
pub fn round_significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 12 - x.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// A number without trailing zeros or binary noise: `99.9`, `0.0144`, `14.4`, `3`.
pub fn format_number(x: f64) -> String {
    let rounded = round_significant(x);
    let text = format!("{rounded}");
    if text.contains('e') {
        format!("{rounded:.12}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(p: f64) -> Objective {
        Objective::new(p).unwrap()
    }

    fn known(e: Evaluation) -> BudgetReport {
        match e {
            Evaluation::Known(r) => r,
            Evaluation::Unknown(reason) => panic!("unknown: {reason}"),
        }
    }

    #[test]
    fn objective_bounds_are_exclusive() {
        for bad in [0.0, 100.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
            assert!(Objective::new(bad).is_none(), "{bad}");
        }
        assert!(Objective::new(0.001).is_some());
        assert!(Objective::new(99.999).is_some());
    }

    #[test]
    fn budget_ratio_is_clean() {
        assert_eq!(objective(99.9).budget_ratio(), 0.001);
        assert_eq!(objective(99.0).budget_ratio(), 0.01);
        assert_eq!(objective(99.95).budget_ratio(), 0.0005);
        assert_eq!(objective(99.9).bad_ratio_at(14.4), 0.0144);
        assert_eq!(objective(99.0).max_burn_rate(), 100.0);
    }

    #[test]
    fn budget_as_time() {
        let month: Span = "30d".parse().unwrap();
        // 0.1 % of 30 days is 43 minutes 12 seconds.
        assert!((objective(99.9).budget_time(month) - 2_592.0).abs() < 1e-6);
        assert!((objective(99.0).budget_time(month) - 25_920.0).abs() < 1e-6);
    }

    #[test]
    fn budget_as_events() {
        assert!((objective(99.9).budget_events(1_000_000) - 1_000.0).abs() < 1e-9);
        assert_eq!(objective(50.0).budget_events(0), 0.0);
    }

    #[test]
    fn burn_rate_is_ratio_over_budget() {
        assert!((burn_rate(0.0144, objective(99.9)) - 14.4).abs() < 1e-9);
        assert!((burn_rate(0.001, objective(99.9)) - 1.0).abs() < 1e-9);
        assert_eq!(burn_rate(0.0, objective(99.9)), 0.0);
        assert!((burn_rate(1.0, objective(99.0)) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn spent_and_remaining_from_counts() {
        let r = known(evaluate(
            objective(99.0),
            EventCounts::new(9_950, 10_000),
            100,
        ));
        assert!((r.allowed_bad - 100.0).abs() < 1e-9);
        assert!((r.spent - 0.5).abs() < 1e-9);
        assert!((r.remaining - 0.5).abs() < 1e-9);
        assert!((r.burn_rate - 0.5).abs() < 1e-9);
        assert!(r.met);
    }

    #[test]
    fn overspent_budget_is_negative_remaining_and_not_met() {
        let r = known(evaluate(
            objective(99.0),
            EventCounts::new(9_700, 10_000),
            100,
        ));
        assert!((r.spent - 3.0).abs() < 1e-9);
        assert!((r.remaining + 2.0).abs() < 1e-9);
        assert!(!r.met);
    }

    #[test]
    fn exactly_at_objective_is_met() {
        let r = known(evaluate(objective(99.9), EventCounts::new(999, 1_000), 1));
        assert!(r.met);
        assert!((r.spent - 1.0).abs() < 1e-9);
    }

    #[test]
    fn no_data_is_never_met() {
        let e = evaluate(objective(99.0), None, 1);
        assert_eq!(e, Evaluation::Unknown(UnknownReason::NoData));
        assert!(!e.is_met());
        let e = evaluate(objective(99.0), EventCounts::new(0, 0), 0);
        assert_eq!(e, Evaluation::Unknown(UnknownReason::NoData));
        assert_eq!(e.burn_rate(), None);
    }

    #[test]
    fn too_few_events_is_unknown() {
        let e = evaluate(objective(99.0), EventCounts::new(2, 3), 100);
        assert_eq!(
            e,
            Evaluation::Unknown(UnknownReason::TooFewEvents {
                seen: 3,
                required: 100
            })
        );
        assert!(!e.is_met());
        // At the minimum it counts.
        assert!(evaluate(objective(99.0), EventCounts::new(100, 100), 100).is_met());
    }

    #[test]
    fn inconsistent_counts_are_rejected() {
        assert_eq!(EventCounts::new(5, 4), None);
        assert_eq!(EventCounts::new(4, 5).unwrap().bad(), 1);
        assert_eq!(EventCounts::default().bad_ratio(), None);
    }

    #[test]
    fn slices_with_gaps_are_unknown() {
        let o = objective(99.9);
        let e = evaluate_slices(
            o,
            SliceCounts {
                good: 100,
                bad: 0,
                missing: 1,
            },
            1,
        );
        assert_eq!(
            e,
            Evaluation::Unknown(UnknownReason::MissingSamples {
                missing: 1,
                expected: 101
            })
        );
        let e = evaluate_slices(
            o,
            SliceCounts {
                good: 0,
                bad: 0,
                missing: 60,
            },
            1,
        );
        assert_eq!(e, Evaluation::Unknown(UnknownReason::NoData));
        let r = known(evaluate_slices(
            o,
            SliceCounts {
                good: 43_199,
                bad: 1,
                missing: 0,
            },
            10,
        ));
        assert!(r.met);
        assert!((r.counts.total as f64 - 43_200.0).abs() < 1e-9);
    }

    #[test]
    fn numbers_render_without_noise() {
        assert_eq!(format_number(99.9), "99.9");
        assert_eq!(format_number(100.0 - 99.9), "0.1");
        assert_eq!(format_number(14.4 * 0.001), "0.0144");
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.00001), "0.00001");
        assert_eq!(objective(99.95).to_string(), "99.95%");
    }
}
