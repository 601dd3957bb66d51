//! Maintenance, index and schema-hygiene checks: bloat, dead tuples and autovacuum, invalid,
//! unused and duplicate indexes, missing primary keys and sequences running out of values.
//!
//! All of them read the connected database's catalogs and statistics in one set-based query
//! each, estimate sizes from `pg_class.relpages` (never the size functions, which take relation
//! locks) and cap their output at a `max_findings` parameter, biggest problem first.

mod autovacuum_lagging;
mod dead_tuples;
mod duplicate_indexes;
mod index_bloat;
mod integer_key_exhaustion;
mod invalid_indexes;
mod sequence_exhaustion;
mod table_bloat;
mod tables_without_primary_key;
mod unused_indexes;

use crate::Check;

/// The checks of this group, in display order.
pub fn checks() -> Vec<&'static dyn Check> {
    vec![
        &table_bloat::TableBloat,
        &index_bloat::IndexBloat,
        &dead_tuples::DeadTuples,
        &autovacuum_lagging::AutovacuumLagging,
        &invalid_indexes::InvalidIndexes,
        &unused_indexes::UnusedIndexes,
        &duplicate_indexes::DuplicateIndexes,
        &tables_without_primary_key::TablesWithoutPrimaryKey,
        &sequence_exhaustion::SequenceExhaustion,
        &integer_key_exhaustion::IntegerKeyExhaustion,
    ]
}

/// Which column a bloat estimate needs statistics for, as SQL expressions of the outer query:
/// by oid and number (for `pg_statistic`) and by name (for `pg_stats`).
struct StatsKey<'a> {
    relid: &'a str,
    attnum: &'a str,
    schema: &'a str,
    table: &'a str,
    column: &'a str,
}

/// A `LEFT JOIN` of the column's statistics as `s`, exposing `s.null_frac` and `s.avg_width`
/// (both float8, NULL when the column has no statistics).
///
/// Reading `pg_statistic` by oid is much faster than the `pg_stats` view on a database with
/// thousands of tables, but only a superuser may read it; everyone else joins the view (which
/// shows the columns they may read) by name, so the planner can hash it once.
fn stats_join(ctx: &crate::Context<'_>, key: &StatsKey<'_>) -> String {
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

/// A percentage rounded to one decimal, as shown in evidence.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The `max_findings` parameter as a SQL `LIMIT` (at least 1).
fn limit(ctx: &crate::Context<'_>) -> i64 {
    ctx.param("max_findings").max(1.0) as i64
}
