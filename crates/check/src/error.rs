//! Why a check could not produce findings.

/// A check that could not run. The runner turns these into `skipped` or `error` results.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The role lacks a privilege; reported as skipped with the grant that fixes it.
    #[error("permission denied: {message}")]
    InsufficientPrivilege { message: String },
    /// The check does not apply here (missing extension, feature off, ...): skipped, not an error.
    #[error("{0}")]
    NotApplicable(String),
    /// The query failed for another reason.
    #[error("query failed: {message}")]
    Query {
        message: String,
        sqlstate: Option<String>,
    },
}

impl From<tokio_postgres::Error> for CheckError {
    fn from(e: tokio_postgres::Error) -> Self {
        let sqlstate = e.code().map(|c| c.code().to_string());
        let message = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        if sqlstate.as_deref() == Some("42501") {
            CheckError::InsufficientPrivilege { message }
        } else {
            CheckError::Query { message, sqlstate }
        }
    }
}
