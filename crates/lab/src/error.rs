//! The one error type of the lab; every message says what went wrong and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong starting, driving or stopping a lab cluster.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// No usable PostgreSQL installation.
    #[error(
        "no PostgreSQL installation found ({detail}); install PostgreSQL, or point PG_BINDIR \
         (or --pg-bin) at its bin directory"
    )]
    InstallNotFound {
        /// What was looked at and why it did not fit.
        detail: String,
    },
    /// A file-system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("create directory").
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (initdb, pg_ctl, pg_basebackup, openssl, psql) failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line, for re-running it by hand.
        command: String,
        /// Exit status, or why it could not be started.
        status: String,
        /// Its stderr (or stdout when stderr was empty), trimmed.
        output: String,
    },
    /// A server did not come up.
    #[error(
        "{node} did not start: {reason}\n--- last lines of {} ---\n{log_tail}\n\
         HINT: read the server log above; a port clash or a bad setting is the usual cause",
        log.display()
    )]
    Start {
        /// Node name.
        node: String,
        /// What failed.
        reason: String,
        /// Path of the server log.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// SQL sent through psql failed.
    #[error("SQL failed on {node}: {stderr}")]
    Sql {
        /// Node name.
        node: String,
        /// psql's stderr.
        stderr: String,
    },
    /// A polled condition did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}; the machine may be overloaded, or the server log says why")]
    Timeout {
        /// The awaited condition.
        what: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// No lab state in the directory.
    #[error("no lab in {}: {reason}; start one with `pgdbre lab up`", dir.display())]
    NoLab {
        /// The lab directory.
        dir: PathBuf,
        /// Why the state could not be loaded.
        reason: String,
    },
    /// The directory already holds a lab or other files.
    #[error("{} is already in use: {reason}", dir.display())]
    DirInUse {
        /// The directory.
        dir: PathBuf,
        /// What is there and what to do.
        reason: String,
    },
    /// A node name that the cluster does not have.
    #[error("no node named {name:?}; the nodes are: {known}")]
    UnknownNode {
        /// The requested name.
        name: String,
        /// The existing names, comma-separated.
        known: String,
    },
    /// A background psql session failed.
    #[error("background session on {node}: {reason}")]
    Session {
        /// Node name.
        node: String,
        /// What failed, with psql's stderr.
        reason: String,
    },
}

impl LabError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LabError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
