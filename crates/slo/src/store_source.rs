//! The state store as an [`EventSource`]: how its per-minute probe and lag counts become the
//! good/total events of each SLI kind.
//!
//! Lives here rather than in `pgdbre-store` so the store stays a foundation that knows nothing
//! about SLOs: it sums counts, this file knows which counts an SLI needs. Any `Store` is a source,
//! so `status(&sqlite_store, &spec, now)` just works.

use crate::sli::{drill_events, Comparison, DrillOutcome, Probe};
use crate::spec::Spec;
use crate::status::{server_of, EventSource, Query, SliCounts};
use crate::{EventCounts, SliKind, SliceCounts, Span};
use pgdbre_store::{minute_of, Minute, Range, Store, StoreError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The minutes a window ending in minute `now` (inclusive) covers; the store keeps only the
/// `server` label of a selector.
fn range<'a>(spec: &'a Spec, window: Span, now: Minute) -> Range<'a> {
    let minutes = window.secs().div_ceil(60).max(1) as i64;
    Range {
        from: now - minutes + 1,
        to: now,
        server: server_of(spec),
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn window_ms(window: Span) -> i64 {
    i64::try_from(window.secs().saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl<T: Store + ?Sized> EventSource for T {
    type Error = StoreError;

    fn counts(&self, query: &Query<'_>) -> Result<SliCounts, StoreError> {
        let slo = query.slo;
        let now = minute_of(query.end);
        let range = range(query.spec, query.window, now);
        match slo.kind {
            SliKind::Latency { probe, .. } => {
                let totals = self.probe_totals(&range, probe.label(), Some(slo.target.value))?;
                Ok(SliCounts::Events(EventCounts {
                    good: totals.within.min(totals.attempts),
                    total: totals.attempts,
                }))
            }
            SliKind::ErrorRate => {
                let mut total = 0;
                let mut bad = 0;
                for probe in [Probe::Read, Probe::Commit] {
                    let totals = self.probe_totals(&range, probe.label(), None)?;
                    total += totals.attempts;
                    bad += totals.errors.min(totals.attempts);
                }
                Ok(SliCounts::Events(EventCounts {
                    good: total - bad,
                    total,
                }))
            }
            SliKind::ReplicaLag => {
                let minutes = self.lag_minutes(&range)?;
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
                Ok(SliCounts::Slices(SliceCounts { good, bad, missing }))
            }
            SliKind::RestoreTime => {
                // One event per drill that finished in the window (`pgdbre drill` records them);
                // a drill that never restored has no RTO and is bad whatever the target.
                let to = unix_ms(query.end);
                let from = to.saturating_sub(window_ms(query.window));
                let outcomes: Vec<DrillOutcome> = self
                    .drills(from, to)?
                    .iter()
                    .map(|drill| DrillOutcome {
                        finished_at: UNIX_EPOCH
                            + Duration::from_millis(drill.finished_unix_ms.max(0) as u64),
                        restore_seconds: drill.rto_seconds,
                    })
                    .collect();
                Ok(SliCounts::Events(drill_events(
                    &outcomes,
                    &slo.target,
                    query.window,
                    query.end,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::status::{status, SloStatus};
    use crate::{Evaluation, EventCounts, Spec};
    use pgdbre_store::{Batch, LagMinute, ProbeMinute, SqliteStore, Store};
    use std::time::{Duration, SystemTime};

    const SPEC: &str = "\
service: app
selector:
  server: db1
alerting:
  windows:
    - {severity: ticket, long: 1h, short: 5m, burn_rate: 1.5}
slos:
  - name: read
    sli: read_latency_p99
    target: \"< 40\"
    window: 30d
    min_events: 1
  - name: errors
    sli: error_rate
    target: \"< 50\"
    window: 30d
    min_events: 1
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
    min_events: 1
";

    fn at_minute(minute: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(minute as u64 * 60 + 30)
    }

    fn probe(server: &str, probe: &str, minute: i64, errors: u64, fast: u64) -> ProbeMinute {
        ProbeMinute {
            server: server.into(),
            probe: probe.into(),
            minute,
            attempts: 10,
            errors,
            within: vec![(0.04, fast), (0.1, 10 - errors)],
        }
    }

    fn lag(minute: i64, seconds: f64) -> LagMinute {
        LagMinute {
            server: "db1".into(),
            standby: "db1".into(),
            minute,
            max_lag_seconds: seconds,
        }
    }

    fn statuses(batch: &Batch, now: i64) -> Vec<SloStatus> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        store.record(batch, now).unwrap();
        let spec = Spec::parse(SPEC, "slo.yaml").unwrap();
        status(&store, &spec, at_minute(now)).unwrap()
    }

    #[test]
    fn counts_each_sli_kind_from_the_stored_minutes() {
        let batch = Batch {
            probes: vec![
                probe("db1", "read", 1000, 1, 7),
                probe("db1", "commit", 1000, 3, 9),
                // Another server: outside the selector.
                probe("db2", "read", 1000, 10, 0),
            ],
            // Minutes 996..=1000 (the 5m window): 999 is bad, 997 missing, 1000 not written yet
            // is not missing.
            lags: vec![lag(996, 1.0), lag(998, 5.0), lag(999, 6.0)],
        };
        let all = statuses(&batch, 1000);
        // Read latency: 7 of 10 read probes within 40 ms.
        assert_eq!(all[0].window.counts, EventCounts { good: 7, total: 10 });
        // Errors: read and commit together, 4 failed of 20.
        assert_eq!(
            all[1].window.counts,
            EventCounts {
                good: 16,
                total: 20
            }
        );
        assert!(all[1].window.evaluation.is_met());
        // Lag over the 5m burn window: 2 good minutes, 1 bad, minute 997 missing → unknown.
        let lag_status = &all[2].burn[0];
        assert_eq!(lag_status.counts, EventCounts { good: 2, total: 3 });
        assert_eq!(
            lag_status.unknown_reason().as_deref(),
            Some("1 of 4 time slices have no sample")
        );
    }

    #[test]
    fn an_empty_store_is_unknown_never_met() {
        for s in statuses(&Batch::default(), 1000) {
            assert!(
                matches!(s.window.evaluation, Evaluation::Unknown(_)),
                "{}: {:?}",
                s.slo.name,
                s.window
            );
        }
    }

    #[test]
    fn restore_time_counts_the_recorded_drills_in_the_window() {
        use pgdbre_store::DrillRecord;
        let spec = Spec::parse(
            "service: app\nslos:\n  - name: restore\n    sli: restore_time\n    target: \"< 600\"\n    window: 30d\n",
            "slo.yaml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let now_ms: i64 = 100 * 86_400_000;
        let drill = |days_ago: i64, rto: Option<f64>| DrillRecord {
            finished_unix_ms: now_ms - days_ago * 86_400_000,
            rto_seconds: rto,
            verdict: "pass".into(),
            ..DrillRecord::default()
        };
        // Good, too slow, failed to restore, and one outside the 30-day window.
        for record in [
            drill(1, Some(120.0)),
            drill(2, Some(900.0)),
            drill(3, None),
            drill(40, Some(10.0)),
        ] {
            store.record_drill(&record).unwrap();
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms as u64);
        let all = status(&store, &spec, now).unwrap();
        assert_eq!(all[0].window.counts, EventCounts { good: 1, total: 3 });
        assert_eq!(all[0].window.no_source, None);
    }
}
