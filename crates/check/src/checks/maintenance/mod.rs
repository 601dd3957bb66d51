//! Maintenance, index and schema-hygiene checks: bloat, dead tuples and autovacuum, invalid,
//! unused and duplicate indexes, missing primary keys and sequences running out of values.
//!
//! All of them read the connected database's catalogs and statistics in one set-based query
//! each, estimate sizes from `pg_class.relpages` (never the size functions, which take relation
//! locks) and cap their output at a `max_findings` parameter, biggest problem first.
//!
//! They stay cheap on databases with tens of thousands of relations by applying the cheapest
//! test that can rule a relation out first (size from `relpages`, a statistics counter, a hashed
//! set of key columns) and computing names, definitions and estimates only for the survivors.

mod autovacuum_lagging;
mod bloat;
mod dead_tuples;
mod duplicate_indexes;
mod foreign_keys_without_index;
mod index_bloat;
mod integer_key_exhaustion;
mod invalid_indexes;
mod sequence_exhaustion;
mod table_bloat;
mod tables_without_primary_key;
#[cfg(test)]
mod test_support;
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
        &foreign_keys_without_index::ForeignKeysWithoutIndex,
        &tables_without_primary_key::TablesWithoutPrimaryKey,
        &sequence_exhaustion::SequenceExhaustion,
        &integer_key_exhaustion::IntegerKeyExhaustion,
    ]
}

/// A percentage rounded to one decimal, as shown in evidence.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The `max_findings` parameter as a SQL `LIMIT` (at least 1).
fn limit(ctx: &crate::Context<'_>) -> i64 {
    ctx.param("max_findings").max(1.0) as i64
}

/// The lower of the `warning` and `critical` percentages: rows below it cannot produce a finding,
/// so the query leaves them out.
fn min_percent(ctx: &crate::Context<'_>) -> f64 {
    ctx.param("warning").min(ctx.param("critical"))
}

/// Runs a range-usage query (`$1` the [`min_percent`], `$2` the [`limit`]) and pairs each row with
/// its severity by its `percent_used` column, dropping rows below both thresholds.
async fn rows_by_percent_used(
    ctx: &crate::Context<'_>,
    sql: &str,
) -> Result<Vec<(crate::Severity, f64, tokio_postgres::Row)>, crate::CheckError> {
    let rows = ctx.query(sql, &[&min_percent(ctx), &limit(ctx)]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let percent: f64 = row.get("percent_used");
            Some((ctx.severity_above(percent)?, percent, row))
        })
        .collect())
}

/// Adds the `last_autovacuum` and `last_vacuum` evidence from the row's text columns of those
/// names (NULL when the table was never vacuumed that way).
fn with_vacuum_times(finding: crate::Finding, row: &tokio_postgres::Row) -> crate::Finding {
    finding
        .with(
            "last_autovacuum",
            row.get::<_, Option<String>>("last_autovacuum"),
        )
        .with("last_vacuum", row.get::<_, Option<String>>("last_vacuum"))
}
