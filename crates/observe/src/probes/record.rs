//! Recording probe outcomes into the state store (`pgdbre serve --store`).
//!
//! Each worker aggregates its outcomes per minute in memory ([`Pending`]) and writes them, one
//! transaction per flush, when a minute is complete or every [`Recorder::flush_every`]. The
//! store adds to a minute's counts, so partial flushes of one minute sum up. A failed write keeps
//! the counts pending for the next flush (and logs once); nothing is dropped but counts older
//! than the store's retention.

use super::{Failure, Probe};
use pgdbre_slo::metrics::PROBE_DURATION_BUCKETS;
use pgdbre_store::{minute_of, Batch, LagMinute, Minute, ProbeMinute, Store};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A shared handle on the state store the probes of every server write to.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<Mutex<Box<dyn Store>>>,
    /// The longest time counts of the current minute stay unwritten.
    pub flush_every: Duration,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("flush_every", &self.flush_every)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(store: Box<dyn Store>) -> Recorder {
        Recorder {
            store: Arc::new(Mutex::new(store)),
            flush_every: Duration::from_secs(5),
        }
    }

    /// Writes what is pending when a minute is complete or `flush_every` has passed.
    pub(super) async fn flush(&self, server: &str, pending: &mut Pending) {
        let now = SystemTime::now();
        let minute = minute_of(now);
        if pending.is_empty() {
            return;
        }
        let minute_done = pending.oldest_minute().is_some_and(|m| m < minute);
        let due = pending
            .last_flush
            .is_none_or(|at| at.elapsed() >= self.flush_every);
        if !minute_done && !due {
            return;
        }
        pending.drop_older_than(minute - i64::from(pgdbre_store::DEFAULT_RETENTION_DAYS) * 1440);
        let batch = pending.batch(server);
        let store = Arc::clone(&self.store);
        let written = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            store.record(&batch, minute).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the store writer failed: {e}")));
        pending.last_flush = Some(Instant::now());
        match written {
            Ok(()) => {
                pending.clear();
                if pending.last_error.take().is_some() {
                    tracing::info!(target_name = %server, "probe results are written to the state store again");
                }
            }
            Err(message) => {
                if pending.last_error.as_deref() != Some(&message) {
                    tracing::warn!(target_name = %server, "cannot record probe results (kept in memory, retried): {message}");
                    pending.last_error = Some(message);
                }
            }
        }
    }
}

/// Counts of one probe in one minute.
#[derive(Debug, Default, Clone)]
struct Counts {
    attempts: u64,
    errors: u64,
    within: [u64; PROBE_DURATION_BUCKETS.len()],
}

/// What a worker measured and has not written yet.
#[derive(Debug, Default)]
pub(super) struct Pending {
    probes: BTreeMap<(Minute, Probe), Counts>,
    lags: BTreeMap<Minute, f64>,
    last_flush: Option<Instant>,
    last_error: Option<String>,
}

impl Pending {
    pub(super) fn add(
        &mut self,
        probe: Probe,
        outcome: &Result<Duration, Failure>,
        lag: Option<f64>,
    ) {
        let minute = minute_of(SystemTime::now());
        let counts = self.probes.entry((minute, probe)).or_default();
        counts.attempts += 1;
        match outcome {
            Ok(took) => {
                let seconds = took.as_secs_f64();
                for (bound, count) in PROBE_DURATION_BUCKETS.iter().zip(&mut counts.within) {
                    if seconds <= *bound {
                        *count += 1;
                    }
                }
            }
            Err(_) => counts.errors += 1,
        }
        if let Some(lag) = lag {
            let max = self.lags.entry(minute).or_insert(lag);
            *max = max.max(lag);
        }
    }

    fn is_empty(&self) -> bool {
        self.probes.is_empty() && self.lags.is_empty()
    }

    fn oldest_minute(&self) -> Option<Minute> {
        let probe = self.probes.keys().next().map(|(m, _)| *m);
        let lag = self.lags.keys().next().copied();
        probe.into_iter().chain(lag).min()
    }

    fn drop_older_than(&mut self, cutoff: Minute) {
        self.probes.retain(|(m, _), _| *m >= cutoff);
        self.lags.retain(|m, _| *m >= cutoff);
    }

    fn clear(&mut self) {
        self.probes.clear();
        self.lags.clear();
    }

    fn batch(&self, server: &str) -> Batch {
        Batch {
            probes: self
                .probes
                .iter()
                .map(|((minute, probe), counts)| ProbeMinute {
                    server: server.to_owned(),
                    probe: probe.label().to_owned(),
                    minute: *minute,
                    attempts: counts.attempts,
                    errors: counts.errors,
                    within: PROBE_DURATION_BUCKETS
                        .iter()
                        .copied()
                        .zip(counts.within.iter().copied())
                        .collect(),
                })
                .collect(),
            lags: self
                .lags
                .iter()
                .map(|(minute, lag)| LagMinute {
                    server: server.to_owned(),
                    standby: server.to_owned(),
                    minute: *minute,
                    max_lag_seconds: *lag,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_cumulative_buckets_per_minute() {
        let mut pending = Pending::default();
        pending.add(Probe::Read, &Ok(Duration::from_millis(3)), Some(0.5));
        pending.add(Probe::Read, &Ok(Duration::from_millis(30)), Some(2.0));
        pending.add(Probe::Read, &Err(Failure::new("timeout", "slow")), None);
        let batch = pending.batch("db:5432/app");
        // The calls may straddle a minute boundary: sum over the batch.
        let attempts: u64 = batch.probes.iter().map(|p| p.attempts).sum();
        let errors: u64 = batch.probes.iter().map(|p| p.errors).sum();
        let within = |bound: f64| -> u64 {
            batch
                .probes
                .iter()
                .flat_map(|p| p.within.iter())
                .filter(|(b, _)| *b == bound)
                .map(|(_, c)| c)
                .sum()
        };
        assert_eq!((attempts, errors), (3, 1));
        assert_eq!(within(0.001), 0);
        assert_eq!(within(0.005), 1);
        assert_eq!(within(0.04), 2);
        assert_eq!(within(5.0), 2);
        let max_lag = batch
            .lags
            .iter()
            .map(|l| l.max_lag_seconds)
            .fold(0.0, f64::max);
        assert_eq!(max_lag, 2.0);
    }
}
