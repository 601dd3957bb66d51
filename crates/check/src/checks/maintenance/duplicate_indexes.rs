//! Duplicate and redundant indexes: an index another index on the same table already provides.
//!
//! Two kinds: exact duplicates (same access method, columns, operator classes, collations,
//! ordering, expressions and predicate) and redundant prefixes (a plain B-tree whose columns
//! are the leading columns of another B-tree with the same predicate, so the longer one serves
//! its queries). Of each pair the one to keep is the primary key, then a constraint's index,
//! then a unique index, then the older; the other is reported once, naming the one it
//! duplicates (for a prefix, the shortest longer index).

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
WITH shared_first_keys AS (
  -- a duplicate or a redundant prefix shares its table and first key column (0 for an
  -- expression) with another valid index: only such indexes are compared in full, which on a
  -- schema of thousands of tables is a handful
  SELECT i.indrelid, i.indkey[0] AS first_key
  FROM pg_index i
  WHERE i.indisvalid
  GROUP BY i.indrelid, i.indkey[0]
  HAVING count(*) > 1
),
idx AS MATERIALIZED (
  SELECT i.indexrelid, i.indrelid, i.indnkeyatts::int4 AS nkeys, i.indnatts::int4 AS natts, ic.relam,
         i.indkey::int2[] AS keys, i.indclass::oid[] AS opclasses,
         i.indcollation::oid[] AS collations, i.indoption::int2[] AS options, i.indexprs, i.indpred,
         -- which of two equivalent indexes to keep: primary key, then constraint, then unique, then oldest
         CASE WHEN i.indisprimary THEN 3
              WHEN EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid) THEN 2
              WHEN i.indisunique THEN 1 ELSE 0 END AS keep_rank
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  -- an array, so that the few tables are looked up by index rather than joined by a full scan
  WHERE i.indrelid = ANY (ARRAY(SELECT s.indrelid FROM shared_first_keys s))
    AND (i.indrelid, i.indkey[0]) IN (SELECT s.indrelid, s.first_key FROM shared_first_keys s)
    AND i.indisvalid
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
duplicates AS (
  -- exact duplicates share everything; the first of each group (best keep_rank, oldest) stays
  SELECT g.indexrelid, g.kept_oid, 'duplicate' AS kind, 1 AS preference
  FROM (
    SELECT x.indexrelid, first_value(x.indexrelid) OVER w AS kept_oid, row_number() OVER w AS position
    FROM idx x
    WINDOW w AS (PARTITION BY x.indrelid, x.relam, x.nkeys, x.keys, x.opclasses, x.collations, x.options,
                              pg_get_expr(x.indexprs, x.indrelid), pg_get_expr(x.indpred, x.indrelid)
                 ORDER BY x.keep_rank DESC, x.indexrelid)
  ) g
  WHERE g.position > 1
),
prefixes AS (
  -- a plain B-tree whose key columns lead another B-tree's keys, with the same predicate
  SELECT a.indexrelid, p.kept_oid, 'redundant prefix' AS kind, 2 AS preference
  FROM idx a
  CROSS JOIN LATERAL (
    SELECT b.indexrelid AS kept_oid
    FROM idx b
    WHERE b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
      AND b.relam = a.relam AND b.indexprs IS NULL AND b.nkeys > a.nkeys
      -- slices on both sides: array equality also compares lower bounds (int2vector starts at 0)
      AND b.keys[0:a.nkeys - 1] = a.keys[0:a.nkeys - 1]
      AND b.opclasses[0:a.nkeys - 1] = a.opclasses[0:a.nkeys - 1]
      AND b.collations[0:a.nkeys - 1] = a.collations[0:a.nkeys - 1]
      AND b.options[0:a.nkeys - 1] = a.options[0:a.nkeys - 1]
      AND pg_get_expr(b.indpred, b.indrelid) IS NOT DISTINCT FROM pg_get_expr(a.indpred, a.indrelid)
    ORDER BY b.nkeys, b.indexrelid
    LIMIT 1
  ) p
  WHERE a.keep_rank = 0 AND a.indexprs IS NULL AND a.natts = a.nkeys
    AND a.relam = (SELECT am.oid FROM pg_am am WHERE am.amname = 'btree')
),
best AS (
  -- one finding per reported index, an exact duplicate first
  SELECT DISTINCT ON (f.indexrelid) f.*
  FROM (SELECT * FROM duplicates UNION ALL SELECT * FROM prefixes) f
  ORDER BY f.indexrelid, f.preference
),
worst AS (
  -- names and definitions for the reported few only
  SELECT b.*, a.indrelid, a.keep_rank,
         format('%I.%I', an.nspname, ac.relname) AS index_name,
         (ac.relpages::int8 * current_setting('block_size')::int8) AS size_bytes
  FROM best b
  JOIN idx a ON a.indexrelid = b.indexrelid
  JOIN pg_class ac ON ac.oid = b.indexrelid
  JOIN pg_namespace an ON an.oid = ac.relnamespace
  ORDER BY size_bytes DESC, index_name
  LIMIT $1::int8
)
SELECT w.index_name,
       format('%I.%I', kn.nspname, kc.relname) AS duplicate_of,
       format('%I.%I', tn.nspname, tc.relname) AS table_name,
       w.size_bytes, w.kind,
       w.keep_rank > 0 AS enforces_constraint,
       pg_get_indexdef(w.indexrelid) AS definition,
       pg_get_indexdef(w.kept_oid) AS duplicate_of_definition
FROM worst w
JOIN pg_class kc ON kc.oid = w.kept_oid
JOIN pg_namespace kn ON kn.oid = kc.relnamespace
JOIN pg_class tc ON tc.oid = w.indrelid
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
ORDER BY w.size_bytes DESC, w.index_name";

#[async_trait::async_trait]
impl Check for DuplicateIndexes {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&super::limit(ctx)]).await? {
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
    use super::super::test_support::{finding_about, integer, seeded_database, text};
    use super::*;
    use crate::testkit;

    #[tokio::test]
    async fn reports_exact_duplicates_and_redundant_prefixes() {
        let dsn = seeded_database(
            "CREATE TABLE payments (id int PRIMARY KEY, customer int, created date, status text);
              CREATE INDEX payments_id_copy ON payments (id);
              CREATE INDEX payments_customer_created ON payments (customer, created);
              CREATE INDEX payments_customer ON payments (customer);
              CREATE INDEX payments_customer_desc ON payments (customer DESC);
              CREATE INDEX payments_open ON payments (status) WHERE status = 'open';
              CREATE INDEX payments_status ON payments (status);",
            "create duplicate indexes",
        );
        let findings = testkit::findings(&DuplicateIndexes, &dsn, &[]).await;
        let about = |name: &str| finding_about(&findings, "index", name);
        let copy = about("public.payments_id_copy")
            .unwrap_or_else(|| panic!("duplicate not reported: {findings:?}"));
        assert_eq!(text(&copy, "kind"), Some("duplicate"));
        assert_eq!(text(&copy, "duplicate_of"), Some("public.payments_pkey"));
        assert_eq!(text(&copy, "table"), Some("public.payments"));
        assert!(integer(&copy, "size_bytes").is_some());
        let prefix = about("public.payments_customer")
            .unwrap_or_else(|| panic!("prefix not reported: {findings:?}"));
        assert_eq!(text(&prefix, "kind"), Some("redundant prefix"));
        assert_eq!(
            text(&prefix, "duplicate_of"),
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
