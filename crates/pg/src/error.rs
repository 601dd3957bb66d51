//! Errors from resolving and opening connections; each message says what is wrong and what to do.

/// A connection-layer failure. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The DSN / conninfo / URI could not be parsed.
    #[error("invalid connection string: {0}")]
    InvalidDsn(String),
    /// The server could not be reached or refused the connection.
    #[error("could not connect to {target}: {message}")]
    Connect { target: String, message: String },
    /// A query failed.
    #[error("query failed on {target}: {message}")]
    Query { target: String, message: String },
}
