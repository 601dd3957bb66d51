//! Invalid indexes: leftovers of a failed `CREATE INDEX CONCURRENTLY` or `REINDEX CONCURRENTLY`.
//!
//! Such an index is never used by queries yet is still maintained on every write, takes disk,
//! and — when it was meant to be UNIQUE — leaves the table without the constraint the
//! application believes it has. Indexes still being built (listed in
//! `pg_stat_progress_create_index`) are invalid by design and not reported.

use crate::finding::human_bytes;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct InvalidIndexes;

static META: CheckMeta = CheckMeta {
    id: "invalid-indexes",
    category: Category::Indexes,
    title: "Invalid indexes",
    measures: "Indexes marked invalid in pg_index (indisvalid = false) that are not being built right now.",
    params: &[Param {
        name: "max_findings",
        default: 20.0,
        unit: "count",
        help: "report at most this many indexes, largest first",
    }],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "An invalid index is updated by every write but never used by a query; a failed unique index \
              enforces nothing. Left alone it costs write throughput and disk and hides a missing constraint.",
        action: "Drop it without blocking writes, fix the cause (duplicates for a unique index, a deadlock \
                 or a cancelled session), then build it again concurrently. A `_ccnew`/`_ccold` suffix is \
                 a REINDEX CONCURRENTLY leftover: drop it, the original index is still there.",
        next: "DROP INDEX CONCURRENTLY <index>;  -- then re-run the evidence's definition with CONCURRENTLY",
    },
};

const SQL: &str = "\
SELECT format('%I.%I', n.nspname, ic.relname) AS index_name,
       format('%I.%I', tn.nspname, tc.relname) AS table_name,
       pg_get_indexdef(i.indexrelid) AS definition,
       (ic.relpages::int8 * current_setting('block_size')::int8) AS size_bytes,
       i.indisunique AS is_unique,
       ic.relkind = 'I' AS partitioned
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
WHERE NOT i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
ORDER BY size_bytes DESC, index_name
LIMIT $1::int8";

#[async_trait::async_trait]
impl Check for InvalidIndexes {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&super::limit(ctx)]).await? {
            let index: String = row.get("index_name");
            let table: String = row.get("table_name");
            let size: i64 = row.get("size_bytes");
            let is_unique: bool = row.get("is_unique");
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("index {index}"),
                    format!(
                        "invalid {}index on {table} ({}): maintained on every write, never used{}",
                        if is_unique { "unique " } else { "" },
                        human_bytes(size as f64),
                        if is_unique {
                            ", uniqueness not enforced"
                        } else {
                            ""
                        }
                    ),
                )
                .with("index", index)
                .with("table", table)
                .with("definition", row.get::<_, String>("definition"))
                .with("size_bytes", size)
                .with("is_unique", is_unique)
                .with("partitioned", row.get::<_, bool>("partitioned")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{integer, text};
    use super::*;
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_failed_concurrent_unique_index() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let primary = cluster.primary();
        primary
            .psql_db(
                &db,
                "CREATE TABLE users (id int, email text);
                 INSERT INTO users SELECT g, 'same@example.com' FROM generate_series(1, 1000) g;
                 CREATE INDEX users_id_idx ON users (id);",
            )
            .expect("create a table with duplicate emails");
        let failed = primary.psql_db(
            &db,
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);",
        );
        assert!(
            failed.is_err(),
            "the unique index must fail on duplicates: {failed:?}"
        );
        let dsn = primary.dsn_for(&db);
        let findings = testkit::findings(&InvalidIndexes, &dsn, &[]).await;
        let finding = findings
            .iter()
            .find(|f| text(f, "index") == Some("public.users_email_key"))
            .unwrap_or_else(|| panic!("invalid index not reported: {findings:?}"));
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(text(finding, "table"), Some("public.users"));
        assert_eq!(
            finding.evidence("is_unique").and_then(|v| v.as_bool()),
            Some(true)
        );
        let definition = text(finding, "definition").unwrap();
        assert!(
            definition.contains("UNIQUE INDEX users_email_key") && definition.contains("(email)"),
            "{definition}"
        );
        assert!(integer(finding, "size_bytes").is_some());
        // The valid index next to it is not reported.
        assert!(
            !findings
                .iter()
                .any(|f| text(f, "index") == Some("public.users_id_idx")),
            "{findings:?}"
        );
    }
}
