//! Unused indexes: indexes no query has scanned since the statistics were last reset.
//!
//! Every index is updated on every insert (and non-HOT update) of its table, costs WAL, backup
//! and cache space, and blocks HOT updates on its columns. One that is never read is pure cost.
//! Indexes that enforce something (primary key, unique, exclusion constraint) are never
//! reported: they work without being scanned. `idx_scan` only counts scans on this server, so a
//! primary's numbers say nothing about read replicas.
//!
//! Statistics younger than `min_stats_age_seconds` (a freshly started or reset server) cannot
//! tell an unused index from one whose queries have not run yet: such indexes are still shown,
//! but only as info and with that caveat. Statistics never reset have counted at least since
//! the server started, which is the age assumed for them.

use crate::finding::{human_bytes, human_duration};
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct UnusedIndexes;

static META: CheckMeta = CheckMeta {
    id: "unused-indexes",
    category: Category::Indexes,
    title: "Unused indexes",
    measures: "Non-unique, non-constraint indexes never scanned (idx_scan = 0) since the \
               database's statistics were reset, sized from pg_class.relpages.",
    params: &[
        Param { name: "min_bytes", default: 1_048_576.0, unit: "bytes", help: "ignore smaller indexes" },
        Param { name: "warning_bytes", default: 1_073_741_824.0, unit: "bytes", help: "unused indexes at least this big warn; smaller ones are info" },
        Param {
            name: "min_stats_age_seconds",
            default: 604_800.0,
            unit: "seconds",
            help: "statistics younger than this are too little history: unused indexes are then info only",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many indexes, largest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "An index nobody reads still slows every write to its table, prevents HOT updates on its \
              columns, and takes disk, WAL, backup and buffer cache space.",
        action: "Confirm it is unused everywhere before dropping it: idx_scan only counts this server, so \
                 check pg_stat_user_indexes on every read replica too, and make sure statistics cover a \
                 full business cycle (month-end jobs, reports). Then drop it without blocking writes, \
                 keeping its definition to recreate it if needed.",
        next: "SELECT pg_get_indexdef('<index>'::regclass);  -- keep it, then: DROP INDEX CONCURRENTLY <index>;",
    },
};

const SQL: &str = "\
WITH stats AS (
  -- never reset: the counters run at least since the server started
  SELECT r.stats_reset,
         EXTRACT(EPOCH FROM now() - coalesce(r.stats_reset, pg_postmaster_start_time()))::float8
           AS stats_age_seconds
  FROM pg_database d
  CROSS JOIN LATERAL (SELECT pg_stat_get_db_stat_reset_time(d.oid) AS stats_reset) r
  WHERE d.datname = current_database()
),
candidates AS MATERIALIZED (
  -- the size first, from pg_class alone: most indexes of a large schema are small
  SELECT ic.oid, ic.relname, ic.relnamespace,
         ic.relpages::int8 * current_setting('block_size')::int8 AS size_bytes
  FROM pg_class ic
  WHERE ic.relkind = 'i' AND ic.relpages::int8 * current_setting('block_size')::int8 >= $1::float8
),
unused AS (
  -- pg_stat_get_numscans directly: the pg_stat_user_indexes view is slow with many indexes
  SELECT format('%I.%I', n.nspname, c.relname) AS index_name,
         format('%I.%I', tn.nspname, tc.relname) AS table_name,
         c.size_bytes, pg_stat_get_numscans(i.indexrelid)::int8 AS idx_scan
  FROM candidates c
  JOIN pg_index i ON i.indexrelid = c.oid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  WHERE i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
    AND pg_stat_get_numscans(i.indexrelid) = 0
    AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
  ORDER BY c.size_bytes DESC, index_name
  LIMIT $2::int8
)
SELECT to_json(st.stats_reset) #>> '{}' AS stats_reset, st.stats_age_seconds, u.*
FROM (SELECT 1) one
LEFT JOIN stats st ON true
LEFT JOIN unused u ON true";

#[async_trait::async_trait]
impl Check for UnusedIndexes {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_bytes = ctx.param("min_bytes");
        let rows = ctx.query(SQL, &[&min_bytes, &super::limit(ctx)]).await?;
        let warning_bytes = ctx.param("warning_bytes");
        let min_age = ctx.param("min_stats_age_seconds");
        let mut findings = Vec::new();
        for row in rows {
            let Some(index) = row.get::<_, Option<String>>("index_name") else {
                continue;
            };
            let size: i64 = row.get("size_bytes");
            let stats_reset: Option<String> = row.get("stats_reset");
            let stats_age: Option<f64> = row.get("stats_age_seconds");
            let young = stats_age.is_some_and(|age| age < min_age);
            let severity = if !young && size as f64 >= warning_bytes {
                Severity::Warning
            } else {
                Severity::Info
            };
            let summary = match stats_age {
                Some(age) if young => format!(
                    "{} index with no scans since statistics began {} ago — too short to be sure \
                     (wants {} of history)",
                    human_bytes(size as f64),
                    human_duration(age),
                    human_duration(min_age)
                ),
                _ => format!(
                    "{} index never scanned since {} (threshold {})",
                    human_bytes(size as f64),
                    stats_reset.as_deref().unwrap_or("statistics began"),
                    human_bytes(min_bytes)
                ),
            };
            findings.push(
                Finding::new(severity, format!("index {index}"), summary)
                    .with("index", index)
                    .with("table", row.get::<_, String>("table_name"))
                    .with("size_bytes", size)
                    .with("idx_scan", row.get::<_, i64>("idx_scan"))
                    .with("stats_reset", stats_reset)
                    .with("stats_age_seconds", stats_age.map(f64::round)),
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
    async fn reports_a_never_scanned_index_but_not_a_used_one() {
        let dsn = seeded_database(
            "CREATE TABLE accounts (id int PRIMARY KEY, owner int, region int);
              INSERT INTO accounts SELECT g, g % 1000, g % 10 FROM generate_series(1, 20000) g;
              CREATE INDEX accounts_region_idx ON accounts (region);
              CREATE INDEX accounts_owner_idx ON accounts (owner);
              VACUUM ANALYZE accounts;
              SET enable_seqscan = off;
              SELECT count(*) FROM accounts WHERE owner = 1;",
            "create indexes and use one",
        );
        let overrides = [("min_bytes", 0.0), ("min_stats_age_seconds", 0.0)];
        // The scan of accounts_owner_idx reaches the statistics asynchronously: wait for it.
        testkit::eventually(
            std::time::Duration::from_secs(20),
            "accounts_owner_idx to be counted as scanned",
            || {
                let dsn = dsn.clone();
                async move {
                    let findings = testkit::findings(&UnusedIndexes, &dsn, &overrides).await;
                    finding_about(&findings, "index", "public.accounts_owner_idx")
                        .is_none()
                        .then_some(())
                }
            },
        )
        .await;
        let findings = testkit::findings(&UnusedIndexes, &dsn, &overrides).await;
        let unused = finding_about(&findings, "index", "public.accounts_region_idx")
            .unwrap_or_else(|| panic!("unused index not reported: {findings:?}"));
        assert_eq!(unused.severity, Severity::Info);
        assert_eq!(text(&unused, "table"), Some("public.accounts"));
        assert_eq!(integer(&unused, "idx_scan"), Some(0));
        assert!(integer(&unused, "size_bytes").unwrap() > 0, "{unused:?}");
        // The primary key is never reported, scanned or not.
        assert!(
            finding_about(&findings, "index", "public.accounts_pkey").is_none(),
            "{findings:?}"
        );
        // The test server's statistics are minutes old: still shown, as info with the caveat.
        let findings = testkit::findings(&UnusedIndexes, &dsn, &[("min_bytes", 0.0)]).await;
        let young = finding_about(&findings, "index", "public.accounts_region_idx")
            .unwrap_or_else(|| panic!("not shown with young statistics: {findings:?}"));
        assert_eq!(young.severity, Severity::Info);
        assert!(young.summary.contains("too short to be sure"), "{young:?}");
        assert!(
            number(&young, "stats_age_seconds").is_some_and(|age| (0.0..604_800.0).contains(&age)),
            "{young:?}"
        );
    }
}
