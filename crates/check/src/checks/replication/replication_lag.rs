//! Replication lag: how far each standby streaming from this primary is behind it.
//!
//! Measured on the primary from `pg_stat_replication`, in bytes of WAL not yet replayed by the
//! standby and in seconds (`replay_lag`). A lagging standby serves stale reads, loses data on
//! failover (asynchronous replication) or stalls commits (synchronous replication), and makes
//! the primary keep WAL for it through its replication slot. The standby's own view of the same
//! lag is `standby-replay-lag`.

use crate::finding::{human_bytes, human_duration};
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Role, Runbook,
    Severity,
};

/// See the module docs.
pub struct ReplicationLag;

static META: CheckMeta = CheckMeta {
    id: "replication-lag",
    category: Category::Replication,
    title: "Replication lag",
    measures: "Bytes of WAL each connected standby has not yet replayed (pg_current_wal_lsn() - replay_lsn), \
               its replay_lag in seconds, and whether it is streaming.",
    params: &[
        Param { name: "warning", default: 67_108_864.0, unit: "bytes", help: "replay lag in bytes that warns" },
        Param { name: "critical", default: 1_073_741_824.0, unit: "bytes", help: "replay lag in bytes that is critical" },
        Param { name: "warning_seconds", default: 30.0, unit: "seconds", help: "replay lag in seconds that warns" },
        Param {
            name: "critical_seconds",
            default: 300.0,
            unit: "seconds",
            help: "replay lag in seconds that is critical",
        },
    ],
    requires: Requires { min_major: 12, pg_monitor: true, superuser: false, role: Role::Primary },
    runbook: Runbook {
        why: "A lagging standby serves stale reads, loses the unreplayed transactions if it is promoted, \
              stalls commits when it is a synchronous standby, and makes the primary retain WAL for it \
              until pg_wal fills the disk.",
        action: "Compare sent/write/flush/replay LSNs: sent far ahead of flush means the network or the \
                 standby's disk is slow; flush ahead of replay means replay is slow or paused, or blocked \
                 by a conflicting query (see max_standby_streaming_delay). A standby not 'streaming' is \
                 catching up or reconnecting: check its server log.",
        next: "SELECT application_name, client_addr, state, sync_state, sent_lsn, write_lsn, flush_lsn, replay_lsn, \
               pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) AS lag, replay_lag \
               FROM pg_stat_replication; -- on the standby: SELECT pg_is_wal_replay_paused(), * FROM pg_stat_wal_receiver;",
    },
};

/// Walsenders serving base backups (state 'backup') have no replay position and are not standbys.
const SQL: &str = "\
SELECT pid, application_name, client_addr::text AS client_addr, state, sync_state,
       sent_lsn::text AS sent_lsn, write_lsn::text AS write_lsn,
       flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 AS lag_bytes,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_seconds
FROM pg_stat_replication
WHERE state IS DISTINCT FROM 'backup'
ORDER BY lag_bytes DESC NULLS FIRST";

#[async_trait::async_trait]
impl Check for ReplicationLag {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let lag_bytes: Option<i64> = row.get("lag_bytes");
            let lag_seconds: Option<f64> = row.get("replay_lag_seconds");
            let state: Option<String> = row.get("state");
            let streaming = state.as_deref() == Some("streaming");

            let by_bytes = lag_bytes.and_then(|b| ctx.severity_above(b as f64));
            let by_seconds = lag_seconds.and_then(|s| ctx.severity_above_seconds(s));
            let by_state = (!streaming).then_some(Severity::Warning);
            let Some(severity) = [by_bytes, by_seconds, by_state].into_iter().flatten().max()
            else {
                continue;
            };

            let name: Option<String> = row.get("application_name");
            let name = name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("pid {}", row.get::<_, i32>("pid")));
            let mut reasons = Vec::new();
            if by_bytes.is_some() {
                reasons.push(format!(
                    "{} of WAL not replayed (warning at {})",
                    human_bytes(lag_bytes.unwrap_or(0) as f64),
                    human_bytes(ctx.param("warning"))
                ));
            }
            if by_seconds.is_some() {
                reasons.push(format!(
                    "replay lag {} (warning at {})",
                    human_duration(lag_seconds.unwrap_or(0.0)),
                    human_duration(ctx.param("warning_seconds"))
                ));
            }
            if by_state.is_some() {
                reasons.push(format!(
                    "state is {} instead of streaming",
                    state.as_deref().unwrap_or("unknown")
                ));
            }
            findings.push(
                Finding::new(
                    severity,
                    format!("standby \"{name}\""),
                    format!("standby {name}: {}", reasons.join("; ")),
                )
                .with("application_name", name)
                .with("pid", row.get::<_, i32>("pid"))
                .with("client_addr", row.get::<_, Option<String>>("client_addr"))
                .with("state", state)
                .with("sync_state", row.get::<_, Option<String>>("sync_state"))
                .with("sent_lsn", row.get::<_, Option<String>>("sent_lsn"))
                .with("write_lsn", row.get::<_, Option<String>>("write_lsn"))
                .with("flush_lsn", row.get::<_, Option<String>>("flush_lsn"))
                .with("replay_lsn", row.get::<_, Option<String>>("replay_lsn"))
                .with("lag_bytes", lag_bytes)
                .with(
                    "replay_lag_seconds",
                    lag_seconds.map(|s| (s * 1000.0).round() / 1000.0),
                ),
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

    #[tokio::test]
    async fn reports_a_standby_whose_replay_is_paused() {
        let cluster = own_cluster(1, &[]);
        let primary = cluster.primary();
        let replica = &cluster.replicas()[0];
        let dsn = primary.dsn();

        // Caught up and streaming: quiet with the default thresholds.
        cluster
            .wait_for_replay(std::time::Duration::from_secs(30))
            .expect("replica catches up");
        let quiet = testkit::findings(&ReplicationLag, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");

        replica
            .psql("SELECT pg_wal_replay_pause();")
            .expect("pause replay");
        write_wal(primary, "lag_probe", 50_000);
        let threshold = 1_048_576.0;
        let finding =
            testkit::finding_where(&ReplicationLag, &dsn, &[("warning", threshold)], |f| {
                f.evidence("application_name").and_then(|v| v.as_str()) == Some(replica.name())
                    && f.evidence("lag_bytes")
                        .and_then(|v| v.as_f64())
                        .is_some_and(|b| b > threshold)
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("standby \"{}\"", replica.name()));
        assert_eq!(
            finding.evidence("state").and_then(|v| v.as_str()),
            Some("streaming")
        );
        assert_eq!(
            finding.evidence("sync_state").and_then(|v| v.as_str()),
            Some("async")
        );
        assert!(finding
            .evidence("replay_lsn")
            .and_then(|v| v.as_str())
            .is_some());
        assert!(
            finding.summary.contains("not replayed"),
            "{}",
            finding.summary
        );

        replica
            .psql("SELECT pg_wal_replay_resume();")
            .expect("resume replay");
    }
}
