//! SLO status: every SLO of a spec evaluated over its own window and the burn windows, and the
//! spec's burn policies checked (what `pgdbre slo status`, `pgdbre gate` and the dashboard show).
//!
//! The counts come from an [`EventSource`]: the state store (any `pgdbre_store::Store`, see
//! `store_source.rs`) or a Prometheus that scrapes `pgdbre serve` (`pgdbre-prometheus`). This
//! module decides, the sources only count, so "no data is never met" holds for every source.
//! No clock here: callers pass the evaluation time.

use crate::budget::{evaluate, evaluate_slices, Evaluation, EventCounts, SliceCounts};
use crate::duration::Span;
use crate::metrics;
use crate::spec::{BurnPolicy, Slo, Spec};
use std::time::SystemTime;

/// The windows `pgdbre slo status` shows burn rates over, in seconds: 5m, 30m, 1h, 6h, 1d, 3d.
pub const BURN_WINDOW_SECS: [u64; 6] = [300, 1_800, 3_600, 21_600, 86_400, 259_200];

/// [`BURN_WINDOW_SECS`] as spans.
pub fn burn_windows() -> impl Iterator<Item = Span> {
    BURN_WINDOW_SECS
        .iter()
        .filter_map(|secs| Span::from_secs(*secs))
}

/// One question to an [`EventSource`]: the events of `slo` (of `spec`, whose selector says which
/// series or server) over the `window` that ends at `end`.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub spec: &'a Spec,
    pub slo: &'a Slo,
    pub window: Span,
    pub end: SystemTime,
}

/// What a source counted for one [`Query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliCounts {
    /// Counted events (probes); zero total means no data.
    Events(EventCounts),
    /// One-minute time slices (replica lag), with the minutes that have no sample.
    Slices(SliceCounts),
    /// The source does not record this SLI at all; why, for the output.
    NoSource(&'static str),
}

/// Where the good/total events of an SLI come from.
///
/// Implementations count and never judge: zero events, missing minutes or [`SliCounts::NoSource`]
/// become `unknown` in [`evaluate_window`], never healthy.
pub trait EventSource {
    /// Why the source could not answer (unreachable, locked, a query error).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The counts of `query.slo` over `query.window` ending at `query.end`.
    fn counts(&self, query: &Query<'_>) -> Result<SliCounts, Self::Error>;
}

/// One SLO evaluated over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStatus {
    pub window: Span,
    pub evaluation: Evaluation,
    /// The counts behind it (also when too few to evaluate); slices count as events.
    pub counts: EventCounts,
    /// Why there are no counts at all, when the source does not record this SLI.
    pub no_source: Option<&'static str>,
}

impl WindowStatus {
    /// Why the status is unknown, or `None` when it is known (met or not).
    pub fn unknown_reason(&self) -> Option<String> {
        match (&self.evaluation, self.no_source) {
            (_, Some(why)) => Some(why.to_string()),
            (Evaluation::Unknown(reason), None) => Some(reason.to_string()),
            (Evaluation::Known(_), None) => None,
        }
    }
}

/// The server a spec selects (`selector: {server: …}`), if any.
pub fn server_of(spec: &Spec) -> Option<&str> {
    spec.selector
        .iter()
        .find(|(label, _)| label == metrics::SERVER_LABEL)
        .map(|(_, value)| value.as_str())
}

/// Evaluates `slo` of `spec` over `window` ending at `end`: one source query.
pub fn evaluate_window<S: EventSource + ?Sized>(
    source: &S,
    spec: &Spec,
    slo: &Slo,
    window: Span,
    end: SystemTime,
) -> Result<WindowStatus, S::Error> {
    let query = Query {
        spec,
        slo,
        window,
        end,
    };
    let status = match source.counts(&query)? {
        SliCounts::Events(counts) => WindowStatus {
            window,
            evaluation: evaluate(slo.objective, Some(counts), slo.min_events),
            counts,
            no_source: None,
        },
        SliCounts::Slices(slices) => WindowStatus {
            window,
            evaluation: evaluate_slices(slo.objective, slices, slo.min_events),
            counts: EventCounts {
                good: slices.good,
                total: slices.good + slices.bad,
            },
            no_source: None,
        },
        SliCounts::NoSource(why) => WindowStatus {
            window,
            evaluation: evaluate(slo.objective, None, slo.min_events),
            counts: EventCounts::default(),
            no_source: Some(why),
        },
    };
    Ok(status)
}

/// An SLO over its own window and the burn windows.
#[derive(Debug, Clone)]
pub struct SloStatus {
    pub slo: Slo,
    pub window: WindowStatus,
    /// One per [`burn_windows`], shortest first.
    pub burn: Vec<WindowStatus>,
}

/// Every SLO of `spec` as of `now`: its own window and the [`burn_windows`].
///
/// Costs one source query per SLO and window (7 per SLO) and keeps no state, so a dashboard can
/// call it for a series of `now`s to draw burn rates over time.
pub fn status<S: EventSource + ?Sized>(
    source: &S,
    spec: &Spec,
    now: SystemTime,
) -> Result<Vec<SloStatus>, S::Error> {
    spec.slos
        .iter()
        .map(|slo| {
            let window = evaluate_window(source, spec, slo, slo.window, now)?;
            let burn = burn_windows()
                .map(|w| evaluate_window(source, spec, slo, w, now))
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

/// Every (policy, SLO) pair of `spec`, evaluated over the policy's window as of `now`.
pub fn check_policies<S: EventSource + ?Sized>(
    source: &S,
    spec: &Spec,
    now: SystemTime,
) -> Result<Vec<PolicyCheck>, S::Error> {
    let mut checks = Vec::new();
    for (index, policy) in spec.burn_policies.iter().enumerate() {
        for slo in spec.slos.iter().filter(|s| policy.applies_to(&s.name)) {
            let status = evaluate_window(source, spec, slo, policy.over, now)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::UnknownReason;
    use crate::SliKind;
    use std::convert::Infallible;

    const SPEC: &str = "\
service: app
selector:
  server: db1:5432/app
slos:
  - name: errors
    sli: error_rate
    target: \"< 1\"
    window: 30d
    min_events: 10
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
    min_events: 1
  - name: restore
    sli: restore_time
    target: \"< 600\"
    window: 90d
burn_policies:
  - if_burn_rate: \"> 2x\"
    over: 1h
    action: freeze-deploys
";

    /// Fixed answers per SLI kind: 1 error in 100 probes in every window.
    struct Fixed;

    impl EventSource for Fixed {
        type Error = Infallible;

        fn counts(&self, query: &Query<'_>) -> Result<SliCounts, Infallible> {
            Ok(match query.slo.kind {
                SliKind::ErrorRate if query.window == Span::HOUR => {
                    SliCounts::Events(EventCounts {
                        good: 90,
                        total: 100,
                    })
                }
                SliKind::ErrorRate => SliCounts::Events(EventCounts {
                    good: 99,
                    total: 100,
                }),
                SliKind::ReplicaLag => SliCounts::Slices(SliceCounts {
                    good: 10,
                    bad: 0,
                    missing: 2,
                }),
                _ => SliCounts::NoSource("no drills"),
            })
        }
    }

    fn spec() -> Spec {
        Spec::parse(SPEC, "slo.yaml").unwrap()
    }

    #[test]
    fn evaluates_each_slo_over_its_window_and_the_burn_windows() {
        let spec = spec();
        let statuses = status(&Fixed, &spec, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(statuses.len(), 3);
        let errors = &statuses[0];
        assert_eq!(errors.burn.len(), BURN_WINDOW_SECS.len());
        // 1 % bad against a 1 % budget: burning at exactly 1x, met.
        assert!(errors.window.evaluation.is_met());
        assert_eq!(errors.burn[0].evaluation.burn_rate(), Some(1.0));
        // Missing minutes are unknown, never met; the observed slices are still reported.
        let lag = &statuses[1].window;
        assert_eq!(
            lag.evaluation,
            Evaluation::Unknown(UnknownReason::MissingSamples {
                missing: 2,
                expected: 12
            })
        );
        assert_eq!(
            lag.counts,
            EventCounts {
                good: 10,
                total: 10
            }
        );
        let restore = &statuses[2].window;
        assert_eq!(restore.unknown_reason().as_deref(), Some("no drills"));
        assert!(!restore.evaluation.is_met());
    }

    #[test]
    fn policies_trigger_on_known_burn_above_threshold_only() {
        let spec = spec();
        let checks = check_policies(&Fixed, &spec, SystemTime::UNIX_EPOCH).unwrap();
        // One policy for all three SLOs.
        assert_eq!(checks.len(), 3);
        let errors = &checks[0];
        assert_eq!(errors.slo, "errors");
        // 10 % bad over the policy's hour against a 1 % budget: 10x > 2x.
        assert!(errors.triggered);
        assert!(!checks[1].triggered, "unknown lag must not trigger");
        assert!(!checks[2].triggered);
        assert_eq!(server_of(&spec), Some("db1:5432/app"));
    }
}
