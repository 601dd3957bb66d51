//! The statistics-based bloat estimate shared by [`super::table_bloat`] and
//! [`super::index_bloat`]: the query skeleton, the statistics join, the thresholds and the
//! finding they report.
//!
//! Both estimate the width of one tuple from the `pg_statistic` average width and null fraction
//! of its columns, hence how many fit on a page at the relation's fillfactor and how many pages
//! `reltuples` of them need; what `relpages` holds beyond that is bloat. Only the tuple layout,
//! the page overhead and the columns differ, so each check supplies those as a [`Layout`].
//!
//! Bloat can never exceed the relation's own pages, so relations too small to reach `min_bytes`
//! are dropped before any statistics are read: on a database of thousands of small tables the
//! estimate then runs for a handful of relations only.

use super::round1;
use crate::finding::human_bytes;
use crate::{CheckError, Context, Finding, Severity};

/// What one check plugs into the shared estimate query.
pub(super) struct Layout {
    /// A `SELECT` of the candidate relations with at least the columns `oid`, `nspname`,
    /// `relname`, `relpages` (int8), `reltuples` (float8), `fillfactor` (int4) and `block_size`
    /// (int8). `$1` is the minimum bloat in bytes, to drop relations that cannot reach it.
    pub candidates: &'static str,
    /// `FROM` items giving one row per column to estimate, of candidate `c`.
    pub columns: &'static str,
    /// Where each column's statistics are, in terms of `columns`.
    pub stats_key: StatsKey,
    /// The bytes of one tuple including its line pointer, from `w.data_width`, `w.has_nulls`
    /// and the candidate's columns `c.*`.
    pub tuple_bytes: &'static str,
    /// Bytes of a page that hold no tuples (page header, special space).
    pub page_overhead: i64,
    /// Pages that hold no tuples (the B-tree meta page).
    pub meta_pages: i64,
    /// Extra output columns, from the reported candidate `w` (`w.oid`, `w.nspname`, ...).
    pub report: &'static str,
}

/// Where a column's statistics are, as SQL expressions of the `columns` rows: by oid and
/// number (for `pg_statistic`) and by name (for `pg_stats`).
pub(super) struct StatsKey {
    pub relid: &'static str,
    pub attnum: &'static str,
    pub schema: &'static str,
    pub table: &'static str,
    pub column: &'static str,
}

const SQL: &str = "\
WITH candidates AS MATERIALIZED (
  {candidates}
),
widths AS (
  SELECT c.oid,
         sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
         bool_or(s.null_frac > 0) AS has_nulls,
         count(*) = count(s.avg_width) AS all_analyzed
  FROM {columns}
  {stats_join}
  GROUP BY c.oid
),
bloat AS (
  SELECT c.*,
         greatest(c.relpages - {meta_pages} - ceil(c.reltuples
                  / greatest(floor((c.block_size - {page_overhead}) * c.fillfactor / 100.0
                                   / ({tuple_bytes})), 1)), 0)::int8 AS bloat_pages
  FROM candidates c
  JOIN widths w ON w.oid = c.oid
  WHERE w.all_analyzed
),
worst AS (
  SELECT b.*, format('%I.%I', b.nspname, b.relname) AS name,
         (b.relpages * b.block_size)::int8 AS real_size_bytes,
         (b.bloat_pages * b.block_size)::int8 AS bloat_bytes,
         (100.0 * b.bloat_pages / b.relpages)::float8 AS bloat_percent
  FROM bloat b
  WHERE b.bloat_pages * b.block_size >= $1::float8
    AND 100.0 * b.bloat_pages / b.relpages >= $2::float8
  ORDER BY bloat_bytes DESC, name
  LIMIT $3::int8
)
SELECT w.name, w.real_size_bytes, w.bloat_bytes, w.bloat_percent, w.fillfactor,
       w.reltuples::int8 AS estimated_tuples, {report}
FROM worst w
ORDER BY w.bloat_bytes DESC, w.name";

/// A `LEFT JOIN` of the column's statistics as `s`, exposing `s.null_frac` and `s.avg_width`
/// (both float8, NULL when the column has no statistics).
///
/// Reading `pg_statistic` by oid is much faster than the `pg_stats` view on a database with
/// thousands of tables, but only a superuser may read it; everyone else joins the view (which
/// shows the columns they may read) by name.
fn stats_join(ctx: &Context<'_>, key: &StatsKey) -> String {
    if ctx.info().is_superuser {
        format!(
            "LEFT JOIN (SELECT starelid, staattnum, stanullfrac::float8 AS null_frac, stawidth::float8 AS avg_width
                        FROM pg_statistic WHERE NOT stainherit) s
               ON s.starelid = {} AND s.staattnum = {}",
            key.relid, key.attnum
        )
    } else {
        format!(
            "LEFT JOIN (SELECT schemaname, tablename, attname, null_frac::float8 AS null_frac,
                               avg_width::float8 AS avg_width
                        FROM pg_stats WHERE NOT inherited) s
               ON s.schemaname = {} AND s.tablename = {} AND s.attname = {}",
            key.schema, key.table, key.column
        )
    }
}

/// One estimated relation, as the query reports it.
pub(super) struct Estimate {
    /// The full row, for the check's own `report` columns.
    pub row: tokio_postgres::Row,
    /// `schema.name`, quoted where needed.
    pub name: String,
    pub severity: Severity,
}

/// Runs the estimate for `layout` and returns the relations over the thresholds, most bloat
/// first, each with its severity.
pub(super) async fn estimate(
    ctx: &Context<'_>,
    layout: &Layout,
) -> Result<Vec<Estimate>, CheckError> {
    let sql = SQL
        .replace("{candidates}", layout.candidates)
        .replace("{columns}", layout.columns)
        .replace("{stats_join}", &stats_join(ctx, &layout.stats_key))
        .replace("{tuple_bytes}", layout.tuple_bytes)
        .replace("{page_overhead}", &layout.page_overhead.to_string())
        .replace("{meta_pages}", &layout.meta_pages.to_string())
        .replace("{report}", layout.report);
    let min_bytes = ctx.param("min_bytes");
    let min_percent = super::min_percent(ctx);
    let rows = ctx
        .query(&sql, &[&min_bytes, &min_percent, &super::limit(ctx)])
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let severity = severity(ctx, row.get("bloat_percent"), row.get("bloat_bytes"))?;
            Some(Estimate {
                name: row.get("name"),
                severity,
                row,
            })
        })
        .collect())
}

/// Over a percentage threshold, but less bloat than `warning_bytes`, is only info: worth
/// knowing, not worth a rebuild.
fn severity(ctx: &Context<'_>, percent: f64, bloat_bytes: i64) -> Option<Severity> {
    let severity = ctx.severity_above(percent)?;
    Some(if (bloat_bytes as f64) < ctx.param("warning_bytes") {
        Severity::Info
    } else {
        severity
    })
}

/// The finding for `estimate` of a `kind` ("table", "index"), its identity evidence first
/// (`(key, value)` pairs), then the estimate, then `estimated_key` for `reltuples`.
pub(super) fn finding(
    ctx: &Context<'_>,
    kind: &str,
    estimate: &Estimate,
    identity: Vec<(&'static str, String)>,
    estimated_key: &'static str,
) -> Finding {
    let row = &estimate.row;
    let bloat_bytes: i64 = row.get("bloat_bytes");
    let real_bytes: i64 = row.get("real_size_bytes");
    let percent: f64 = row.get("bloat_percent");
    let info_only = if estimate.severity == Severity::Info {
        format!(
            "; under {} of bloat, so info only",
            human_bytes(ctx.param("warning_bytes"))
        )
    } else {
        String::new()
    };
    let mut finding = Finding::new(
        estimate.severity,
        format!("{kind} {}", estimate.name),
        format!(
            "~{} of {} is bloat ({:.0}%, threshold {:.0}%){info_only}",
            human_bytes(bloat_bytes as f64),
            human_bytes(real_bytes as f64),
            percent,
            ctx.param("warning")
        ),
    );
    for (key, value) in identity {
        finding = finding.with(key, value);
    }
    finding
        .with("real_size_bytes", real_bytes)
        .with("bloat_bytes", bloat_bytes)
        .with("bloat_percent", round1(percent))
        .with("fillfactor", row.get::<_, i32>("fillfactor"))
        .with(estimated_key, row.get::<_, i64>("estimated_tuples"))
}
