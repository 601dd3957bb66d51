//! B-tree index bloat: leaf pages holding far fewer entries than they could, estimated from
//! statistics.
//!
//! The same statistics-based estimate as [`super::table_bloat`], applied to B-tree leaf pages:
//! an index tuple is an 8 B header, a 4 B null bitmap when a column has nulls and the `pg_stats`
//! average width of each indexed column (of the table for plain columns, of the index itself for
//! expressions), MAXALIGNed, plus its line pointer; a leaf page holds them up to the index's
//! fillfactor (90 by default) after the page header and the B-tree special space. The index's
//! `relpages` beyond that (and its meta page) is bloat. B-tree deduplication (PostgreSQL 13+)
//! only makes indexes smaller than estimated, so it can hide bloat but never invent it.

use super::{limit, round1};
use crate::finding::human_bytes;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct IndexBloat;

static META: CheckMeta = CheckMeta {
    id: "index-bloat",
    category: Category::Maintenance,
    title: "B-tree index bloat",
    measures: "Estimated share of each B-tree index's pages beyond what its entries need at its fillfactor, \
               from pg_stats widths of the indexed columns and pg_class.relpages/reltuples.",
    params: &[
        Param { name: "min_bytes", default: 104_857_600.0, unit: "bytes", help: "ignore indexes with less estimated bloat" },
        Param { name: "warning", default: 50.0, unit: "percent", help: "bloat share of the index that warns" },
        Param { name: "critical", default: 80.0, unit: "percent", help: "bloat share of the index that is critical" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many indexes, most bloat first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "A bloated index is deeper and wider than it needs to be: every lookup and every write touches \
              more pages, it crowds useful pages out of shared_buffers, and VACUUM never shrinks it.",
        action: "Rebuild it without blocking writes: REINDEX INDEX CONCURRENTLY (PostgreSQL 12+). It needs \
                 free disk for a second copy while it runs; if it fails it leaves an invalid index to drop \
                 (see invalid-indexes). Recurring bloat means the table's update/delete pattern needs more \
                 frequent vacuum.",
        next: "REINDEX INDEX CONCURRENTLY <index>;",
    },
};

/// `{stats_join}` is [`super::stats_join`] for index column `k` of index `b`.
const SQL: &str = "\
WITH btree AS (
  SELECT ic.oid, n.nspname, ic.relname AS index_name, tc.relname AS table_name,
         tn.nspname AS table_schema, i.indrelid, i.indkey::int2[] AS indkey,
         ic.relpages::int8 AS relpages, ic.reltuples::float8 AS reltuples,
         coalesce((SELECT o.option_value::int4 FROM pg_options_to_table(ic.reloptions) o
                   WHERE o.option_name = 'fillfactor'), 90) AS fillfactor,
         current_setting('block_size')::int8 AS block_size
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
  -- relpages/reltuples are filtered after the statistics join: filtered here, the planner
  -- underestimates the rows and nests a loop over the pg_stats view
  WHERE ic.relkind = 'i' AND i.indisvalid
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
widths AS (
  -- a plain column's statistics live under its table, an expression's under the index itself
  SELECT b.oid,
         sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
         bool_or(s.null_frac > 0) AS has_nulls,
         count(*) = count(s.avg_width) AS all_analyzed
  FROM btree b
  CROSS JOIN LATERAL unnest(b.indkey) WITH ORDINALITY AS k(attnum, position)
  JOIN pg_attribute ia ON ia.attrelid = b.oid AND ia.attnum = k.position
  LEFT JOIN pg_attribute ta ON ta.attrelid = b.indrelid AND ta.attnum = k.attnum AND k.attnum > 0
  {stats_join}
  GROUP BY b.oid
),
estimate AS (
  -- IndexTupleData (8 B) + null bitmap (4 B) + data, MAXALIGNed, plus the 4 B line pointer
  SELECT b.*,
         (ceil((8 + CASE WHEN w.has_nulls THEN 4 ELSE 0 END + w.data_width) / 8) * 8 + 4)::float8 AS tuple_bytes
  FROM btree b
  JOIN widths w ON w.oid = b.oid
  WHERE w.all_analyzed AND b.relpages > 1 AND b.reltuples >= 0
),
bloat AS (
  -- a leaf page is a 24 B header, tuples up to fillfactor and 16 B of B-tree special space;
  -- one more page is the meta page
  SELECT e.*,
         greatest(e.relpages - 1 - ceil(e.reltuples
                  / greatest(floor((e.block_size - 24 - 16) * e.fillfactor / 100.0 / e.tuple_bytes), 1)), 0)::int8
           AS bloat_pages
  FROM estimate e
)
SELECT format('%I.%I', b.nspname, b.index_name) AS index_name,
       format('%I.%I', b.table_schema, b.table_name) AS table_name,
       (b.relpages * b.block_size)::int8 AS real_size_bytes,
       (b.bloat_pages * b.block_size)::int8 AS bloat_bytes,
       (100.0 * b.bloat_pages / b.relpages)::float8 AS bloat_percent,
       b.fillfactor, b.reltuples::int8 AS estimated_entries
FROM bloat b
WHERE b.bloat_pages * b.block_size >= $1::float8
  AND 100.0 * b.bloat_pages / b.relpages >= $2::float8
ORDER BY bloat_bytes DESC, index_name
LIMIT $3::int8";

#[async_trait::async_trait]
impl Check for IndexBloat {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_bytes = ctx.param("min_bytes");
        let min_percent = ctx.param("warning").min(ctx.param("critical"));
        let key = super::StatsKey {
            relid: "CASE WHEN k.attnum > 0 THEN b.indrelid ELSE b.oid END",
            attnum: "CASE WHEN k.attnum > 0 THEN k.attnum ELSE k.position END",
            schema: "CASE WHEN k.attnum > 0 THEN b.table_schema ELSE b.nspname END",
            table: "CASE WHEN k.attnum > 0 THEN b.table_name ELSE b.index_name END",
            column: "CASE WHEN k.attnum > 0 THEN ta.attname ELSE ia.attname END",
        };
        let sql = SQL.replace("{stats_join}", &super::stats_join(ctx, &key));
        let rows = ctx
            .query(&sql, &[&min_bytes, &min_percent, &limit(ctx)])
            .await?;
        let mut findings = Vec::new();
        for row in rows {
            let percent: f64 = row.get("bloat_percent");
            let Some(severity) = ctx.severity_above(percent) else {
                continue;
            };
            let index: String = row.get("index_name");
            let bloat_bytes: i64 = row.get("bloat_bytes");
            let real_bytes: i64 = row.get("real_size_bytes");
            findings.push(
                Finding::new(
                    severity,
                    format!("index {index}"),
                    format!(
                        "~{} of {} is bloat ({:.0}%, threshold {:.0}%)",
                        human_bytes(bloat_bytes as f64),
                        human_bytes(real_bytes as f64),
                        percent,
                        ctx.param("warning")
                    ),
                )
                .with("index", index)
                .with("table", row.get::<_, String>("table_name"))
                .with("real_size_bytes", real_bytes)
                .with("bloat_bytes", bloat_bytes)
                .with("bloat_percent", round1(percent))
                .with("fillfactor", row.get::<_, i32>("fillfactor"))
                .with("estimated_entries", row.get::<_, i64>("estimated_entries")),
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
    async fn reports_an_index_after_mass_delete() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        // Deleting 4 entries in 5 everywhere leaves every leaf page in use but mostly empty.
        cluster
            .primary()
            .psql_db(
                &db,
                "CREATE TABLE events (id int, kind text);
                 INSERT INTO events SELECT g, 'k' || (g % 7) FROM generate_series(1, 50000) g;
                 CREATE INDEX events_id_idx ON events (id);
                 CREATE INDEX events_lower_kind_idx ON events (lower(kind), id);
                 DELETE FROM events WHERE id % 5 <> 0;
                 VACUUM events;
                 ANALYZE events;
                 CREATE TABLE dense (id int);
                 INSERT INTO dense SELECT g FROM generate_series(1, 50000) g;
                 CREATE INDEX dense_id_idx ON dense (id);
                 VACUUM ANALYZE dense;",
            )
            .expect("create a bloated index");
        let dsn = cluster.primary().dsn_for(&db);
        let findings =
            testkit::findings(&IndexBloat, &dsn, &[("min_bytes", 0.0), ("warning", 30.0)]).await;
        let index_named = |name: &str| {
            findings
                .iter()
                .find(|f| f.evidence("index").and_then(|v| v.as_str()) == Some(name))
                .cloned()
        };
        let bloated = index_named("public.events_id_idx")
            .unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(
            bloated.evidence("table").and_then(|v| v.as_str()),
            Some("public.events")
        );
        assert!(
            bloated
                .evidence("bloat_percent")
                .and_then(|v| v.as_f64())
                .unwrap()
                > 50.0,
            "{bloated:?}"
        );
        let real = bloated
            .evidence("real_size_bytes")
            .and_then(|v| v.as_i64())
            .unwrap();
        let bloat = bloated
            .evidence("bloat_bytes")
            .and_then(|v| v.as_i64())
            .unwrap();
        assert!(bloat > 0 && bloat < real, "{bloated:?}");
        // Expression columns are estimated from the index's own statistics.
        assert!(
            index_named("public.events_lower_kind_idx").is_some(),
            "{findings:?}"
        );
        assert!(index_named("public.dense_id_idx").is_none(), "{findings:?}");
    }
}
