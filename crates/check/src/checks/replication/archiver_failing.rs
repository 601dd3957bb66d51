//! Archiver failing or behind: WAL segments that should be in the archive but are not.
//!
//! With `archive_mode` on, PostgreSQL keeps every completed WAL segment in `pg_wal` until
//! `archive_command` (or `archive_library`) succeeds for it. A failing command means two outages
//! in waiting: point-in-time recovery stops at the last archived segment, and `pg_wal` grows until
//! the disk is full. Read from `pg_stat_archiver` (last success and failure) and, for roles that
//! may list it, `pg_ls_archive_statusdir()` (segments still marked `.ready`).

use crate::finding::human_duration;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct ArchiverFailing;

static META: CheckMeta = CheckMeta {
    id: "archiver-failing",
    category: Category::Archiving,
    title: "WAL archiving failing or behind",
    measures: "Whether the last archive attempt failed (pg_stat_archiver), and how many WAL segments wait in \
               archive_status/*.ready and for how long.",
    params: &[
        Param { name: "warning", default: 10.0, unit: "count", help: "segments waiting to be archived that warn" },
        Param { name: "critical", default: 100.0, unit: "count", help: "segments waiting to be archived that are critical" },
        Param {
            name: "warning_seconds",
            default: 600.0,
            unit: "seconds",
            help: "age of the oldest segment waiting to be archived that warns",
        },
        Param {
            name: "critical_seconds",
            default: 3600.0,
            unit: "seconds",
            help: "age of the oldest segment waiting to be archived that is critical",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Segments that are not archived stay in pg_wal: the disk fills and the server stops, and point-in-time \
              recovery (and standbys fed from the archive) cannot go past the last archived segment.",
        action: "Run the archive_command by hand as the postgres OS user for last_failed_wal and read the server \
                 log around last_failed_time (permissions, a full or unreachable archive, an existing file the \
                 command refuses to overwrite). Fix the cause; the archiver retries by itself. Never delete files \
                 from pg_wal by hand.",
        next: "SELECT * FROM pg_stat_archiver; SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'; \
               SHOW archive_command; -- then read the server log around last_failed_time",
    },
};

/// `pg_ls_archive_statusdir()` is for superusers and `pg_monitor` members only; others get the
/// `pg_stat_archiver` part, which still shows a failing command.
fn sql(can_list_status_dir: bool) -> String {
    let (ready_columns, ready_from) = if can_list_status_dir {
        (
            "ready.ready_count, ready.oldest_ready_seconds",
            ", (SELECT count(*)::int8 AS ready_count,
           EXTRACT(EPOCH FROM now() - min(modification))::float8 AS oldest_ready_seconds
    FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS ready",
        )
    } else {
        (
            "NULL::int8 AS ready_count, NULL::float8 AS oldest_ready_seconds",
            "",
        )
    };
    format!(
        "\
SELECT current_setting('archive_mode') AS archive_mode,
       archived_count::int8 AS archived_count, last_archived_wal,
       last_archived_time::text AS last_archived_time,
       failed_count::int8 AS failed_count, last_failed_wal,
       last_failed_time::text AS last_failed_time,
       EXTRACT(EPOCH FROM now() - last_failed_time)::float8 AS since_failed_seconds,
       (last_failed_time IS NOT NULL
        AND (last_archived_time IS NULL OR last_failed_time > last_archived_time)) AS failing,
       stats_reset::text AS stats_reset,
       {ready_columns}
FROM pg_stat_archiver{ready_from}"
    )
}

#[async_trait::async_trait]
impl Check for ArchiverFailing {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let info = ctx.info();
        let row = ctx
            .query_one(&sql(info.has_pg_monitor || info.is_superuser), &[])
            .await?;
        let mode: String = row.get("archive_mode");
        match mode.as_str() {
            "off" => {
                return Err(CheckError::NotApplicable(
                    "archive_mode is off (see archive-mode-off)".into(),
                ))
            }
            "on" if info.in_recovery => {
                return Err(CheckError::NotApplicable(
                    "archive_mode = on archives only on the primary; this is a standby".into(),
                ))
            }
            _ => {}
        }

        let failing: bool = row.get("failing");
        let ready: Option<i64> = row.get("ready_count");
        let oldest: Option<f64> = row.get("oldest_ready_seconds");
        let by_failure = failing.then_some(Severity::Critical);
        let by_count = ready.and_then(|n| ctx.severity_above(n as f64));
        let by_age = oldest.and_then(|s| ctx.severity_above_seconds(s));
        let Some(severity) = [by_failure, by_count, by_age].into_iter().flatten().max() else {
            return Ok(Vec::new());
        };

        let last_failed_wal: Option<String> = row.get("last_failed_wal");
        let failed_count: i64 = row.get("failed_count");
        let mut reasons = Vec::new();
        if failing {
            reasons.push(format!(
                "archiving is failing: last attempt on {} failed {} ago, after the last success ({failed_count} failures since stats reset)",
                last_failed_wal.as_deref().unwrap_or("?"),
                human_duration(row.get::<_, Option<f64>>("since_failed_seconds").unwrap_or(0.0))
            ));
        }
        if by_count.is_some() || by_age.is_some() {
            reasons.push(format!(
                "{} segment(s) waiting to be archived, oldest {} (warning at {} segments or {})",
                ready.unwrap_or(0),
                human_duration(oldest.unwrap_or(0.0)),
                ctx.param("warning"),
                human_duration(ctx.param("warning_seconds"))
            ));
        }
        Ok(vec![Finding::new(severity, "archiver", reasons.join("; "))
            .with("failing", failing)
            .with("last_failed_wal", last_failed_wal)
            .with(
                "last_failed_time",
                row.get::<_, Option<String>>("last_failed_time"),
            )
            .with("failed_count", failed_count)
            .with(
                "last_archived_wal",
                row.get::<_, Option<String>>("last_archived_wal"),
            )
            .with(
                "last_archived_time",
                row.get::<_, Option<String>>("last_archived_time"),
            )
            .with("archived_count", row.get::<_, i64>("archived_count"))
            .with("ready_count", ready)
            .with("oldest_ready_seconds", oldest.map(f64::round))
            .with("archive_mode", mode)
            .with(
                "stats_reset",
                row.get::<_, Option<String>>("stats_reset"),
            )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::{own_cluster, write_wal};
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_failing_archive_command() {
        let cluster = own_cluster(0, &[("archive_command", "false")]);
        let primary = cluster.primary();
        write_wal(primary, "archive_probe", 1_000);
        let switched = primary
            .psql("SELECT pg_walfile_name(pg_switch_wal());")
            .expect("switch WAL");

        let finding = testkit::finding_where(&ArchiverFailing, &primary.dsn(), &[], |f| {
            f.evidence("last_failed_wal")
                .and_then(|v| v.as_str())
                .is_some()
        })
        .await;
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(
            finding.evidence("failing").and_then(|v| v.as_bool()),
            Some(true)
        );
        // The archiver retries the oldest waiting segment: ours, or one completed before it.
        let failed_wal = finding
            .evidence("last_failed_wal")
            .and_then(|v| v.as_str())
            .unwrap();
        assert!(
            failed_wal.len() == 24 && failed_wal <= switched.as_str(),
            "{failed_wal} vs {switched}"
        );
        assert!(finding
            .evidence("failed_count")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n >= 1));
        assert!(finding
            .evidence("ready_count")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n >= 1));
    }

    #[tokio::test]
    async fn quiet_on_the_lab_whose_archive_works() {
        let cluster = testing::shared();
        let result = testkit::findings(&ArchiverFailing, &cluster.primary().dsn(), &[]).await;
        assert!(result.is_empty(), "{result:?}");
    }
}
