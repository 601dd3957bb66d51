//! Duplicate and redundant indexes: an index another index on the same table already provides.
//!
//! Two kinds: exact duplicates (same access method, columns, operator classes, collations,
//! ordering, expressions and predicate) and redundant prefixes (a plain B-tree whose columns
//! are the leading columns of another B-tree with the same predicate, so the longer one serves
//! its queries). Of each pair the one to keep is the primary key, then a constraint's index,
//! then a unique index, then the older; the other is reported once, naming the one it
//! duplicates.

use crate::finding::human_bytes;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct DuplicateIndexes;

static META: CheckMeta = CheckMeta {
    id: "duplicate-indexes",
    category: Category::Indexes,
    title: "Duplicate and redundant indexes",
    measures: "Indexes identical to another index on the same table (pg_index keys, opclasses, collations, \
               options, expressions, predicate), or plain B-trees that are a leading prefix of another B-tree.",
    params: &[Param {
        name: "max_findings",
        default: 20.0,
        unit: "count",
        help: "report at most this many indexes, largest first",
    }],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "A duplicate index doubles the write cost and the disk, WAL and cache footprint of the index \
              it copies while serving no query the other could not.",
        action: "Drop the reported index (the evidence names the one that stays). If the reported index \
                 backs a constraint, drop or re-point the constraint instead. For a redundant prefix, check \
                 first that no query needs the smaller index's size (e.g. a very wide second column).",
        next: "DROP INDEX CONCURRENTLY <index>;",
    },
};

const SQL: &str = "\
WITH idx AS (
  SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary,
         i.indnkeyatts::int4 AS nkeys, i.indnatts::int4 AS natts, ic.relam,
         i.indkey::int2[] AS keys, i.indclass::oid[] AS opclasses,
         i.indcollation::oid[] AS collations, i.indoption::int2[] AS options,
         pg_get_expr(i.indexprs, i.indrelid) AS exprs, pg_get_expr(i.indpred, i.indrelid) AS pred,
         EXISTS (SELECT 1 FROM pg_constraint con
                 WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid) AS backs_constraint,
         ic.relpages::int8 * current_setting('block_size')::int8 AS size_bytes,
         n.nspname, ic.relname
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  WHERE i.indisvalid
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
ranked AS (
  -- which of two equivalent indexes to keep: primary key, then constraint, then unique, then oldest
  SELECT idx.*,
         CASE WHEN indisprimary THEN 3 WHEN backs_constraint THEN 2 WHEN indisunique THEN 1 ELSE 0 END
           AS keep_rank
  FROM idx
),
pairs AS (
  SELECT a.indexrelid, b.indexrelid AS kept_oid, 'duplicate' AS kind, b.keep_rank AS kept_rank
  FROM ranked a
  JOIN ranked b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
   AND b.relam = a.relam AND b.nkeys = a.nkeys AND b.keys = a.keys AND b.opclasses = a.opclasses
   AND b.collations = a.collations AND b.options = a.options
   AND b.exprs IS NOT DISTINCT FROM a.exprs AND b.pred IS NOT DISTINCT FROM a.pred
  -- report the worse of the two: lower keep_rank, or on a tie the younger (higher oid)
  WHERE (a.keep_rank, b.indexrelid) < (b.keep_rank, a.indexrelid)
  UNION ALL
  SELECT a.indexrelid, b.indexrelid, 'redundant prefix', b.keep_rank
  FROM ranked a
  JOIN ranked b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
   AND a.keep_rank = 0 AND a.exprs IS NULL AND b.exprs IS NULL
   AND a.natts = a.nkeys AND a.nkeys < b.nkeys
   -- slices on both sides: array equality also compares lower bounds (int2vector starts at 0)
   AND a.keys[0:a.nkeys - 1] = b.keys[0:a.nkeys - 1]
   AND a.opclasses[0:a.nkeys - 1] = b.opclasses[0:a.nkeys - 1]
   AND a.collations[0:a.nkeys - 1] = b.collations[0:a.nkeys - 1]
   AND a.options[0:a.nkeys - 1] = b.options[0:a.nkeys - 1]
   AND b.pred IS NOT DISTINCT FROM a.pred
  WHERE a.relam = (SELECT am.oid FROM pg_am am WHERE am.amname = 'btree')
),
best AS (
  -- one finding per reported index: an exact duplicate first, then the best index to keep
  SELECT DISTINCT ON (p.indexrelid) p.*
  FROM pairs p
  ORDER BY p.indexrelid, (p.kind = 'duplicate') DESC, p.kept_rank DESC, p.kept_oid
)
SELECT format('%I.%I', a.nspname, a.relname) AS index_name,
       format('%I.%I', k.nspname, k.relname) AS duplicate_of,
       format('%I.%I', tn.nspname, tc.relname) AS table_name,
       a.size_bytes, b.kind, a.keep_rank > 0 AS enforces_constraint,
       pg_get_indexdef(a.indexrelid) AS definition,
       pg_get_indexdef(k.indexrelid) AS duplicate_of_definition
FROM best b
JOIN ranked a ON a.indexrelid = b.indexrelid
JOIN ranked k ON k.indexrelid = b.kept_oid
JOIN pg_class tc ON tc.oid = a.indrelid
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
ORDER BY a.size_bytes DESC, index_name
LIMIT $1::int8";

#[async_trait::async_trait]
impl Check for DuplicateIndexes {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let limit = ctx.param("max_findings").max(1.0) as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&limit]).await? {
            let index: String = row.get("index_name");
            let duplicate_of: String = row.get("duplicate_of");
            let kind: String = row.get("kind");
            let size: i64 = row.get("size_bytes");
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("index {index}"),
                    format!("{} is a {kind} of {duplicate_of}", human_bytes(size as f64)),
                )
                .with("index", index)
                .with("duplicate_of", duplicate_of)
                .with("table", row.get::<_, String>("table_name"))
                .with("size_bytes", size)
                .with("kind", kind)
                .with(
                    "enforces_constraint",
                    row.get::<_, bool>("enforces_constraint"),
                )
                .with("definition", row.get::<_, String>("definition"))
                .with(
                    "duplicate_of_definition",
                    row.get::<_, String>("duplicate_of_definition"),
                ),
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
    async fn reports_exact_duplicates_and_redundant_prefixes() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        cluster
            .primary()
            .psql_db(
                &db,
                "CREATE TABLE payments (id int PRIMARY KEY, customer int, created date, status text);
                 CREATE INDEX payments_id_copy ON payments (id);
                 CREATE INDEX payments_customer_created ON payments (customer, created);
                 CREATE INDEX payments_customer ON payments (customer);
                 CREATE INDEX payments_customer_desc ON payments (customer DESC);
                 CREATE INDEX payments_open ON payments (status) WHERE status = 'open';
                 CREATE INDEX payments_status ON payments (status);",
            )
            .expect("create duplicate indexes");
        let dsn = cluster.primary().dsn_for(&db);
        let findings = testkit::findings(&DuplicateIndexes, &dsn, &[]).await;
        let about = |name: &str| {
            findings
                .iter()
                .find(|f| f.evidence("index").and_then(|v| v.as_str()) == Some(name))
                .cloned()
        };
        let copy = about("public.payments_id_copy")
            .unwrap_or_else(|| panic!("duplicate not reported: {findings:?}"));
        assert_eq!(
            copy.evidence("kind").and_then(|v| v.as_str()),
            Some("duplicate")
        );
        assert_eq!(
            copy.evidence("duplicate_of").and_then(|v| v.as_str()),
            Some("public.payments_pkey")
        );
        assert_eq!(
            copy.evidence("table").and_then(|v| v.as_str()),
            Some("public.payments")
        );
        assert!(copy
            .evidence("size_bytes")
            .and_then(|v| v.as_i64())
            .is_some());
        let prefix = about("public.payments_customer")
            .unwrap_or_else(|| panic!("prefix not reported: {findings:?}"));
        assert_eq!(
            prefix.evidence("kind").and_then(|v| v.as_str()),
            Some("redundant prefix")
        );
        assert_eq!(
            prefix.evidence("duplicate_of").and_then(|v| v.as_str()),
            Some("public.payments_customer_created")
        );
        // Kept indexes, a different sort order and a different predicate are not duplicates.
        for kept in [
            "public.payments_pkey",
            "public.payments_customer_created",
            "public.payments_customer_desc",
            "public.payments_open",
            "public.payments_status",
        ] {
            assert!(
                about(kept).is_none(),
                "{kept} wrongly reported: {findings:?}"
            );
        }
    }
}
