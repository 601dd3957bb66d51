//! Standby replay lag: the standby's own view of how far behind it is, and whether it still
//! receives WAL at all.
//!
//! Measured on a standby: WAL received but not yet replayed (`pg_last_wal_receive_lsn()` -
//! `pg_last_wal_replay_lsn()`), whether replay is paused, how old the last replayed transaction
//! is while replay is behind, and the WAL receiver's status. It complements `replication-lag`,
//! which sees the same standbys from the primary, and catches what the primary cannot see: a
//! standby that lost its connection entirely is simply absent from `pg_stat_replication`.

use crate::finding::{human_bytes, human_duration};
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Role, Runbook,
    Severity,
};

/// See the module docs.
pub struct StandbyReplayLag;

static META: CheckMeta = CheckMeta {
    id: "standby-replay-lag",
    category: Category::Replication,
    title: "Standby replay lag",
    measures: "On a standby: bytes of received WAL not yet replayed, replay pause, age of the last replayed \
               transaction while replay is behind, and whether the WAL receiver is streaming.",
    params: &[
        Param { name: "warning", default: 67_108_864.0, unit: "bytes", help: "received-but-unreplayed WAL that warns" },
        Param {
            name: "critical",
            default: 1_073_741_824.0,
            unit: "bytes",
            help: "received-but-unreplayed WAL that is critical",
        },
        Param {
            name: "warning_seconds",
            default: 30.0,
            unit: "seconds",
            help: "age of the last replayed transaction, while replay is behind, that warns",
        },
        Param {
            name: "critical_seconds",
            default: 300.0,
            unit: "seconds",
            help: "age of the last replayed transaction, while replay is behind, that is critical",
        },
    ],
    requires: Requires { min_major: 12, pg_monitor: true, superuser: false, role: Role::Standby },
    runbook: Runbook {
        why: "A standby that replays late serves stale reads and, if promoted, starts without the transactions \
              it had not replayed; one whose WAL receiver is down falls further behind every second and may \
              need re-seeding once the primary recycles the WAL it needs. The age in seconds is only measured \
              while received WAL waits for replay: on an idle primary the last replayed transaction is old \
              although the standby is fully caught up.",
        action: "If replay is paused, resume it unless someone paused it on purpose. If replay is slow, look \
                 for recovery conflicts and long queries on the standby (max_standby_streaming_delay, \
                 hot_standby_feedback) and for I/O saturation. If the WAL receiver is not streaming, read the \
                 standby's server log (authentication, network, a missing slot, or WAL the primary already \
                 removed).",
        next: "SELECT pg_is_wal_replay_paused(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), \
               now() - pg_last_xact_replay_timestamp() AS last_replay_age; SELECT * FROM pg_stat_wal_receiver; \
               -- resume a paused standby: SELECT pg_wal_replay_resume();",
    },
};

/// `pg_stat_wal_receiver` has no row while no receiver runs, hence the outer join on one row.
/// A standby fed only by restore_command (no primary_conninfo) is not expected to have one.
const SQL: &str = "\
SELECT pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::int8 AS lag_bytes,
       pg_is_wal_replay_paused() AS replay_paused,
       pg_last_xact_replay_timestamp()::text AS last_replayed_xact_time,
       CASE WHEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 0
            THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replay_delay_seconds,
       current_setting('primary_conninfo') <> '' AS expects_receiver,
       receiver.status AS receiver_status,
       receiver.sender_host AS sender_host,
       receiver.sender_port AS sender_port,
       receiver.slot_name AS receiver_slot,
       EXTRACT(EPOCH FROM now() - receiver.last_msg_receipt_time)::float8 AS since_last_message_seconds
FROM (SELECT 1) AS one
LEFT JOIN pg_stat_wal_receiver AS receiver ON true";

#[async_trait::async_trait]
impl Check for StandbyReplayLag {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let mut findings = Vec::new();

        let lag_bytes: Option<i64> = row.get("lag_bytes");
        let paused: bool = row.get("replay_paused");
        let delay: Option<f64> = row.get("replay_delay_seconds");
        let by_bytes = lag_bytes.and_then(|b| ctx.severity_above(b as f64));
        let by_delay = delay.and_then(|s| ctx.severity_above_seconds(s));
        let by_pause = paused.then_some(Severity::Warning);
        if let Some(severity) = [by_bytes, by_delay, by_pause].into_iter().flatten().max() {
            let mut reasons = Vec::new();
            if by_bytes.is_some() {
                reasons.push(format!(
                    "{} of received WAL not replayed (warning at {})",
                    human_bytes(lag_bytes.unwrap_or(0) as f64),
                    human_bytes(ctx.param("warning"))
                ));
            }
            if by_delay.is_some() {
                reasons.push(format!(
                    "last replayed transaction {} old while replay is behind (warning at {})",
                    human_duration(delay.unwrap_or(0.0)),
                    human_duration(ctx.param("warning_seconds"))
                ));
            }
            if paused {
                reasons.push("replay is paused".to_string());
            }
            findings.push(
                Finding::new(severity, "WAL replay", reasons.join("; "))
                    .with("receive_lsn", row.get::<_, Option<String>>("receive_lsn"))
                    .with("replay_lsn", row.get::<_, Option<String>>("replay_lsn"))
                    .with("lag_bytes", lag_bytes)
                    .with("replay_paused", paused)
                    .with("replay_delay_seconds", delay.map(f64::round))
                    .with(
                        "last_replayed_xact_time",
                        row.get::<_, Option<String>>("last_replayed_xact_time"),
                    ),
            );
        }

        let expects_receiver: bool = row.get("expects_receiver");
        let status: Option<String> = row.get("receiver_status");
        if expects_receiver && status.as_deref() != Some("streaming") {
            let summary = match &status {
                Some(status) => format!("WAL receiver is {status}, not streaming: the standby receives no new WAL"),
                None => "no WAL receiver is running although primary_conninfo is set: the standby receives no new WAL"
                    .to_string(),
            };
            findings.push(
                Finding::new(Severity::Critical, "WAL receiver", summary)
                    .with("receiver_status", status)
                    .with("sender_host", row.get::<_, Option<String>>("sender_host"))
                    .with("sender_port", row.get::<_, Option<i32>>("sender_port"))
                    .with("slot_name", row.get::<_, Option<String>>("receiver_slot"))
                    .with(
                        "since_last_message_seconds",
                        row.get::<_, Option<f64>>("since_last_message_seconds")
                            .map(f64::round),
                    )
                    .with("receive_lsn", row.get::<_, Option<String>>("receive_lsn"))
                    .with("replay_lsn", row.get::<_, Option<String>>("replay_lsn")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, write_wal};
    use crate::testkit;
    use std::time::Duration;

    #[tokio::test]
    async fn reports_paused_replay_and_a_lost_primary_on_the_standby() {
        let cluster = own_cluster(1, &[]);
        let primary = cluster.primary();
        let replica = &cluster.replicas()[0];
        let dsn = replica.dsn();

        // Caught up and streaming: quiet with the default thresholds.
        cluster
            .wait_for_replay(Duration::from_secs(30))
            .expect("replica catches up");
        let quiet = testkit::findings(&StandbyReplayLag, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");

        replica
            .psql("SELECT pg_wal_replay_pause();")
            .expect("pause replay");
        write_wal(primary, "standby_lag_probe", 20_000);
        let finding =
            testkit::finding_where(&StandbyReplayLag, &dsn, &[("warning", 1024.0)], |f| {
                f.object == "WAL replay"
                    && f.evidence("lag_bytes")
                        .and_then(|v| v.as_i64())
                        .is_some_and(|b| b > 1024)
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding.evidence("replay_paused").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert!(finding
            .evidence("receive_lsn")
            .and_then(|v| v.as_str())
            .is_some());
        assert!(
            finding.summary.contains("replay is paused"),
            "{}",
            finding.summary
        );
        replica
            .psql("SELECT pg_wal_replay_resume();")
            .expect("resume replay");

        // The primary goes away: the receiver stops streaming, which is critical.
        primary.stop().expect("stop the primary");
        let receiver =
            testkit::finding_where(&StandbyReplayLag, &dsn, &[], |f| f.object == "WAL receiver")
                .await;
        assert_eq!(receiver.severity, Severity::Critical);
        assert_ne!(
            receiver
                .evidence("receiver_status")
                .and_then(|v| v.as_str()),
            Some("streaming")
        );
    }
}
