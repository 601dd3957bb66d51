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

/// A percentage rounded to one decimal, as shown in evidence.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The `max_findings` parameter as a SQL `LIMIT` (at least 1).
fn limit(ctx: &crate::Context<'_>) -> i64 {
    ctx.param("max_findings").max(1.0) as i64
}
