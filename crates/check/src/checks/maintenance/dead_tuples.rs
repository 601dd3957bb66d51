//! Dead tuples: tables where a large share of the row versions are dead and not yet vacuumed.
//!
//! Dead tuples are the raw material of bloat: until vacuum removes them every scan reads past
//! them. A high share on a table means vacuum is not running there, is being held back (old
//! snapshot, slot, prepared transaction), or runs too rarely for the write rate;
//! [`super::autovacuum_lagging`] tells which.
//!
//! A table over the percentage thresholds with fewer than `warning_dead_tuples` dead tuples is
//! shown as info only: a small table full of dead rows costs little until it grows.

use super::{limit, round1, with_vacuum_times};
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct DeadTuples;

static META: CheckMeta = CheckMeta {
    id: "dead-tuples",
    category: Category::Maintenance,
    title: "Dead tuples",
    measures: "Share of dead row versions per table, n_dead_tup / (n_live_tup + n_dead_tup), from \
               pg_stat_user_tables.",
    params: &[
        Param { name: "warning", default: 20.0, unit: "percent", help: "dead share of the rows that warns" },
        Param { name: "critical", default: 50.0, unit: "percent", help: "dead share of the rows that is critical" },
        Param { name: "min_dead_tuples", default: 1_000.0, unit: "count", help: "ignore tables with fewer dead tuples" },
        Param { name: "warning_dead_tuples", default: 10_000.0, unit: "count", help: "fewer dead tuples than this are info, whatever their share" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many tables, most dead tuples first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Dead tuples are read and skipped by every scan and turn into permanent bloat when vacuum \
              cannot remove them in time; index-only scans stop being index-only because the visibility \
              map is stale.",
        action: "If autovacuum is disabled on the table, re-enable it. If it is running but not removing \
                 them, look for what pins the xmin horizon (long transactions, replication slots, prepared \
                 transactions, hot_standby_feedback). Otherwise vacuum the table now and lower its \
                 autovacuum_vacuum_scale_factor.",
        next: "VACUUM (VERBOSE) <table>;  -- 'dead row versions cannot be removed yet, oldest xmin' names the blocker",
    },
};

const SQL: &str = "\
WITH dead AS MATERIALIZED (
  -- the statistics functions directly (the pg_stat_user_tables view computes every counter of
  -- every table, which is slow with thousands of them), and only the dead-tuple count until a
  -- table has enough of them
  SELECT c.oid, c.relnamespace, c.relname, c.reloptions, d.n_dead_tup
  FROM pg_class c
  CROSS JOIN LATERAL (SELECT pg_stat_get_dead_tuples(c.oid)::int8 AS n_dead_tup) d
  WHERE c.relkind IN ('r', 'm') AND d.n_dead_tup >= $1::float8
),
counts AS MATERIALIZED (
  SELECT t.*, n.nspname, pg_stat_get_live_tuples(t.oid)::int8 AS n_live_tup
  FROM dead t
  JOIN pg_namespace n ON n.oid = t.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
)
SELECT format('%I.%I', t.nspname, t.relname) AS table_name, t.n_dead_tup, t.n_live_tup,
       (100.0 * t.n_dead_tup / greatest(t.n_live_tup + t.n_dead_tup, 1))::float8 AS dead_percent,
       to_json(pg_stat_get_last_autovacuum_time(t.oid)) #>> '{}' AS last_autovacuum,
       to_json(pg_stat_get_last_vacuum_time(t.oid)) #>> '{}' AS last_vacuum,
       coalesce((SELECT o.option_value::bool FROM pg_options_to_table(t.reloptions) o
                 WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum_enabled
FROM counts t
WHERE 100.0 * t.n_dead_tup / greatest(t.n_live_tup + t.n_dead_tup, 1) >= $2::float8
ORDER BY t.n_dead_tup DESC, table_name
LIMIT $3::int8";

#[async_trait::async_trait]
impl Check for DeadTuples {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_dead = ctx.param("min_dead_tuples");
        let warning_dead = ctx.param("warning_dead_tuples");
        let min_percent = super::min_percent(ctx);
        let rows = ctx
            .query(SQL, &[&min_dead, &min_percent, &limit(ctx)])
            .await?;
        let mut findings = Vec::new();
        for row in rows {
            let percent: f64 = row.get("dead_percent");
            let Some(severity) = ctx.severity_above(percent) else {
                continue;
            };
            let table: String = row.get("table_name");
            let dead: i64 = row.get("n_dead_tup");
            let few = (dead as f64) < warning_dead;
            let severity = if few { Severity::Info } else { severity };
            let autovacuum_enabled: bool = row.get("autovacuum_enabled");
            let finding = Finding::new(
                severity,
                format!("table {table}"),
                format!(
                    "{dead} dead tuples, {percent:.0}% of the rows (threshold {:.0}%){}{}",
                    ctx.param("warning"),
                    if autovacuum_enabled {
                        ""
                    } else {
                        "; autovacuum is disabled on it"
                    },
                    if few {
                        format!("; fewer than {warning_dead:.0}, so info only")
                    } else {
                        String::new()
                    }
                ),
            )
            .with("table", table)
            .with("n_dead_tup", dead)
            .with("n_live_tup", row.get::<_, i64>("n_live_tup"))
            .with("dead_percent", round1(percent));
            findings.push(
                with_vacuum_times(finding, &row).with("autovacuum_enabled", autovacuum_enabled),
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

    #[tokio::test]
    async fn reports_a_table_full_of_dead_rows() {
        let dsn = seeded_database(
            "CREATE TABLE queue (id int, payload text) WITH (autovacuum_enabled = false);
              INSERT INTO queue SELECT g, 'x' FROM generate_series(1, 20000) g;
              DELETE FROM queue WHERE id <= 15000;
              CREATE TABLE clean (id int) WITH (autovacuum_enabled = false);
              INSERT INTO clean SELECT g FROM generate_series(1, 20000) g;
              DELETE FROM clean WHERE id <= 100;
              CREATE TABLE backlog (id int) WITH (autovacuum_enabled = false);
              INSERT INTO backlog SELECT g FROM generate_series(1, 3000) g;
              DELETE FROM backlog WHERE id <= 2000;",
            "create dead tuples",
        );
        // Statistics reach the shared counters asynchronously: poll.
        let overrides = [("min_dead_tuples", 50.0)];
        let finding = testkit::finding_where(&DeadTuples, &dsn, &overrides, |f| {
            text(f, "table") == Some("public.queue") && integer(f, "n_dead_tup") == Some(15000)
        })
        .await;
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(integer(&finding, "n_live_tup"), Some(5000));
        assert_eq!(number(&finding, "dead_percent"), Some(75.0));
        assert_eq!(
            finding
                .evidence("autovacuum_enabled")
                .and_then(|v| v.as_bool()),
            Some(false)
        );
        assert!(finding
            .evidence("last_autovacuum")
            .is_some_and(|v| v.is_null()));
        // 100 dead of 20000 (0.5%) is below the percentage threshold.
        let findings = testkit::findings(&DeadTuples, &dsn, &overrides).await;
        assert!(
            finding_about(&findings, "table", "public.clean").is_none(),
            "{findings:?}"
        );
        // Under the default thresholds 2000 dead tuples (67%) are shown, but only as info.
        let findings = testkit::findings(&DeadTuples, &dsn, &[]).await;
        let backlog = finding_about(&findings, "table", "public.backlog")
            .unwrap_or_else(|| panic!("public.backlog not shown by default: {findings:?}"));
        assert_eq!(backlog.severity, Severity::Info, "{backlog:?}");
        assert!(
            finding_about(&findings, "table", "public.queue")
                .is_some_and(|queue| queue.severity == Severity::Critical),
            "{findings:?}"
        );
    }
}
