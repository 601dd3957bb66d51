//! Errors from resolving and opening connections; each message says what is wrong and what to do.
//!
//! Callers branch on the kind ([`PgError::is_auth_failure`], [`PgError::sqlstate`]) rather than
//! on message text. Every message that can carry server or user text passes through
//! [`crate::redact`] first, so a password never reaches a log line or a report.

use crate::redact::redact;

/// SQLSTATE `42501`: the role lacks a privilege.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE `28P01`: wrong password.
const INVALID_PASSWORD: &str = "28P01";
/// SQLSTATE `28000`: rejected by `pg_hba.conf` or by another authentication rule.
const INVALID_AUTHORIZATION: &str = "28000";

/// A connection-layer failure. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The DSN / conninfo / URI (or a service file entry) could not be parsed; says which part.
    #[error("invalid connection string: {0}")]
    InvalidDsn(String),
    /// A setting resolved from the DSN, a service file or a `PG*` variable is unusable.
    #[error("invalid connection setting: {0}")]
    Config(String),
    /// The server could not be reached at all (refused, no such socket, DNS failure, timeout).
    #[error(
        "could not connect to {target}: {message}; hint: is the server running and accepting \
         connections there? Check the host and port in the DSN or PGHOST/PGPORT"
    )]
    Unreachable {
        /// `host:port` tried.
        target: String,
        /// What the operating system or driver said.
        message: String,
    },
    /// The server rejected the credentials (SQLSTATE 28P01 / 28000) or wanted a password we lack.
    #[error(
        "{message} (connecting to {target}); hint: check the password in the DSN, PGPASSWORD \
         or your .pgpass entry, and the server's pg_hba.conf"
    )]
    AuthFailed {
        /// `host:port/dbname` tried.
        target: String,
        /// The user name that was rejected.
        user: String,
        /// The server's message, e.g. `password authentication failed for user "x"`.
        message: String,
    },
    /// TLS could not be negotiated or the server certificate was not accepted.
    #[error(
        "TLS connection to {target} failed: {message}; hint: check sslmode, sslrootcert and the \
         server certificate's host name"
    )]
    Tls {
        /// `host:port` tried.
        target: String,
        /// What failed in the handshake or the certificate check.
        message: String,
    },
    /// The server refused the session for another reason (database missing, too many clients…).
    #[error("server {target} refused the connection: {message} (SQLSTATE {code})")]
    Server {
        /// `host:port/dbname` tried.
        target: String,
        /// The five-character SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server accepted the session but is not the kind `target_session_attrs` asked for.
    #[error(
        "server {target} is not {wanted}; hint: connect to another host or relax \
         target_session_attrs"
    )]
    WrongSessionAttrs {
        /// `host:port` tried.
        target: String,
        /// The requested `target_session_attrs` value.
        wanted: String,
    },
    /// Several hosts were listed and none gave a usable session; one entry per host tried.
    #[error("could not connect to any of the hosts: {}", join_attempts(.attempts))]
    AllHostsFailed {
        /// The hosts as listed in the configuration.
        target: String,
        /// One error per attempt, in the order tried.
        attempts: Vec<PgError>,
    },
    /// Any other failure while opening a connection.
    #[error("could not connect to {target}: {message}")]
    Connect {
        /// `host:port/dbname` tried.
        target: String,
        /// What failed.
        message: String,
    },
    /// A query failed; `code` keeps the SQLSTATE so callers can detect e.g. 42501.
    #[error("query failed on {target}: {message}{}", code_suffix(.code))]
    Query {
        /// The session's target.
        target: String,
        /// The server's message.
        message: String,
        /// The SQLSTATE, when the server reported one.
        code: Option<String>,
    },
}

fn join_attempts(attempts: &[PgError]) -> String {
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

fn code_suffix(code: &Option<String>) -> String {
    match code {
        Some(code) if code == INSUFFICIENT_PRIVILEGE => format!(
            " (SQLSTATE {code}); hint: grant the role the privilege, or pg_monitor for monitoring views"
        ),
        Some(code) => format!(" (SQLSTATE {code})"),
        None => String::new(),
    }
}

impl PgError {
    /// Wraps a failed query on `target`, keeping the SQLSTATE and removing any secret.
    pub fn query(target: &str, error: &tokio_postgres::Error) -> Self {
        let (message, code) = match error.as_db_error() {
            Some(db) => (db.message().to_owned(), Some(db.code().code().to_owned())),
            None => (error.to_string(), None),
        };
        PgError::Query {
            target: target.to_owned(),
            message: redact(&message),
            code,
        }
    }

    /// The SQLSTATE the server reported, if this error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Query { code, .. } => code.as_deref(),
            PgError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The role lacks a privilege (SQLSTATE 42501), e.g. a monitoring view needs `pg_monitor`.
    pub fn is_insufficient_privilege(&self) -> bool {
        self.sqlstate() == Some(INSUFFICIENT_PRIVILEGE)
    }

    /// The credentials were rejected (on every host, when several were tried).
    pub fn is_auth_failure(&self) -> bool {
        match self {
            PgError::AuthFailed { .. } => true,
            PgError::AllHostsFailed { attempts, .. } => {
                !attempts.is_empty() && attempts.iter().all(PgError::is_auth_failure)
            }
            _ => false,
        }
    }

    /// No server could be reached (on every host, when several were tried).
    pub fn is_unreachable(&self) -> bool {
        match self {
            PgError::Unreachable { .. } => true,
            PgError::AllHostsFailed { attempts, .. } => {
                !attempts.is_empty() && attempts.iter().all(PgError::is_unreachable)
            }
            _ => false,
        }
    }

    /// TLS negotiation or certificate verification failed.
    pub fn is_tls_failure(&self) -> bool {
        match self {
            PgError::Tls { .. } => true,
            PgError::AllHostsFailed { attempts, .. } => {
                attempts.iter().any(PgError::is_tls_failure)
            }
            _ => false,
        }
    }

    /// Classifies a failed connection attempt to `target` (`host:port/dbname`) as `user`.
    pub(crate) fn from_connect(target: &str, user: &str, error: &tokio_postgres::Error) -> Self {
        let target = target.to_owned();
        if let Some(db) = error.as_db_error() {
            let message = redact(db.message());
            let code = db.code().code();
            if code == INVALID_PASSWORD || code == INVALID_AUTHORIZATION {
                return PgError::AuthFailed {
                    target,
                    user: user.to_owned(),
                    message,
                };
            }
            return PgError::Server {
                target,
                code: code.to_owned(),
                message,
            };
        }
        let message = redact(&full_message(error));
        if message.contains("password missing") {
            return PgError::AuthFailed {
                target,
                user: user.to_owned(),
                message: format!(
                    "the server asked for a password for user \"{user}\" but none was given"
                ),
            };
        }
        if message.contains("TLS") || message.contains("certificate") {
            return PgError::Tls { target, message };
        }
        if is_socket_failure(error) {
            return PgError::Unreachable { target, message };
        }
        PgError::Connect { target, message }
    }
}

/// The error and its sources, so "error connecting to server: Connection refused" keeps its cause.
fn full_message(error: &tokio_postgres::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// tokio-postgres reports socket-level failures (refused, no such socket, DNS, connect timeout)
/// as its "connect" kind; its display text is the only stable handle on that kind.
fn is_socket_failure(error: &tokio_postgres::Error) -> bool {
    error.to_string().starts_with("error connecting to server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_and_privilege_detection() {
        let error = PgError::Query {
            target: "h:5432/db".into(),
            message: "permission denied for table t".into(),
            code: Some(INSUFFICIENT_PRIVILEGE.into()),
        };
        assert!(error.is_insufficient_privilege());
        assert_eq!(error.sqlstate(), Some("42501"));
        assert!(error.to_string().contains("hint:"));
    }

    #[test]
    fn all_hosts_failed_lists_each_host_and_kind() {
        let error = PgError::AllHostsFailed {
            target: "a:1,b:2/db".into(),
            attempts: vec![
                PgError::Unreachable {
                    target: "a:1".into(),
                    message: "refused".into(),
                },
                PgError::Unreachable {
                    target: "b:2".into(),
                    message: "refused".into(),
                },
            ],
        };
        let text = error.to_string();
        assert!(text.contains("a:1") && text.contains("b:2"), "{text}");
        assert!(error.is_unreachable());
        assert!(!error.is_auth_failure());
    }
}
