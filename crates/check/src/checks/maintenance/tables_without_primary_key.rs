//! Tables without a primary key.
//!
//! Logical replication cannot replicate UPDATE or DELETE of a table without a replica identity
//! (by default the primary key); online-rebuild tools (pg_repack), CDC pipelines and most ORMs
//! need one; and duplicate rows creep in. Partitions are not reported (a partitioned table's
//! primary key covers them; the parent is reported instead), nor tables belonging to an
//! extension, nor temporary tables.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct TablesWithoutPrimaryKey;

static META: CheckMeta = CheckMeta {
    id: "tables-without-primary-key",
    category: Category::Schema,
    title: "Tables without a primary key",
    measures: "Ordinary and partitioned tables of the connected database with no PRIMARY KEY constraint.",
    params: &[
        Param { name: "min_rows", default: 0.0, unit: "rows", help: "ignore tables estimated to have fewer rows" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many tables, largest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without a primary key, logical replication fails on UPDATE/DELETE (\"cannot update table ... \
              because it does not have a replica identity\"), pg_repack refuses the table, and duplicate \
              rows cannot be prevented or told apart.",
        action: "Add a primary key. Build the unique index concurrently first, then attach it as the \
                 constraint (a short lock). If a suitable NOT NULL unique index already exists, use it. \
                 If no key exists at all, add an identity column.",
        next: "CREATE UNIQUE INDEX CONCURRENTLY <table>_pkey ON <table> (<columns>); \
               ALTER TABLE <table> ADD CONSTRAINT <table>_pkey PRIMARY KEY USING INDEX <table>_pkey;",
    },
};

const SQL: &str = "\
WITH keyless AS MATERIALIZED (
  -- the cheap tests first, over every table; names, extension membership and unique indexes
  -- only for the tables without a primary key
  SELECT c.oid, c.relname, c.relnamespace, c.relkind, c.reltuples, c.relreplident
  FROM pg_class c
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
    AND greatest(c.reltuples, 0) >= $1::float8
    AND c.oid NOT IN (SELECT i.indrelid FROM pg_index i WHERE i.indisprimary)
)
SELECT format('%I.%I', n.nspname, c.relname) AS table_name,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 END AS estimated_rows,
       c.relkind = 'p' AS partitioned,
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                 AND i.indpred IS NULL AND i.indexprs IS NULL) AS has_unique_index,
       CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing'
                           WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' END AS replica_identity
FROM keyless c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.reltuples DESC, table_name
LIMIT $2::int8";

#[async_trait::async_trait]
impl Check for TablesWithoutPrimaryKey {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_rows = ctx.param("min_rows");
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&min_rows, &super::limit(ctx)]).await? {
            let table: String = row.get("table_name");
            let rows: Option<i64> = row.get("estimated_rows");
            let has_unique_index: bool = row.get("has_unique_index");
            let replica_identity: String = row.get("replica_identity");
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("table {table}"),
                    format!(
                        "no primary key ({} rows{}; replica identity {replica_identity})",
                        rows.map_or_else(|| "unknown".to_string(), |r| format!("~{r}")),
                        if has_unique_index {
                            ", has a unique index"
                        } else {
                            ""
                        }
                    ),
                )
                .with("table", table)
                .with("estimated_rows", rows)
                .with("has_unique_index", has_unique_index)
                .with("replica_identity", replica_identity)
                .with("partitioned", row.get::<_, bool>("partitioned")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finding_about, integer, seeded_database, text};
    use super::*;
    use crate::testkit;

    #[tokio::test]
    async fn reports_tables_without_a_primary_key() {
        let dsn = seeded_database(
            "CREATE TABLE audit_log (at timestamptz, message text);
              INSERT INTO audit_log SELECT now(), 'x' FROM generate_series(1, 500);
              ANALYZE audit_log;
              CREATE TABLE tags (name text NOT NULL UNIQUE);
              CREATE TABLE customers (id int PRIMARY KEY);
              CREATE TABLE measurements (day date PRIMARY KEY) PARTITION BY RANGE (day);
              CREATE TABLE measurements_2024 PARTITION OF measurements
                FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
            "create tables",
        );
        let findings = testkit::findings(&TablesWithoutPrimaryKey, &dsn, &[]).await;
        let about = |name: &str| finding_about(&findings, "table", name);
        let log = about("public.audit_log").unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(log.severity, Severity::Warning);
        assert_eq!(integer(&log, "estimated_rows"), Some(500));
        assert_eq!(
            log.evidence("has_unique_index").and_then(|v| v.as_bool()),
            Some(false)
        );
        let tags = about("public.tags").unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(
            tags.evidence("has_unique_index").and_then(|v| v.as_bool()),
            Some(true)
        );
        for keyed in [
            "public.customers",
            "public.measurements",
            "public.measurements_2024",
        ] {
            assert!(
                about(keyed).is_none(),
                "{keyed} has a primary key: {findings:?}"
            );
        }
        // min_rows filters out small tables.
        let findings =
            testkit::findings(&TablesWithoutPrimaryKey, &dsn, &[("min_rows", 1000.0)]).await;
        assert!(findings
            .iter()
            .all(|f| text(f, "table") != Some("public.audit_log")));
    }
}
