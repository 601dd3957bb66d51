//! Dead tuples: tables where a large share of the row versions are dead and not yet vacuumed.
//!
//! Dead tuples are the raw material of bloat: until vacuum removes them every scan reads past
//! them. A high share on a table means vacuum is not running there, is being held back (old
//! snapshot, slot, prepared transaction), or runs too rarely for the write rate;
//! [`super::autovacuum_lagging`] tells which.

use super::{limit, round1};
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

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
        Param { name: "min_dead_tuples", default: 10_000.0, unit: "count", help: "ignore tables with fewer dead tuples" },
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
WITH counts AS MATERIALIZED (
  -- the statistics functions directly: the pg_stat_user_tables view computes every counter of
  -- every table, which is slow with thousands of them
  SELECT c.oid, n.nspname, c.relname, c.reloptions,
         pg_stat_get_dead_tuples(c.oid)::int8 AS n_dead_tup,
         pg_stat_get_live_tuples(c.oid)::int8 AS n_live_tup
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
)
SELECT format('%I.%I', t.nspname, t.relname) AS table_name, t.n_dead_tup, t.n_live_tup,
       (100.0 * t.n_dead_tup / greatest(t.n_live_tup + t.n_dead_tup, 1))::float8 AS dead_percent,
       to_json(pg_stat_get_last_autovacuum_time(t.oid)) #>> '{}' AS last_autovacuum,
       to_json(pg_stat_get_last_vacuum_time(t.oid)) #>> '{}' AS last_vacuum,
       coalesce((SELECT o.option_value::bool FROM pg_options_to_table(t.reloptions) o
                 WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum_enabled
FROM counts t
WHERE t.n_dead_tup >= $1::float8
  AND 100.0 * t.n_dead_tup / greatest(t.n_live_tup + t.n_dead_tup, 1) >= $2::float8
ORDER BY t.n_dead_tup DESC, table_name
LIMIT $3::int8";

#[async_trait::async_trait]
impl Check for DeadTuples {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_dead = ctx.param("min_dead_tuples");
        let min_percent = ctx.param("warning").min(ctx.param("critical"));
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
            let autovacuum_enabled: bool = row.get("autovacuum_enabled");
            findings.push(
                Finding::new(
                    severity,
                    format!("table {table}"),
                    format!(
                        "{dead} dead tuples, {percent:.0}% of the rows (threshold {:.0}%){}",
                        ctx.param("warning"),
                        if autovacuum_enabled {
                            ""
                        } else {
                            "; autovacuum is disabled on it"
                        }
                    ),
                )
                .with("table", table)
                .with("n_dead_tup", dead)
                .with("n_live_tup", row.get::<_, i64>("n_live_tup"))
                .with("dead_percent", round1(percent))
                .with(
                    "last_autovacuum",
                    row.get::<_, Option<String>>("last_autovacuum"),
                )
                .with("last_vacuum", row.get::<_, Option<String>>("last_vacuum"))
                .with("autovacuum_enabled", autovacuum_enabled),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_table_full_of_dead_rows() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        cluster
            .primary()
            .psql_db(
                &db,
                "CREATE TABLE queue (id int, payload text) WITH (autovacuum_enabled = false);
                 INSERT INTO queue SELECT g, 'x' FROM generate_series(1, 20000) g;
                 DELETE FROM queue WHERE id <= 15000;
                 CREATE TABLE clean (id int) WITH (autovacuum_enabled = false);
                 INSERT INTO clean SELECT g FROM generate_series(1, 20000) g;
                 DELETE FROM clean WHERE id <= 100;",
            )
            .expect("create dead tuples");
        let dsn = cluster.primary().dsn_for(&db);
        // Statistics reach the shared counters asynchronously: poll.
        let overrides = [("min_dead_tuples", 50.0)];
        let finding = testkit::finding_where(&DeadTuples, &dsn, &overrides, |f| {
            f.evidence("table").and_then(|v| v.as_str()) == Some("public.queue")
                && f.evidence("n_dead_tup").and_then(|v| v.as_i64()) == Some(15000)
        })
        .await;
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(
            finding.evidence("n_live_tup").and_then(|v| v.as_i64()),
            Some(5000)
        );
        assert_eq!(
            finding.evidence("dead_percent").and_then(|v| v.as_f64()),
            Some(75.0)
        );
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
            !findings
                .iter()
                .any(|f| f.evidence("table").and_then(|v| v.as_str()) == Some("public.clean")),
            "{findings:?}"
        );
    }
}
