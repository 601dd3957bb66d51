//! Unused indexes: indexes no query has scanned since the statistics were last reset.
//!
//! Every index is updated on every insert (and non-HOT update) of its table, costs WAL, backup
//! and cache space, and blocks HOT updates on its columns. One that is never read is pure cost.
//! Indexes that enforce something (primary key, unique, exclusion constraint) are never
//! reported: they work without being scanned. `idx_scan` only counts scans on this server, so a
//! primary's numbers say nothing about read replicas.

use crate::finding::human_bytes;
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
        Param { name: "min_bytes", default: 10_485_760.0, unit: "bytes", help: "ignore smaller indexes" },
        Param { name: "warning_bytes", default: 1_073_741_824.0, unit: "bytes", help: "unused indexes at least this big warn; smaller ones are info" },
        Param {
            name: "min_stats_age_seconds",
            default: 604_800.0,
            unit: "seconds",
            help: "skip the check when statistics were reset more recently than this (too little history)",
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
  SELECT d.stats_reset, EXTRACT(EPOCH FROM now() - d.stats_reset)::float8 AS stats_age_seconds
  FROM pg_stat_database d
  WHERE d.datname = current_database()
),
unused AS (
  -- pg_stat_get_numscans directly: the pg_stat_user_indexes view is slow with many indexes
  SELECT format('%I.%I', n.nspname, ic.relname) AS index_name,
         format('%I.%I', tn.nspname, tc.relname) AS table_name,
         (ic.relpages::int8 * current_setting('block_size')::int8) AS size_bytes,
         pg_stat_get_numscans(i.indexrelid)::int8 AS idx_scan
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  WHERE ic.relkind = 'i' AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
    AND ic.relpages::int8 * current_setting('block_size')::int8 >= $1::float8
    AND pg_stat_get_numscans(i.indexrelid) = 0
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
  ORDER BY size_bytes DESC, index_name
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
        let limit = ctx.param("max_findings").max(1.0) as i64;
        let rows = ctx.query(SQL, &[&min_bytes, &limit]).await?;
        if let Some(age) = rows
            .first()
            .and_then(|r| r.get::<_, Option<f64>>("stats_age_seconds"))
        {
            let min_age = ctx.param("min_stats_age_seconds");
            if age < min_age {
                return Err(CheckError::NotApplicable(format!(
                    "statistics were reset {} ago; idx_scan needs at least {} of history",
                    crate::finding::human_duration(age),
                    crate::finding::human_duration(min_age)
                )));
            }
        }
        let warning_bytes = ctx.param("warning_bytes");
        let mut findings = Vec::new();
        for row in rows {
            let Some(index) = row.get::<_, Option<String>>("index_name") else {
                continue;
            };
            let size: i64 = row.get("size_bytes");
            let severity = if size as f64 >= warning_bytes {
                Severity::Warning
            } else {
                Severity::Info
            };
            let stats_reset: Option<String> = row.get("stats_reset");
            findings.push(
                Finding::new(
                    severity,
                    format!("index {index}"),
                    format!(
                        "{} index never scanned since {} (threshold {})",
                        human_bytes(size as f64),
                        stats_reset.as_deref().unwrap_or("statistics began"),
                        human_bytes(min_bytes)
                    ),
                )
                .with("index", index)
                .with("table", row.get::<_, String>("table_name"))
                .with("size_bytes", size)
                .with("idx_scan", row.get::<_, i64>("idx_scan"))
                .with("stats_reset", stats_reset),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_never_scanned_index_but_not_a_used_one() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let primary = cluster.primary();
        primary
            .psql_db(
                &db,
                "CREATE TABLE accounts (id int PRIMARY KEY, owner int, region int);
                 INSERT INTO accounts SELECT g, g % 1000, g % 10 FROM generate_series(1, 20000) g;
                 CREATE INDEX accounts_region_idx ON accounts (region);
                 CREATE INDEX accounts_owner_idx ON accounts (owner);
                 VACUUM ANALYZE accounts;
                 SET enable_seqscan = off;
                 SELECT count(*) FROM accounts WHERE owner = 1;",
            )
            .expect("create indexes and use one");
        let dsn = primary.dsn_for(&db);
        let overrides = [("min_bytes", 0.0), ("min_stats_age_seconds", 0.0)];
        // The scan of accounts_owner_idx reaches the statistics asynchronously: wait for it.
        testkit::eventually(
            std::time::Duration::from_secs(20),
            "accounts_owner_idx to be counted as scanned",
            || {
                let dsn = dsn.clone();
                async move {
                    let findings = testkit::findings(&UnusedIndexes, &dsn, &overrides).await;
                    let named = |name: &str| {
                        findings
                            .iter()
                            .any(|f| f.evidence("index").and_then(|v| v.as_str()) == Some(name))
                    };
                    (!named("public.accounts_owner_idx")).then_some(())
                }
            },
        )
        .await;
        let findings = testkit::findings(&UnusedIndexes, &dsn, &overrides).await;
        let unused = findings
            .iter()
            .find(|f| {
                f.evidence("index").and_then(|v| v.as_str()) == Some("public.accounts_region_idx")
            })
            .unwrap_or_else(|| panic!("unused index not reported: {findings:?}"));
        assert_eq!(unused.severity, Severity::Info);
        assert_eq!(
            unused.evidence("table").and_then(|v| v.as_str()),
            Some("public.accounts")
        );
        assert_eq!(
            unused.evidence("idx_scan").and_then(|v| v.as_i64()),
            Some(0)
        );
        assert!(
            unused
                .evidence("size_bytes")
                .and_then(|v| v.as_i64())
                .unwrap()
                > 0,
            "{unused:?}"
        );
        // The primary key is never reported, scanned or not.
        assert!(
            !findings
                .iter()
                .any(|f| f.evidence("index").and_then(|v| v.as_str())
                    == Some("public.accounts_pkey")),
            "{findings:?}"
        );
    }
}
