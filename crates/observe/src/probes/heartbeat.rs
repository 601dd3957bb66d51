//! The heartbeat table both probes use: `pgdbre.heartbeat`, one row per source node (the
//! primary's `host:port/dbname` as `pgdbre serve` names it), whose `ts` the commit probe sets to
//! `clock_timestamp()`. Replicated like any table, so a standby's newest `ts` says how far
//! behind the primary its replay is.
//!
//! The exporter creates it on a primary when it is missing. The check comes first because
//! `CREATE SCHEMA IF NOT EXISTS` demands the CREATE privilege even when the schema exists, and
//! a monitoring role usually lacks it once an administrator has created the table.

use pgdbre_pg::{PgError, Session};

/// The table, schema-qualified.
pub const TABLE: &str = "pgdbre.heartbeat";

const EXISTS: &str = "SELECT pg_catalog.to_regclass('pgdbre.heartbeat') IS NOT NULL";

/// One row per node; a low fillfactor keeps every update HOT, so the table stays one page.
pub const CREATE: &str = "CREATE SCHEMA IF NOT EXISTS pgdbre; \
    CREATE TABLE IF NOT EXISTS pgdbre.heartbeat (\
      node text PRIMARY KEY, \
      ts timestamptz NOT NULL\
    ) WITH (fillfactor = 50)";

/// Creates the table unless it exists. The error says what an administrator can run instead.
pub async fn ensure(session: &Session) -> Result<(), HeartbeatError> {
    let client = session.client();
    let exists: bool = client
        .query_one(EXISTS, &[])
        .await
        .map_err(|e| HeartbeatError::Query(session.query_error(&e)))?
        .get(0);
    if exists {
        return Ok(());
    }
    client
        .batch_execute(CREATE)
        .await
        .map_err(|e| HeartbeatError::Create(session.query_error(&e)))
}

/// Why the heartbeat table is not there.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("cannot look up {TABLE}: {0}")]
    Query(PgError),
    #[error(
        "cannot create {TABLE}: {0}; hint: let a role with CREATE on the database run \
         `{CREATE}`, then GRANT SELECT, INSERT, UPDATE ON {TABLE} to this role"
    )]
    Create(PgError),
}

impl HeartbeatError {
    /// The SQLSTATE the server reported, if any.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            HeartbeatError::Query(error) | HeartbeatError::Create(error) => error.sqlstate(),
        }
    }
}
