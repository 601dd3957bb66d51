//! Errors of `wal push` and `wal fetch`. The CLI turns the kinds into exit codes PostgreSQL
//! understands, so callers branch on the variant (and [`ArchiveError::is_integrity`]).

use crate::error::BackupError;
use std::path::PathBuf;

/// Everything that can go wrong archiving or fetching one WAL file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file name is not one PostgreSQL archives.
    #[error("{0}")]
    NotWalFile(String),
    /// The file has a WAL file's name but not a WAL segment's contents.
    #[error("{} is not a usable WAL segment: {reason}", path.display())]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A different file is already archived under this name.
    #[error(
        "refusing to archive {file}: the repository {location} already holds a different {file}; \
         another cluster or timeline is archiving into it — give each cluster its own repository"
    )]
    Conflict {
        /// The WAL file name.
        file: String,
        /// The repository.
        location: String,
    },
    /// A WAL segment was written by another cluster than the repository's.
    #[error(
        "WAL file {file} belongs to the cluster with system identifier {found}, but the repository \
         {location} holds cluster {expected}; use a separate repository per cluster"
    )]
    ForeignWal {
        /// The WAL file name.
        file: String,
        /// The system identifier in the file.
        found: u64,
        /// The repository's.
        expected: u64,
        /// The repository.
        location: String,
    },
    /// The repository failed (storage, corruption, key, other cluster...).
    #[error(transparent)]
    Repository(#[from] BackupError),
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
}

impl ArchiveError {
    /// An [`ArchiveError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> ArchiveError {
        ArchiveError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the archive can never serve the file as asked — it is corrupt or another
    /// cluster's, or the repository is missing, unreadable with the key given, or of an unknown
    /// format — as opposed to being unreachable for now. Recovery must stop on these rather
    /// than take the file as absent and end early.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ArchiveError::ForeignWal { .. }
                | ArchiveError::BadSegment { .. }
                | ArchiveError::Repository(
                    BackupError::Corrupt { .. }
                        | BackupError::OtherCluster { .. }
                        | BackupError::WrongKey
                        | BackupError::KeyRequired
                        | BackupError::KeyForPlainRepository
                        | BackupError::NoRepository { .. }
                        | BackupError::UnsupportedFormat { .. }
                )
        )
    }
}
