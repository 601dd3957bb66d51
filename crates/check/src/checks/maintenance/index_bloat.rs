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
//!
//! As for tables, less than `warning_bytes` of bloat over the percentage thresholds is info only.

use super::bloat::{self, Layout, StatsKey};
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
        Param { name: "min_bytes", default: 1_048_576.0, unit: "bytes", help: "ignore indexes with less estimated bloat" },
        Param { name: "warning_bytes", default: 104_857_600.0, unit: "bytes", help: "less estimated bloat than this is info, whatever its share" },
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

static LAYOUT: Layout = Layout {
    candidates: "\
  SELECT ic.oid, n.nspname, ic.relname, tc.relname AS table_name, tn.nspname AS table_schema,
         i.indrelid, i.indkey::int2[] AS indkey,
         ic.relpages::int8 AS relpages, ic.reltuples::float8 AS reltuples,
         coalesce((SELECT o.option_value::int4 FROM pg_options_to_table(ic.reloptions) o
                   WHERE o.option_name = 'fillfactor'), 90) AS fillfactor,
         current_setting('block_size')::int8 AS block_size
  FROM pg_class ic
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_index i ON i.indexrelid = ic.oid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  WHERE ic.relkind = 'i' AND ic.relam = (SELECT am.oid FROM pg_am am WHERE am.amname = 'btree')
    AND ic.relpages > 1 AND ic.reltuples >= 0
    -- bloat never exceeds the pages beyond the meta page: a smaller index cannot reach min_bytes
    AND (ic.relpages - 1)::float8 * current_setting('block_size')::float8 >= $1::float8
    AND i.indisvalid
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'",
    // a plain column's statistics live under its table, an expression's under the index itself
    columns: "candidates c
  CROSS JOIN LATERAL unnest(c.indkey) WITH ORDINALITY AS k(attnum, position)
  JOIN pg_attribute ia ON ia.attrelid = c.oid AND ia.attnum = k.position
  LEFT JOIN pg_attribute ta ON ta.attrelid = c.indrelid AND ta.attnum = k.attnum AND k.attnum > 0",
    stats_key: StatsKey {
        relid: "CASE WHEN k.attnum > 0 THEN c.indrelid ELSE c.oid END",
        attnum: "CASE WHEN k.attnum > 0 THEN k.attnum ELSE k.position END",
        schema: "CASE WHEN k.attnum > 0 THEN c.table_schema ELSE c.nspname END",
        table: "CASE WHEN k.attnum > 0 THEN c.table_name ELSE c.relname END",
        column: "CASE WHEN k.attnum > 0 THEN ta.attname ELSE ia.attname END",
    },
    // IndexTupleData (8 B) + null bitmap (4 B) + data, MAXALIGNed, plus the 4 B line pointer
    tuple_bytes: "ceil((8 + CASE WHEN w.has_nulls THEN 4 ELSE 0 END + w.data_width) / 8) * 8 + 4",
    // a leaf page is a 24 B header, tuples up to fillfactor and 16 B of B-tree special space;
    // one more page is the meta page
    page_overhead: 24 + 16,
    meta_pages: 1,
    report: "format('%I.%I', w.table_schema, w.table_name) AS table_name",
};

#[async_trait::async_trait]
impl Check for IndexBloat {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        Ok(bloat::estimate(ctx, &LAYOUT)
            .await?
            .iter()
            .map(|estimate| {
                let identity = vec![
                    ("index", estimate.name.clone()),
                    ("table", estimate.row.get::<_, String>("table_name")),
                ];
                bloat::finding(ctx, "index", estimate, identity, "estimated_entries")
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finding_about, integer, number, seeded_database, text};
    use super::*;
    use crate::testkit;

    #[tokio::test]
    async fn reports_an_index_after_mass_delete() {
        // Deleting 4 entries in 5 everywhere leaves every leaf page in use but mostly empty.
        let dsn = seeded_database(
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
            "create a bloated index",
        );
        let findings =
            testkit::findings(&IndexBloat, &dsn, &[("min_bytes", 0.0), ("warning", 30.0)]).await;
        let index_named = |name: &str| finding_about(&findings, "index", name);
        let bloated = index_named("public.events_id_idx")
            .unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(text(&bloated, "table"), Some("public.events"));
        assert!(
            number(&bloated, "bloat_percent").unwrap() > 50.0,
            "{bloated:?}"
        );
        let real = integer(&bloated, "real_size_bytes").unwrap();
        let bloat = integer(&bloated, "bloat_bytes").unwrap();
        assert!(bloat > 0 && bloat < real, "{bloated:?}");
        // Expression columns are estimated from the index's own statistics.
        assert!(
            index_named("public.events_lower_kind_idx").is_some(),
            "{findings:?}"
        );
        assert!(index_named("public.dense_id_idx").is_none(), "{findings:?}");
    }
}
