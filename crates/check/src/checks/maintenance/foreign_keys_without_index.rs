//! Foreign keys whose referencing columns have no index.
//!
//! Every `DELETE` or key `UPDATE` on the referenced (parent) table must find the referencing
//! rows; without an index on the foreign-key columns that is a sequential scan of the child
//! table per parent row, done while holding locks — the classic cause of a "simple" delete
//! that takes minutes and blocks everything behind it.

use crate::finding::human_bytes;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct ForeignKeysWithoutIndex;

static META: CheckMeta = CheckMeta {
    id: "foreign-keys-without-index",
    category: Category::Indexes,
    title: "Foreign keys without an index",
    measures: "Foreign-key constraints whose referencing columns are not the leading columns of any valid, non-partial index on the referencing table.",
    params: &[
        Param { name: "warning_bytes", default: 104_857_600.0, unit: "bytes", help: "referencing tables at least this big warn; smaller ones are info" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many constraints, largest table first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Deleting or re-keying a parent row makes PostgreSQL look up the referencing rows; without an \
              index that is a sequential scan of the child table for every parent row, under a lock. Bulk \
              deletes on the parent become hours long and block writers on both tables.",
        action: "Create an index on the referencing columns, in the constraint's column order, without \
                 blocking writes (CREATE INDEX CONCURRENTLY). Skip it only if the parent is never deleted \
                 from or re-keyed and the child is small.",
        next: "CREATE INDEX CONCURRENTLY ON <table> (<columns>);  -- the exact statement is in the evidence",
    },
};

/// The referencing columns are covered when they are, in any order, the leading columns of a
/// valid, non-partial index (`indkey` is 0-based).
const SQL: &str = "\
SELECT c.conname::text AS constraint_name,
       format('%I.%I', n.nspname, t.relname) AS table_name,
       c.confrelid::regclass::text AS referenced_table,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
          FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
       t.relpages::int8 * current_setting('block_size')::int8 AS table_bytes,
       t.reltuples::float8 AS estimated_rows
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE c.contype = 'f'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
  AND NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = c.conrelid
          AND i.indisvalid
          AND i.indpred IS NULL
          AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey)
ORDER BY t.relpages DESC, 2, 1";

#[async_trait::async_trait]
impl Check for ForeignKeysWithoutIndex {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let warning_bytes = ctx.param("warning_bytes");
        let max = ctx.param("max_findings").max(0.0) as usize;
        let rows = ctx.query(SQL, &[]).await?;
        let mut findings = Vec::new();
        for row in rows.iter().take(max) {
            let table: String = row.get("table_name");
            let columns: String = row.get("columns");
            let bytes: i64 = row.get("table_bytes");
            let severity = if bytes as f64 >= warning_bytes {
                Severity::Warning
            } else {
                Severity::Info
            };
            let constraint: String = row.get("constraint_name");
            findings.push(
                Finding::new(
                    severity,
                    format!("constraint {constraint} on {table}"),
                    format!(
                        "foreign key ({columns}) → {} has no index on {table} ({}): parent deletes scan it",
                        row.get::<_, String>("referenced_table"),
                        human_bytes(bytes as f64)
                    ),
                )
                .with("table", table.clone())
                .with("constraint", constraint)
                .with("columns", columns.clone())
                .with("referenced_table", row.get::<_, String>("referenced_table"))
                .with("table_bytes", bytes)
                .with("estimated_rows", row.get::<_, f64>("estimated_rows").max(0.0).round())
                .with("fix", format!("CREATE INDEX CONCURRENTLY ON {table} ({columns});")),
            );
        }
        if rows.len() > max {
            findings.push(Finding::new(
                Severity::Info,
                "database",
                format!(
                    "{} more foreign keys without an index not listed (max_findings = {max})",
                    rows.len() - max
                ),
            ));
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::seeded_database;
    use super::*;
    use crate::testkit;

    #[tokio::test]
    async fn reports_an_unindexed_foreign_key_and_not_an_indexed_one() {
        let dsn = seeded_database(
            "CREATE TABLE customers (id int PRIMARY KEY);
              CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
              CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers, n int);
              CREATE INDEX invoices_customer ON invoices (customer_id, n);
              CREATE TABLE lines (order_id int, line int, tenant int,
                                  FOREIGN KEY (order_id) REFERENCES orders);
              CREATE INDEX lines_partial ON lines (order_id) WHERE tenant = 1;",
            "create schema",
        );
        let findings = testkit::findings(&ForeignKeysWithoutIndex, &dsn, &[]).await;
        let tables: Vec<_> = findings
            .iter()
            .filter_map(|f| f.evidence("table")?.as_str())
            .collect();
        assert!(tables.contains(&"public.orders"), "{findings:#?}");
        assert!(
            tables.contains(&"public.lines"),
            "a partial index does not cover the key: {findings:#?}"
        );
        assert!(
            !tables.contains(&"public.invoices"),
            "a leading-column index covers the key"
        );
        let orders = findings
            .iter()
            .find(|f| f.evidence("table").and_then(|v| v.as_str()) == Some("public.orders"))
            .unwrap();
        assert_eq!(orders.severity, Severity::Info);
        assert_eq!(
            orders.evidence("columns").and_then(|v| v.as_str()),
            Some("customer_id")
        );
        assert_eq!(
            orders.evidence("fix").and_then(|v| v.as_str()),
            Some("CREATE INDEX CONCURRENTLY ON public.orders (customer_id);")
        );
    }
}
