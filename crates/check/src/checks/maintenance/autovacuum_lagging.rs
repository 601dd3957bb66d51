//! Autovacuum lagging: tables whose dead tuples are well past the point where autovacuum should
//! have vacuumed them, and have not been vacuumed for a while.
//!
//! Autovacuum vacuums a table once `n_dead_tup` exceeds `autovacuum_vacuum_threshold +
//! autovacuum_vacuum_scale_factor * reltuples` (each overridable per table, and on PostgreSQL 18
//! capped by `autovacuum_vacuum_max_threshold`). A table far beyond that and not vacuumed for
//! long means the workers are too few, too throttled, busy elsewhere or being cancelled — or
//! autovacuum is disabled for the table or the whole server, which this check also reports.

use super::with_vacuum_times;
use crate::finding::human_duration;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct AutovacuumLagging;

static META: CheckMeta = CheckMeta {
    id: "autovacuum-lagging",
    category: Category::Maintenance,
    title: "Autovacuum not keeping up",
    measures: "Dead tuples per table against the table's effective autovacuum trigger threshold (honouring \
               per-table reloptions), with the time since its last vacuum; and whether autovacuum runs at all.",
    params: &[
        Param { name: "factor", default: 2.0, unit: "ratio", help: "dead tuples above this multiple of the threshold warn" },
        Param { name: "critical_factor", default: 10.0, unit: "ratio", help: "dead tuples above this multiple of the threshold are critical" },
        Param { name: "min_age_seconds", default: 3600.0, unit: "seconds", help: "only tables not vacuumed for at least this long" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many tables, most dead tuples first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "When autovacuum falls behind, dead tuples pile up into bloat, the visibility map goes stale \
              (index-only scans hit the heap) and the table drifts towards an emergency anti-wraparound \
              vacuum at the worst moment.",
        action: "Re-enable autovacuum where it is off. For busy tables lower autovacuum_vacuum_scale_factor \
                 (e.g. 0.01) per table; raise autovacuum_vacuum_cost_limit or autovacuum_max_workers if \
                 workers are always busy; check the log for 'canceling autovacuum task' (lock conflicts). \
                 Vacuum the worst tables by hand now.",
        next: "SELECT pid, relid::regclass, phase, heap_blks_scanned, heap_blks_total FROM pg_stat_progress_vacuum; \
               -- then: VACUUM (VERBOSE) <table>;",
    },
};

/// `{max_threshold}` is the server's `autovacuum_vacuum_max_threshold` on PostgreSQL 18+, else NULL.
const SQL: &str = "\
WITH settings AS (
  SELECT current_setting('autovacuum')::bool AS autovacuum_on,
         current_setting('track_counts')::bool AS track_counts_on,
         current_setting('autovacuum_vacuum_threshold')::float8 AS base_threshold,
         current_setting('autovacuum_vacuum_scale_factor')::float8 AS scale_factor,
         {max_threshold} AS max_threshold,
         -- a table never vacuumed has been waiting since statistics started counting
         coalesce((SELECT d.stats_reset FROM pg_stat_database d WHERE d.datname = current_database()),
                  pg_postmaster_start_time()) AS counting_since
),
options AS (
  -- the statistics functions directly, for tables with dead tuples only: the
  -- pg_stat_user_tables view computes every counter of every table
  SELECT c.oid, n.nspname AS schemaname, c.relname, d.n_dead_tup,
         pg_stat_get_autovacuum_count(c.oid)::int8 AS autovacuum_count,
         pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
         pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
         greatest(c.reltuples, 0)::float8 AS reltuples,
         (SELECT o.option_value::bool FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_enabled') AS enabled_option,
         (SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_threshold') AS threshold_option,
         (SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_scale_factor') AS scale_factor_option,
         (SELECT o.option_value::float8 FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_max_threshold') AS max_threshold_option
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (SELECT pg_stat_get_dead_tuples(c.oid)::int8 AS n_dead_tup) d
  WHERE c.relkind IN ('r', 'm') AND d.n_dead_tup > 0
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
tables AS (
  SELECT o.*, s.autovacuum_on AND coalesce(o.enabled_option, true) AS autovacuum_enabled,
         o.enabled_option IS NOT DISTINCT FROM false AS disabled_on_table,
         -- least() ignores the NULL of an absent (or, as -1, disabled) cap
         least(coalesce(o.threshold_option, s.base_threshold)
                 + coalesce(o.scale_factor_option, s.scale_factor) * o.reltuples,
               nullif(greatest(coalesce(o.max_threshold_option, s.max_threshold), -1), -1)) AS threshold,
         EXTRACT(EPOCH FROM now() - coalesce(greatest(o.last_vacuum, o.last_autovacuum), s.counting_since))::float8
           AS seconds_since_vacuum
  FROM options o
  CROSS JOIN settings s
),
lagging AS (
  SELECT format('%I.%I', t.schemaname, t.relname) AS table_name, t.n_dead_tup,
         t.threshold::float8 AS threshold, t.autovacuum_count,
         to_json(t.last_autovacuum) #>> '{}' AS last_autovacuum,
         to_json(t.last_vacuum) #>> '{}' AS last_vacuum,
         t.seconds_since_vacuum, t.autovacuum_enabled, t.disabled_on_table
  FROM tables t
  WHERE t.n_dead_tup > t.threshold * CASE WHEN t.autovacuum_enabled THEN $1::float8 ELSE 1 END
    AND t.seconds_since_vacuum >= $2::float8
  ORDER BY t.n_dead_tup DESC, table_name
  LIMIT $3::int8
)
SELECT s.autovacuum_on, s.track_counts_on, l.*
FROM settings s
LEFT JOIN lagging l ON true";

#[async_trait::async_trait]
impl Check for AutovacuumLagging {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let max_threshold = if ctx.info().version.major() >= 18 {
            "current_setting('autovacuum_vacuum_max_threshold')::float8"
        } else {
            "NULL::float8"
        };
        let sql = SQL.replace("{max_threshold}", max_threshold);
        let factor = ctx.param("factor");
        let critical_factor = ctx.param("critical_factor");
        let min_age = ctx.param("min_age_seconds");
        let rows = ctx
            .query(&sql, &[&factor, &min_age, &super::limit(ctx)])
            .await?;
        let mut findings = Vec::new();
        if let Some(first) = rows.first() {
            if !first.get::<_, bool>("autovacuum_on") {
                findings.push(
                    Finding::new(
                        Severity::Critical,
                        "server",
                        "autovacuum = off: no table is vacuumed or analyzed automatically (only anti-wraparound)",
                    )
                    .with("setting", "autovacuum")
                    .with("value", "off"),
                );
            }
            if !first.get::<_, bool>("track_counts_on") {
                findings.push(
                    Finding::new(
                        Severity::Critical,
                        "server",
                        "track_counts = off: autovacuum cannot see which tables need vacuum",
                    )
                    .with("setting", "track_counts")
                    .with("value", "off"),
                );
            }
        }
        for row in rows {
            let Some(table) = row.get::<_, Option<String>>("table_name") else {
                continue;
            };
            let dead: i64 = row.get("n_dead_tup");
            let threshold: f64 = row.get("threshold");
            let since: f64 = row.get("seconds_since_vacuum");
            let autovacuum_enabled: bool = row.get("autovacuum_enabled");
            let ratio = dead as f64 / threshold.max(1.0);
            let severity = if ratio >= critical_factor {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let summary = if autovacuum_enabled {
                format!(
                    "{dead} dead tuples, {ratio:.1}x its autovacuum threshold of {threshold:.0} (alert at {factor}x), \
                     not vacuumed for {}",
                    human_duration(since)
                )
            } else {
                format!(
                    "autovacuum is disabled {} and {dead} dead tuples exceed its threshold of {threshold:.0}; \
                     not vacuumed for {}",
                    if row.get::<_, bool>("disabled_on_table") { "on this table" } else { "server-wide" },
                    human_duration(since)
                )
            };
            let finding = Finding::new(severity, format!("table {table}"), summary)
                .with("table", table)
                .with("n_dead_tup", dead)
                .with("threshold", threshold.round());
            findings.push(
                with_vacuum_times(finding, &row)
                    .with("autovacuum_count", row.get::<_, i64>("autovacuum_count"))
                    .with("seconds_since_vacuum", since.round())
                    .with("autovacuum_enabled", autovacuum_enabled),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finding_about, integer, number, seeded_database, text};
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{Cluster, LabOptions, PgInstall};

    #[tokio::test]
    async fn reports_a_table_with_autovacuum_disabled() {
        // Per-table threshold 50 + 0.2 * reltuples; reltuples is 0 until vacuum/analyze runs.
        let dsn = seeded_database(
            "CREATE TABLE ledger (id int) WITH (autovacuum_enabled = false);
              INSERT INTO ledger SELECT g FROM generate_series(1, 5000) g;
              DELETE FROM ledger WHERE id <= 4000;
              CREATE TABLE tuned (id int) WITH (autovacuum_enabled = false, autovacuum_vacuum_threshold = 100000);
              INSERT INTO tuned SELECT g FROM generate_series(1, 5000) g;
              DELETE FROM tuned WHERE id <= 4000;",
            "create dead tuples",
        );
        let overrides = [("min_age_seconds", 0.0)];
        let finding = testkit::finding_where(&AutovacuumLagging, &dsn, &overrides, |f| {
            text(f, "table") == Some("public.ledger") && integer(f, "n_dead_tup") == Some(4000)
        })
        .await;
        assert_eq!(
            finding
                .evidence("autovacuum_enabled")
                .and_then(|v| v.as_bool()),
            Some(false)
        );
        assert_eq!(number(&finding, "threshold"), Some(50.0));
        assert_eq!(integer(&finding, "autovacuum_count"), Some(0));
        assert!(number(&finding, "seconds_since_vacuum").unwrap() >= 0.0);
        assert_eq!(
            finding.severity,
            Severity::Critical,
            "80x the threshold: {finding:?}"
        );
        // The per-table threshold reloption is honoured: 4000 dead is below 100000.
        let findings = testkit::findings(&AutovacuumLagging, &dsn, &overrides).await;
        assert!(
            finding_about(&findings, "table", "public.tuned").is_none(),
            "{findings:?}"
        );
        // The shared lab server runs autovacuum.
        assert!(
            !findings.iter().any(|f| f.object == "server"),
            "{findings:?}"
        );
        // Under the default minimum age (an hour) a table waiting only since this young lab
        // server started is not reported yet.
        let findings = testkit::findings(&AutovacuumLagging, &dsn, &[]).await;
        assert!(
            finding_about(&findings, "table", "public.ledger").is_none(),
            "{findings:?}"
        );
    }

    #[tokio::test]
    async fn reports_autovacuum_off_server_wide() {
        let cluster =
            Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("autovacuum", "off"))
                .expect("start a cluster without autovacuum");
        let findings = testkit::findings(&AutovacuumLagging, &cluster.primary().dsn(), &[]).await;
        let server = findings
            .iter()
            .find(|f| f.object == "server" && text(f, "setting") == Some("autovacuum"))
            .unwrap_or_else(|| panic!("autovacuum = off not reported: {findings:?}"));
        assert_eq!(server.severity, Severity::Critical);
    }
}
