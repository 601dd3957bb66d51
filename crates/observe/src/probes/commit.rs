//! The commit probe: upserts this node's heartbeat row in its own (autocommit) transaction, so
//! its duration includes the WAL flush and, with `synchronous_standby_names`, the wait for the
//! synchronous standbys: what an application's commit waits for.

/// The upsert; `$1` is the node (the primary's `host:port/dbname`).
pub const SQL: &str = "INSERT INTO pgdbre.heartbeat (node, ts) \
    VALUES ($1, pg_catalog.clock_timestamp()) \
    ON CONFLICT (node) DO UPDATE SET ts = excluded.ts";

/// Runs the prepared commit probe for `node`.
pub async fn run(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    node: &str,
) -> Result<(), tokio_postgres::Error> {
    client.execute(statement, &[&node]).await.map(|_| ())
}
