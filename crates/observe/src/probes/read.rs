//! The read probe: one `SELECT` on the heartbeat table. Its answer, the age of the newest
//! heartbeat, is also the replica lag when the server is a standby: there `ts` is as replayed,
//! so `clock_timestamp() − max(ts)` is how long ago the primary committed what the standby shows
//! last. Unlike `pg_last_xact_replay_timestamp()` it keeps moving while an idle primary commits
//! nothing but heartbeats, and it counts WAL that was received but not yet replayed.

/// Seconds since the newest heartbeat (NULL while the table is empty), and whether the server
/// is a standby: a promotion does not end the probe session, so the probe asks every time.
pub const SQL: &str = "SELECT extract(epoch FROM pg_catalog.clock_timestamp() - max(ts))::float8, \
    pg_catalog.pg_is_in_recovery(), true \
    FROM pgdbre.heartbeat";

/// The read probe while the heartbeat table does not exist: nothing has run the commit probe on
/// the primary yet (a fresh primary, or only standbys watched). Still a round trip and the
/// recovery state — so a promoted standby starts its commit probe, which creates the table — and
/// whether the table has appeared, without an error in the server log every round.
pub const WITHOUT_TABLE: &str = "SELECT NULL::float8, pg_catalog.pg_is_in_recovery(), \
    pg_catalog.to_regclass('pgdbre.heartbeat') IS NOT NULL";

/// What one read probe saw.
pub struct Answer {
    /// Seconds since the newest heartbeat, if there is one.
    pub heartbeat_age: Option<f64>,
    pub in_recovery: bool,
    /// Whether the heartbeat table exists (always, for [`SQL`]).
    pub table_exists: bool,
}

/// Whether preparing [`SQL`] failed because the heartbeat table (or its schema) is missing.
pub fn is_missing_table(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        error.code(),
        Some(&SqlState::UNDEFINED_TABLE) | Some(&SqlState::INVALID_SCHEMA_NAME)
    )
}

/// Runs the prepared read probe ([`SQL`] or [`WITHOUT_TABLE`]).
pub async fn run(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
) -> Result<Answer, tokio_postgres::Error> {
    let row = client.query_one(statement, &[]).await?;
    Ok(Answer {
        heartbeat_age: row.try_get(0)?,
        in_recovery: row.try_get(1)?,
        table_exists: row.try_get(2)?,
    })
}
