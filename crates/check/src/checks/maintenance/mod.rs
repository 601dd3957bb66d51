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
