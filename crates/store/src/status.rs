//! SLO status from the store: the counts of an SLI over a window, evaluated with
//! `pgdbre_slo::budget` (so "no data is never met" holds here too), and the burn policies of a
//! spec (what `pgdbre gate` decides on).

use crate::{Minute, Range, Store, StoreError};
use pgdbre_slo::budget::{evaluate, evaluate_slices, Evaluation, EventCounts, SliceCounts};
use pgdbre_slo::sli::{Comparison, Probe};
use pgdbre_slo::{metrics, BurnPolicy, SliKind, Slo, Span, Spec};

/// The windows `pgdbre slo status` shows burn rates over, in seconds: 5m, 30m, 1h, 6h, 1d, 3d.
pub const BURN_WINDOW_SECS: [u64; 6] = [300, 1_800, 3_600, 21_600, 86_400, 259_200];

/// [`BURN_WINDOW_SECS`] as spans.
pub fn burn_windows() -> impl Iterator<Item = Span> {
    BURN_WINDOW_SECS
        .iter()
        .filter_map(|secs| Span::from_secs(*secs))
}

/// One SLO evaluated over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStatus {
    pub window: Span,
    pub evaluation: Evaluation,
    /// The counts behind it (also when too few to evaluate).
    pub counts: EventCounts,
    /// Why there are no counts at all, when the store does not record this SLI.
    pub no_source: Option<&'static str>,
}

impl WindowStatus {
    /// `unknown (reason)` or the number, for text output.
    pub fn unknown_reason(&self) -> Option<String> {
        match (&self.evaluation, self.no_source) {
            (_, Some(why)) => Some(why.to_string()),
            (Evaluation::Unknown(reason), None) => Some(reason.to_string()),
            (Evaluation::Known(_), None) => None,
        }
    }
}

/// The server a spec selects (`selector: {server: …}`), if any; the store keeps no other labels.
pub fn server_of(spec: &Spec) -> Option<&str> {
    spec.selector
        .iter()
        .find(|(label, _)| label == metrics::SERVER_LABEL)
        .map(|(_, value)| value.as_str())
}

/// The minutes a window ending in minute `now` (inclusive) covers.
fn range<'a>(window: Span, now: Minute, server: Option<&'a str>) -> Range<'a> {
    let minutes = window.secs().div_ceil(60).max(1) as i64;
    Range {
        from: now - minutes + 1,
        to: now,
        server,
    }
}

const NO_DRILLS: &str = "no DR drill results: the state store does not record drills yet";

/// Evaluates `slo` over `window` ending in minute `now`.
pub fn evaluate_window(
    store: &dyn Store,
    server: Option<&str>,
    slo: &Slo,
    window: Span,
    now: Minute,
) -> Result<WindowStatus, StoreError> {
    let range = range(window, now, server);
    let events = |counts: EventCounts| WindowStatus {
        window,
        evaluation: evaluate(slo.objective, Some(counts), slo.min_events),
        counts,
        no_source: None,
    };
    match slo.kind {
        SliKind::Latency { probe, .. } => {
            let totals = store.probe_totals(&range, probe.label(), Some(slo.target.value))?;
            let good = totals.within.min(totals.attempts);
            Ok(events(EventCounts {
                good,
                total: totals.attempts,
            }))
        }
        SliKind::ErrorRate => {
            let mut total = 0;
            let mut bad = 0;
            for probe in [Probe::Read, Probe::Commit] {
                let totals = store.probe_totals(&range, probe.label(), None)?;
                total += totals.attempts;
                bad += totals.errors.min(totals.attempts);
            }
            Ok(events(EventCounts {
                good: total - bad,
                total,
            }))
        }
        SliKind::ReplicaLag => {
            let minutes = store.lag_minutes(&range)?;
            let good_minute = |lag: f64| match slo.target.comparison {
                Comparison::Below => lag < slo.target.value,
                Comparison::AtMost => lag <= slo.target.value,
            };
            let good = minutes.iter().filter(|(_, lag)| good_minute(*lag)).count() as u64;
            let bad = minutes.len() as u64 - good;
            let expected = (range.to - range.from + 1) as u64;
            // The current minute may not be written yet: only a gap before it is missing.
            let current_written = minutes.last().is_some_and(|(m, _)| *m == now);
            let missing = expected - minutes.len() as u64 - u64::from(!current_written);
            let slices = SliceCounts { good, bad, missing };
            Ok(WindowStatus {
                window,
                evaluation: evaluate_slices(slo.objective, slices, slo.min_events),
                counts: EventCounts {
                    good,
                    total: good + bad,
                },
                no_source: None,
            })
        }
        SliKind::RestoreTime => Ok(WindowStatus {
            window,
            evaluation: evaluate(slo.objective, None, slo.min_events),
            counts: EventCounts::default(),
            no_source: Some(NO_DRILLS),
        }),
    }
}

/// An SLO over its own window and the burn windows.
#[derive(Debug, Clone)]
pub struct SloStatus {
    pub slo: Slo,
    pub window: WindowStatus,
    pub burn: Vec<WindowStatus>,
}

/// Every SLO of a spec at minute `now`.
pub fn status(store: &dyn Store, spec: &Spec, now: Minute) -> Result<Vec<SloStatus>, StoreError> {
    let server = server_of(spec);
    spec.slos
        .iter()
        .map(|slo| {
            let window = evaluate_window(store, server, slo, slo.window, now)?;
            let burn = burn_windows()
                .map(|w| evaluate_window(store, server, slo, w, now))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SloStatus {
                slo: slo.clone(),
                window,
                burn,
            })
        })
        .collect()
}

/// One burn policy applied to one SLO.
#[derive(Debug, Clone)]
pub struct PolicyCheck {
    /// Index of the policy in `burn_policies`.
    pub index: usize,
    pub policy: BurnPolicy,
    pub slo: String,
    pub status: WindowStatus,
    /// Known and above the threshold.
    pub triggered: bool,
}

/// Every (policy, SLO) pair of the spec, evaluated at minute `now`.
pub fn check_policies(
    store: &dyn Store,
    spec: &Spec,
    now: Minute,
) -> Result<Vec<PolicyCheck>, StoreError> {
    let server = server_of(spec);
    let mut checks = Vec::new();
    for (index, policy) in spec.burn_policies.iter().enumerate() {
        for slo in spec.slos.iter().filter(|s| policy.applies_to(&s.name)) {
            let status = evaluate_window(store, server, slo, policy.over, now)?;
            let triggered = status
                .evaluation
                .burn_rate()
                .is_some_and(|rate| policy.triggers(rate));
            checks.push(PolicyCheck {
                index,
                policy: policy.clone(),
                slo: slo.name.clone(),
                status,
                triggered,
            });
        }
    }
    Ok(checks)
}
