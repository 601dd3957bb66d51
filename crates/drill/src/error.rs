//! Why a drill failed. Each message is one sentence a DBRE can act on; the drill report carries it
//! as a failure reason and the server log excerpt beside it.

use std::path::PathBuf;

/// Everything that can stop a drill before it has a verdict.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Reading the repository or restoring the backup failed.
    #[error("restore failed: {0}")]
    Restore(#[from] pgdbre_backup::BackupError),
    /// The drill server's `restore_command` could not decrypt the archive.
    #[error(
        "the repository is encrypted and its key came from PGDBRE_REPO_KEY, which the restored \
         server's restore_command (`pgdbre wal fetch`) does not receive; pass \
         --encryption-key-file FILE (readable by the postgres OS user), or drill with --target immediate"
    )]
    KeyFileNeeded,
    /// No installed PostgreSQL of the backup's major version.
    #[error("no PostgreSQL {major} installation to run the restored backup on ({detail}); install it, or pass --pg-bin DIR")]
    NoInstall {
        /// The backup's major version.
        major: u32,
        /// What was found instead.
        detail: String,
    },
    /// The scratch server did not start or reach consistency.
    #[error("the restored server did not start: {reason}; the server log excerpt says why")]
    Start {
        /// What `pg_ctl` reported.
        reason: String,
    },
    /// The server stopped on its own (for example recovery ended before reaching the target).
    #[error("the restored server stopped during {phase}: {last_error}")]
    ServerExited {
        /// The phase it died in.
        phase: &'static str,
        /// The server log's last FATAL/PANIC line, or the connection error.
        last_error: String,
    },
    /// Connecting to the scratch server failed.
    #[error("could not connect to the restored server: {0}")]
    Connect(pgdbre_pg::PgError),
    /// A query the drill itself needs failed.
    #[error("reading the recovery state of the restored server failed: {0}")]
    Query(String),
    /// A smoke query failed.
    #[error("smoke SQL failed in database {database}: {message}")]
    Smoke {
        /// The database.
        database: String,
        /// The server's error.
        message: String,
    },
    /// The drill took longer than `--timeout`.
    #[error("the drill did not finish within --timeout {seconds} s (while {phase}); raise --timeout if recovery is simply slow")]
    Timeout {
        /// What it was doing.
        phase: &'static str,
        /// The timeout.
        seconds: u64,
    },
    /// A local file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The OS user the server runs as could not be determined.
    #[error("{0}")]
    Lab(#[from] pgdbre_lab::LabError),
}
