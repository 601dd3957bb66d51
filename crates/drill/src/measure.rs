//! The pure decisions of a drill: the recovery point (RPO) from what the restored server replayed,
//! and the verdict against the targets. No I/O, so every rule is unit-tested here.
//!
//! **RPO** is the time between a reference point and the newest data recovered:
//! * reference: the requested `--target-time`; for every other target the drill's start — what
//!   would be lost had the primary been lost at that moment and this recovery been the way back
//!   (for `immediate`, that is the age of the backup);
//! * newest data recovered: the commit time of the last transaction replayed
//!   (`pg_last_xact_replay_timestamp()`, which keeps its value after recovery ends, so it is read
//!   once the server is promoted; chosen over `pg_last_committed_xact()` because that needs
//!   `track_commit_timestamp`, off by default); when recovery replayed no transaction at all,
//!   the backup's end time, the newest point the backup alone guarantees.
//!
//! On an idle database the RPO is an upper bound: no commit after the last replayed one means
//! nothing was lost, yet the time since counts. Set `archive_timeout` so idle periods still ship WAL.

use crate::report::{RecoveredTo, Rpo};
use serde::Serialize;
use std::time::Duration;

/// What the RPO is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoReference {
    /// The requested `--target-time`.
    TargetTime,
    /// The drill's start.
    DrillStart,
}

/// The RPO from the reference point (Unix ms), the last replayed commit (if any) and the
/// backup's end; never negative (clocks of different hosts may disagree slightly).
pub fn recovery_point(
    reference: RpoReference,
    reference_unix_ms: i64,
    last_commit_unix_ms: Option<i64>,
    backup_stop_unix_ms: i64,
) -> Rpo {
    let (recovered_to, recovered_to_unix_ms) = match last_commit_unix_ms {
        Some(commit) => (RecoveredTo::LastReplayedCommit, commit),
        None => (RecoveredTo::BackupEnd, backup_stop_unix_ms),
    };
    let seconds = (reference_unix_ms - recovered_to_unix_ms).max(0) as f64 / 1000.0;
    Rpo {
        seconds,
        reference,
        reference_unix_ms,
        recovered_to,
        recovered_to_unix_ms,
    }
}

/// Why the measured drill misses its targets: one sentence per missed target, empty when it meets
/// them. A drill without an RTO (it never answered a smoke query) has failed already elsewhere.
pub fn judge(
    rto_seconds: Option<f64>,
    rpo: Option<&Rpo>,
    rto_target: Option<Duration>,
    rpo_target: Option<Duration>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if let (Some(rto), Some(target)) = (rto_seconds, rto_target) {
        if rto > target.as_secs_f64() {
            reasons.push(format!(
                "RTO {} exceeds target {}",
                format_seconds(rto),
                format_seconds(target.as_secs_f64())
            ));
        }
    }
    if let (Some(rpo), Some(target)) = (rpo, rpo_target) {
        if rpo.seconds > target.as_secs_f64() {
            reasons.push(format!(
                "RPO {} exceeds target {} (recovered to {} before {})",
                format_seconds(rpo.seconds),
                format_seconds(target.as_secs_f64()),
                rpo.recovered_to.describe(),
                match rpo.reference {
                    RpoReference::TargetTime => "the target time",
                    RpoReference::DrillStart => "the drill start",
                }
            ));
        }
    }
    reasons
}

/// A duration for people: `250 ms`, `4.2 s`, `7m12s`, `2h05m`.
pub fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        return format!("{} ms", (seconds * 1000.0).round() as u64);
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    if whole < 3600 {
        return format!("{}m{:02}s", whole / 60, whole % 60);
    }
    format!("{}h{:02}m", whole / 3600, whole / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpo_is_measured_from_the_last_replayed_commit() {
        let rpo = recovery_point(RpoReference::DrillStart, 100_000, Some(97_500), 90_000);
        assert_eq!(rpo.seconds, 2.5);
        assert_eq!(rpo.recovered_to, RecoveredTo::LastReplayedCommit);
        // No transaction replayed: the backup's end is the newest point known.
        let rpo = recovery_point(RpoReference::DrillStart, 100_000, None, 90_000);
        assert_eq!(
            (rpo.seconds, rpo.recovered_to),
            (10.0, RecoveredTo::BackupEnd)
        );
        // A commit "after" the reference (clock skew) is no negative loss.
        let rpo = recovery_point(RpoReference::TargetTime, 100_000, Some(100_200), 90_000);
        assert_eq!(rpo.seconds, 0.0);
    }

    #[test]
    fn verdict_names_each_missed_target() {
        let rpo = recovery_point(RpoReference::DrillStart, 1_000_000, Some(400_000), 0);
        let reasons = judge(
            Some(4.2),
            Some(&rpo),
            Some(Duration::from_millis(1)),
            Some(Duration::from_secs(300)),
        );
        assert_eq!(
            reasons,
            [
                "RTO 4.2 s exceeds target 1 ms",
                "RPO 10m00s exceeds target 5m00s (recovered to the last replayed commit before the drill start)"
            ]
        );
        assert!(judge(Some(4.2), Some(&rpo), Some(Duration::from_secs(900)), None).is_empty());
        assert!(judge(
            None,
            None,
            Some(Duration::from_millis(1)),
            Some(Duration::from_millis(1))
        )
        .is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_seconds(0.25), "250 ms");
        assert_eq!(format_seconds(4.24), "4.2 s");
        assert_eq!(format_seconds(432.0), "7m12s");
        assert_eq!(format_seconds(7500.0), "2h05m");
    }
}
