//! The metric contract between `pgdbre serve` (which produces these series) and the rules this
//! crate generates (which read them). Names, labels and histogram buckets live here and nowhere
//! else; `docs/slo.md` documents the same table.

/// Histogram of synthetic probe durations, in seconds.
///
/// Labels: `server` (`host:port/dbname`, as on every series of `pgdbre serve`), `probe`
/// (`read` | `commit`). Observes **successful** probes only; a failed
/// probe is counted in [`PROBE_TOTAL`] with `result="error"` and so is bad for latency SLOs too.
pub const PROBE_DURATION_SECONDS: &str = "pgdbre_probe_duration_seconds";

/// Counter of probe attempts. Labels: `server`, `probe` (`read` | `commit`), `result` (`ok` | `error`).
pub const PROBE_TOTAL: &str = "pgdbre_probe_total";

/// Gauge: replay lag of each standby, in seconds. Labels: `server`, `standby` (both the
/// standby's `host:port/dbname`: the lag is measured on the standby itself).
pub const REPLICA_LAG_SECONDS: &str = "pgdbre_replica_lag_seconds";

/// Gauge: the measured restore time (RTO) of the latest DR drill, in seconds. Labels: `server`.
pub const DRILL_RESTORE_SECONDS: &str = "pgdbre_drill_restore_seconds";

/// Bucket upper bounds of [`PROBE_DURATION_SECONDS`], in seconds. A latency SLO target must be
/// one of these: a histogram cannot tell how many probes fell below a bound it does not have.
pub const PROBE_DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.04, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The label naming the monitored server on every series, `host:port/dbname`.
pub const SERVER_LABEL: &str = "server";

/// Label `probe` values.
pub const PROBE_READ: &str = "read";
pub const PROBE_COMMIT: &str = "commit";

/// Label `result` values of [`PROBE_TOTAL`].
pub const RESULT_OK: &str = "ok";
pub const RESULT_ERROR: &str = "error";

/// The bucket bound equal to `seconds`, if there is one.
pub fn bucket_bound(seconds: f64) -> Option<f64> {
    PROBE_DURATION_BUCKETS
        .iter()
        .copied()
        .find(|b| (b - seconds).abs() <= b * 1e-9)
}

/// The bucket bounds just below and just above `seconds` (either may be absent at the ends).
pub fn neighbouring_buckets(seconds: f64) -> (Option<f64>, Option<f64>) {
    let below = PROBE_DURATION_BUCKETS
        .iter()
        .copied()
        .rev()
        .find(|b| *b < seconds);
    let above = PROBE_DURATION_BUCKETS
        .iter()
        .copied()
        .find(|b| *b > seconds);
    (below, above)
}

/// A PromQL regex matcher value for the `le` label of bound `seconds`.
///
/// Exporters and Prometheus versions spell bounds differently (`1` vs `1.0`; Prometheus 3
/// normalises to the float form), so the rules accept both spellings.
pub fn le_matcher(seconds: f64) -> String {
    let plain = format!("{seconds}");
    let mut spellings = vec![plain.clone()];
    if !plain.contains('.') && !plain.contains('e') {
        spellings.push(format!("{plain}.0"));
    }
    spellings
        .iter()
        .map(|s| s.replace('.', "\\\\."))
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_strictly_increasing() {
        assert!(PROBE_DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn finds_exact_bucket_bounds_only() {
        assert_eq!(bucket_bound(0.04), Some(0.04));
        assert_eq!(bucket_bound(40.0 / 1000.0), Some(0.04));
        assert_eq!(bucket_bound(0.045), None);
    }

    #[test]
    fn neighbours_of_a_missing_bound() {
        assert_eq!(neighbouring_buckets(0.045), (Some(0.04), Some(0.05)));
        assert_eq!(neighbouring_buckets(0.0005), (None, Some(0.001)));
        assert_eq!(neighbouring_buckets(10.0), (Some(5.0), None));
    }

    #[test]
    fn le_matcher_accepts_both_spellings_of_integers() {
        // Escaped for a double-quoted PromQL string: `\\.` is a literal dot in the regex.
        assert_eq!(le_matcher(0.04), "0\\\\.04");
        assert_eq!(le_matcher(1.0), "1|1\\\\.0");
    }
}
