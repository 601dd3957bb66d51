//! The smoke SQL: proof that the restored server answers with its data. The default reads the
//! catalog of every database that allows connections (a restore missing a database's files
//! fails here) and runs `SELECT 1`; `--smoke-sql`/`--smoke-file` run the user's own SQL instead.
//! The time the first query succeeds is the end of the RTO.

use crate::error::DrillError;
use crate::options::Smoke;
use crate::report::SmokeResult;
use crate::scratch::Scratch;
use pgdbre_pg::Session;
use std::time::Instant;
use tokio_postgres::SimpleQueryMessage;

/// Relations and user tables of the connected database.
const CATALOG_QUERY: &str = "SELECT count(*), count(*) FILTER (WHERE c.relkind IN ('r', 'p') \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%') \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";

/// What the smoke SQL showed, and when its first query succeeded.
pub(crate) struct SmokeOutcome {
    pub(crate) results: Vec<SmokeResult>,
    pub(crate) first_success: Instant,
}

/// Runs `smoke` against the scratch server as `user`.
pub(crate) async fn run(
    scratch: &Scratch,
    user: &str,
    smoke: &Smoke,
) -> Result<SmokeOutcome, DrillError> {
    match smoke {
        Smoke::Default => default_smoke(scratch, user).await,
        Smoke::Custom { sql, database } => {
            let session = connect(scratch, user, database).await?;
            let messages = session
                .client()
                .simple_query(sql)
                .await
                .map_err(|error| smoke_error(database, &session, &error))?;
            let first_success = Instant::now();
            let rows = messages
                .iter()
                .filter(|message| matches!(message, SimpleQueryMessage::Row(_)))
                .count();
            Ok(SmokeOutcome {
                results: vec![SmokeResult {
                    database: database.clone(),
                    detail: format!("custom SQL ok, {rows} rows"),
                }],
                first_success,
            })
        }
    }
}

async fn default_smoke(scratch: &Scratch, user: &str) -> Result<SmokeOutcome, DrillError> {
    // `postgres` is where every tool connects first; a cluster without it still has template1.
    let first = match connect(scratch, user, "postgres").await {
        Ok(session) => session,
        Err(_) => connect(scratch, user, "template1").await?,
    };
    let rows = first
        .client()
        .query(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
            &[],
        )
        .await
        .map_err(|error| smoke_error("postgres", &first, &error))?;
    let first_success = Instant::now();
    let databases: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let mut results = Vec::with_capacity(databases.len());
    for database in databases {
        let session = connect(scratch, user, &database).await?;
        let row = session
            .client()
            .query_one(CATALOG_QUERY, &[])
            .await
            .map_err(|error| smoke_error(&database, &session, &error))?;
        let (relations, user_tables): (i64, i64) = (row.get(0), row.get(1));
        session
            .client()
            .simple_query("SELECT 1")
            .await
            .map_err(|error| smoke_error(&database, &session, &error))?;
        results.push(SmokeResult {
            database,
            detail: format!("{relations} relations, {user_tables} user tables"),
        });
    }
    Ok(SmokeOutcome {
        results,
        first_success,
    })
}

async fn connect(scratch: &Scratch, user: &str, database: &str) -> Result<Session, DrillError> {
    let config = scratch
        .connection(user, database)
        .ok_or_else(|| DrillError::Smoke {
            database: database.to_string(),
            message: "the restored server is not running".to_string(),
        })?;
    Session::connect(&config)
        .await
        .map_err(|error| DrillError::Smoke {
            database: database.to_string(),
            message: pgdbre_pg::redact(&error.to_string()),
        })
}

fn smoke_error(database: &str, session: &Session, error: &tokio_postgres::Error) -> DrillError {
    DrillError::Smoke {
        database: database.to_string(),
        message: session.query_error(error).to_string(),
    }
}
