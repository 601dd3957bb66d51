//! The `pg_stat_activity` evidence the session checks share (`idle-in-transaction`,
//! `long-running-transactions`): who the session is, so a DBRE can find its owner.
//!
//! Both checks select [`SESSION_COLUMNS`] through [`aged_sessions`] and attach them with
//! [`with_client`], so the same session shows the same keys whichever check reports it.

use super::tiers::{Tier, Tiers};
use crate::{CheckError, Context, Finding};
use tokio_postgres::Row;

/// The `SELECT` items read by [`with_client`] and [`session_label`], plus `pid`, `state` and
/// the first 200 characters of `query`, named as those functions expect.
pub const SESSION_COLUMNS: &str = "\
pid, usename::text AS usename, datname::text AS datname, application_name,
       client_addr::text AS client_addr, state, left(query, 200) AS query";

/// A session whose age reached one of the check's tiers.
pub struct AgedSession {
    pub row: Row,
    /// The age the tier was decided on, in seconds.
    pub seconds: f64,
    pub tier: Tier,
}

/// Runs `sql_template` (with `{session_columns}` standing for [`SESSION_COLUMNS`]) and keeps the
/// sessions whose float8 `seconds_column` reaches the check's `info`, `warning` or `critical`.
pub async fn aged_sessions(
    ctx: &Context<'_>,
    sql_template: &str,
    seconds_column: &str,
) -> Result<Vec<AgedSession>, CheckError> {
    let tiers = Tiers::from_params(ctx);
    let sql = sql_template.replace("{session_columns}", SESSION_COLUMNS);
    Ok(ctx
        .query(&sql, &[])
        .await?
        .into_iter()
        .filter_map(|row| {
            let seconds: f64 = row.get(seconds_column);
            let tier = tiers.classify(seconds)?;
            Some(AgedSession { row, seconds, tier })
        })
        .collect())
}

/// Adds who the session is: `user`, `database`, `application_name`, `client_addr`.
pub fn with_client(finding: Finding, row: &Row) -> Finding {
    finding
        .with("user", text(row, "usename"))
        .with("database", text(row, "datname"))
        .with("application_name", text(row, "application_name"))
        .with("client_addr", text(row, "client_addr"))
}

/// The session's finding object: `pid 4242`.
pub fn session_label(row: &Row) -> String {
    format!("pid {}", row.get::<_, i32>("pid"))
}

/// A nullable text column.
pub fn text(row: &Row, column: &str) -> Option<String> {
    row.get(column)
}

/// A nullable number of seconds, rounded to whole seconds as the evidence shows them.
pub fn rounded_seconds(row: &Row, column: &str) -> Option<f64> {
    row.get::<_, Option<f64>>(column).map(f64::round)
}
