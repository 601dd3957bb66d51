//! Checkpoint pressure: how many checkpoints were requested rather than started by the timer.
//!
//! A checkpoint normally starts every `checkpoint_timeout`; when WAL since the last one reaches
//! `max_wal_size` one starts early ("requested"). Frequent requested checkpoints mean
//! `max_wal_size` is too small for the write rate: each one flushes dirty buffers in a burst and
//! the first change to every page after it writes a full-page image, multiplying WAL volume.
//! Counters come from `pg_stat_checkpointer` on PostgreSQL 17+ and `pg_stat_bgwriter` before.

use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct CheckpointPressure;

static META: CheckMeta = CheckMeta {
    id: "checkpoint-pressure",
    category: Category::Performance,
    title: "Checkpoints requested instead of timed",
    measures: "Percentage of checkpoints since the statistics reset that were requested (WAL reached max_wal_size, \
               or an explicit CHECKPOINT) rather than started by checkpoint_timeout.",
    params: &[
        Param { name: "warning", default: 20.0, unit: "percent", help: "share of requested checkpoints that warns" },
        Param { name: "critical", default: 50.0, unit: "percent", help: "share of requested checkpoints that is critical" },
        Param {
            name: "min_checkpoints",
            default: 10.0,
            unit: "count",
            help: "judge only after this many checkpoints since the statistics reset",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Checkpoints forced by WAL volume come in bursts of writes that stall I/O, and after each one the \
              first change to every page logs a full-page image, so WAL volume (and replication and archive \
              traffic) multiplies.",
        action: "Raise max_wal_size so that checkpoints are normally timed (size it to the WAL written per \
                 checkpoint_timeout, from pg_stat_wal or the log_checkpoints lines), and keep \
                 checkpoint_completion_target at 0.9. Explicit CHECKPOINT commands, base backups and \
                 CREATE DATABASE also count as requested: the server log's 'checkpoint starting: wal' lines \
                 show the ones caused by WAL volume.",
        next: "SHOW max_wal_size; SHOW checkpoint_timeout; SELECT * FROM pg_stat_checkpointer; -- PostgreSQL 16 and \
               older: SELECT checkpoints_timed, checkpoints_req, stats_reset FROM pg_stat_bgwriter; \
               -- then: ALTER SYSTEM SET max_wal_size = '8GB'; SELECT pg_reload_conf();",
    },
};

/// The counters moved to `pg_stat_checkpointer` (and were renamed) in PostgreSQL 17.
fn sql(major: u32) -> String {
    let (timed, requested, view) = if major >= 17 {
        ("num_timed", "num_requested", "pg_stat_checkpointer")
    } else {
        ("checkpoints_timed", "checkpoints_req", "pg_stat_bgwriter")
    };
    format!(
        "\
SELECT {timed}::int8 AS timed, {requested}::int8 AS requested,
       stats_reset::text AS stats_reset,
       EXTRACT(EPOCH FROM now() - stats_reset)::float8 AS stats_age_seconds,
       current_setting('max_wal_size') AS max_wal_size,
       current_setting('checkpoint_timeout') AS checkpoint_timeout
FROM {view}"
    )
}

#[async_trait::async_trait]
impl Check for CheckpointPressure {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(&sql(ctx.info().version.major()), &[]).await?;
        let timed: i64 = row.get("timed");
        let requested: i64 = row.get("requested");
        let total = timed + requested;
        if total == 0 || (total as f64) < ctx.param("min_checkpoints") {
            return Ok(Vec::new());
        }
        let percent = requested as f64 * 100.0 / total as f64;
        let Some(severity) = ctx.severity_above(percent) else {
            return Ok(Vec::new());
        };
        let max_wal_size: String = row.get("max_wal_size");
        Ok(vec![Finding::new(
            severity,
            "checkpointer",
            format!(
                "{percent:.0}% of checkpoints were requested ({requested} of {total}; warning at {}%): \
                 max_wal_size ({max_wal_size}) is likely too small",
                ctx.param("warning")
            ),
        )
        .with("timed", timed)
        .with("requested", requested)
        .with("percent_requested", (percent * 10.0).round() / 10.0)
        .with("max_wal_size", max_wal_size)
        .with("checkpoint_timeout", row.get::<_, String>("checkpoint_timeout"))
        .with("stats_reset", row.get::<_, Option<String>>("stats_reset"))
        .with("stats_age_seconds", row.get::<_, Option<f64>>("stats_age_seconds").map(f64::round))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, write_wal};
    use crate::testkit;
    use crate::Severity;

    #[tokio::test]
    async fn reports_requested_checkpoints() {
        let cluster = own_cluster(0, &[("max_wal_size", "32MB")]);
        let primary = cluster.primary();
        let dsn = primary.dsn();

        // A fresh server has too few checkpoints to judge.
        let quiet = testkit::findings(&CheckpointPressure, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");

        // WAL beyond max_wal_size requests checkpoints, and so does every CHECKPOINT command.
        write_wal(primary, "checkpoint_probe", 100_000);
        for _ in 0..5 {
            primary.psql("CHECKPOINT;").expect("checkpoint");
        }
        let finding = testkit::finding_where(
            &CheckpointPressure,
            &dsn,
            &[("min_checkpoints", 3.0)],
            |f| {
                f.evidence("requested")
                    .and_then(|v| v.as_i64())
                    .is_some_and(|n| n >= 5)
            },
        )
        .await;
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(finding.object, "checkpointer");
        assert_eq!(
            finding.evidence("max_wal_size").and_then(|v| v.as_str()),
            Some("32MB")
        );
        assert!(finding
            .evidence("percent_requested")
            .and_then(|v| v.as_f64())
            .is_some_and(|p| p >= 50.0));
    }
}
