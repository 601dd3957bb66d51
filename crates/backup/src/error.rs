//! The one error type of the backup crate. Every message is a sentence that says what is wrong
//! and, where there is something to do, what to do; callers branch on the variant, not the text.

use std::path::PathBuf;

/// Everything that can go wrong creating, reading or writing a backup repository.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The storage backend failed (unreachable, permission denied, disk full...).
    #[error("repository storage: {0}")]
    Storage(#[from] pgdbre_storage::StorageError),
    /// An object the repository should hold is not there.
    #[error(
        "object {key} is missing from the repository; run `pgdbre verify` to see what it affects"
    )]
    MissingObject {
        /// The object key.
        key: String,
    },
    /// A stored object fails its checksum, cannot be decoded, or does not hash to its address.
    #[error("object {key} is corrupt ({reason}); run `pgdbre verify` to list the backups that reference it")]
    Corrupt {
        /// The object key.
        key: String,
        /// What check failed.
        reason: String,
    },
    /// The repository is encrypted and no key was given.
    #[error("the repository is encrypted; pass its key with --encryption-key-file FILE or the PGDBRE_REPO_KEY environment variable")]
    KeyRequired,
    /// A key was given but does not match the repository's key check value.
    #[error("the encryption key does not match this repository's key; pass the key the repository was created with")]
    WrongKey,
    /// A key was given for a repository created without encryption.
    #[error("the repository is not encrypted, but an encryption key was given; drop --encryption-key-file / PGDBRE_REPO_KEY, or use a new repository")]
    KeyForPlainRepository,
    /// The key material is unusable.
    #[error("unusable encryption key ({0}); use at least 16 random bytes, e.g. `openssl rand -hex 32 > key`")]
    BadKey(String),
    /// The repository belongs to another PostgreSQL cluster.
    #[error(
        "the repository belongs to another PostgreSQL cluster (system identifier {repository}, \
         this server has {server}); use a separate repository per cluster"
    )]
    OtherCluster {
        /// The repository's system identifier.
        repository: u64,
        /// The connected server's.
        server: u64,
    },
    /// The repository was written in an older format this build no longer reads.
    #[error("the repository has format version {found} (one object per block, written by a pgdbre from before packs); this pgdbre reads version {supported}: back up into a new repository, and restore the old one's backups with the pgdbre that wrote them")]
    OldFormat {
        /// The repository's format version.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },
    /// The repository was written by a newer, unknown format.
    #[error("the repository has format version {found}, this pgdbre reads version {supported}; upgrade pgdbre")]
    UnsupportedFormat {
        /// The repository's format version.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },
    /// No repository at the location.
    #[error("no backup repository at {location}; run `pgdbre backup` to create one there")]
    NoRepository {
        /// The location.
        location: String,
    },
    /// The requested backup set does not exist.
    #[error("no backup named {label} in the repository; `pgdbre info` lists the backups")]
    NoSuchBackup {
        /// The requested label.
        label: String,
    },
    /// The repository has no backup at all.
    #[error("the repository has no backup yet; take one with `pgdbre backup`")]
    NoBackups,
    /// An incremental backup was asked for with no full backup to build on.
    #[error("an incremental backup needs a previous backup of this cluster; take a full backup first (--type full)")]
    NoParent,
    /// A PostgreSQL connection or query failed.
    #[error("{0}")]
    Pg(#[from] pgdbre_pg::PgError),
    /// The server cannot be backed up as asked.
    #[error("{0}")]
    Server(String),
    /// A local file-system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create directory"...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The restore target cannot be used.
    #[error("{0}")]
    Target(String),
    /// A required WAL segment did not appear in time.
    #[error("WAL segment {segment} did not become available in pg_wal within {seconds} s; check that the server is writing WAL and that pg_wal is readable")]
    WalTimeout {
        /// The segment file name.
        segment: String,
        /// How long was waited.
        seconds: u64,
    },
    /// A backup from a standby needs the whole segment holding its stop LSN, and the standby
    /// did not receive its end in time (the primary did not finish that segment).
    #[error("the standby has not received the end of WAL segment {segment} within {seconds} s (it has WAL up to {received}); a backup from a standby needs that whole segment, and only the primary can finish it: set archive_timeout on the primary (e.g. 60s) or run SELECT pg_switch_wal() there")]
    StandbyWalTimeout {
        /// The segment file name.
        segment: String,
        /// How far the standby had WAL when the wait ended.
        received: String,
        /// How long was waited.
        seconds: u64,
    },
    /// The backup's `in-progress` marker went unrefreshed long enough that `expire` may have
    /// taken the backup for killed and deleted packs it uses; no manifest was written.
    #[error("this backup's in-progress marker went {seconds} s or more without a refresh (the process was paused or suspended, or the repository unreachable), so `pgdbre expire` may have taken the backup for a killed one and deleted packs it uses; the backup was not completed: take it again")]
    MarkerLapsed {
        /// The longest gap a backup tolerates between two refreshes.
        seconds: u64,
    },
    /// A manifest could not be (de)serialised.
    #[error("manifest {key}: {reason}")]
    Manifest {
        /// The object key.
        key: String,
        /// What failed.
        reason: String,
    },
}

impl BackupError {
    /// An [`BackupError::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BackupError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`BackupError::Corrupt`] for `key`.
    pub(crate) fn corrupt(key: &str, reason: impl Into<String>) -> Self {
        BackupError::Corrupt {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}
