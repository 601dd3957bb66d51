//! Prometheus as an [`EventSource`]: the count queries of `pgdbre_slo::rules::count_exprs`,
//! evaluated at the query's end time.
//!
//! `increase()` extrapolates, so counts come back fractional: they are rounded to whole events.
//! A total with no series at all is zero events, which the SLO engine reports as unknown
//! ("no data is never met"); a missing good-event series (no probe ever fast enough to reach the
//! bucket) is zero good events.

use crate::client::{Prometheus, PrometheusError};
use pgdbre_slo::rules::{count_exprs, CountExprs, Counted};
use pgdbre_slo::status::{EventSource, Query, SliCounts};
use pgdbre_slo::{EventCounts, SliceCounts};

const NO_DRILLS: &str =
    "no DR drill results: restore-time SLOs count drills, which Prometheus does not record";

fn whole(value: Option<f64>) -> u64 {
    value.map_or(0, |v| v.max(0.0).round() as u64)
}

impl EventSource for Prometheus {
    type Error = PrometheusError;

    fn counts(&self, query: &Query<'_>) -> Result<SliCounts, PrometheusError> {
        let Some(exprs) = count_exprs(query.spec, query.slo, query.window) else {
            return Ok(SliCounts::NoSource(NO_DRILLS));
        };
        match exprs {
            CountExprs::Events {
                counted,
                kind,
                total,
            } => {
                let total = whole(self.query(&total, query.end)?);
                if total == 0 {
                    return Ok(SliCounts::Events(EventCounts::default()));
                }
                // Rounding both sides separately can push the counted side past the total.
                let counted = whole(self.query(&counted, query.end)?).min(total);
                let good = match kind {
                    Counted::Good => counted,
                    Counted::Bad => total - counted,
                };
                Ok(SliCounts::Events(EventCounts { good, total }))
            }
            CountExprs::Minutes { bad, observed } => {
                let observed = whole(self.query(&observed, query.end)?);
                let bad = whole(self.query(&bad, query.end)?).min(observed);
                // Minutes in the window with no sample at all are missing, never good.
                let expected = query.window.secs().div_ceil(60);
                Ok(SliCounts::Slices(SliceCounts {
                    good: observed - bad,
                    bad,
                    missing: expected.saturating_sub(observed),
                }))
            }
        }
    }
}
