//! `pgdbre wal push %p`: archive one WAL file, as PostgreSQL's `archive_command`.
//!
//! One call stores the requested file and, in parallel (`jobs`), up to a few more files that
//! PostgreSQL has already marked `.ready`; each of those is recorded in the spool with the
//! BLAKE3 of the bytes stored, and its own later call returns as soon as the file on disk still
//! hashes to that — no repository round trip. This is pgBackRest's archive-async idea without a
//! background daemon: the process that returns 0 for a file has seen that file durably stored.
//!
//! Pushing the same file twice succeeds; a different file under an archived name is refused
//! (that is what keeps two clusters or timelines from mixing in one repository), as is a
//! segment whose header names another cluster than the repository's.

use super::error::ArchiveError;
use super::identity::{control_system_identifier, SegmentHeader};
use super::name::{WalFileKind, WalFileName};
use super::ready::ready_files;
use super::spool::{parent_or_current, Spool, SPOOL_DIR_NAME};
use crate::codec::DEFAULT_LEVEL;
use crate::key::RepoKey;
use crate::repository::{OpenMode, Repository, WalPut};
use futures::StreamExt;
use std::path::{Path, PathBuf};

/// Files stored at once when `--jobs` is not given: enough to hide object-storage latency and
/// to spread compression over a few cores, without starving the database of CPU.
pub const DEFAULT_JOBS: usize = 4;
/// How many `.ready` files one call stores ahead, per job.
const AHEAD_PER_JOB: usize = 4;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Repository location (path or `s3://bucket/prefix`).
    pub repo: String,
    /// Repository key.
    pub key: Option<RepoKey>,
    /// Spool directory; `None`: `pg_wal/pgdbre-spool/push` next to the pushed file.
    pub spool: Option<PathBuf>,
    /// Files stored in parallel; 1 disables pushing ahead.
    pub jobs: usize,
    /// The data directory, for `global/pg_control` when the file is not a segment; `None`:
    /// the parent of the pushed file's directory (PostgreSQL passes `pg_wal/<file>`).
    pub pgdata: Option<PathBuf>,
}

impl PushOptions {
    /// Defaults for `repo`.
    pub fn new(repo: &str) -> PushOptions {
        PushOptions {
            repo: repo.to_string(),
            key: None,
            spool: None,
            jobs: DEFAULT_JOBS,
            pgdata: None,
        }
    }
}

/// What happened to the requested file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored by this call; the stored size in bytes.
    Stored(u64),
    /// The repository already held the identical file.
    AlreadyArchived,
    /// An earlier call stored it ahead; acknowledged from the spool.
    StoredAhead,
}

/// The result of one `wal push`.
#[derive(Debug, Clone)]
pub struct PushSummary {
    /// The requested file.
    pub file: WalFileName,
    /// What happened to it.
    pub outcome: PushOutcome,
    /// Other `.ready` files this call stored ahead.
    pub stored_ahead: usize,
}

/// Archives the WAL file at `path` into `options.repo`. Returns only once it is durably stored.
pub async fn push(path: &Path, options: &PushOptions) -> Result<PushSummary, ArchiveError> {
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let file: WalFileName = file_name.parse().map_err(ArchiveError::NotWalFile)?;
    let pg_wal = parent_or_current(path);
    let spool_dir = options
        .spool
        .clone()
        .unwrap_or_else(|| pg_wal.join(SPOOL_DIR_NAME).join("push"));
    let spool = Spool::open(&spool_dir, &options.repo)?;
    let bytes = read(path).await?;
    let digest = blake3::hash(&bytes).to_hex().to_string();
    let ack = ack_name(file.as_str());
    if spool.read(&ack).as_deref() == Some(digest.as_bytes()) {
        spool.remove(&ack);
        return Ok(PushSummary {
            file,
            outcome: PushOutcome::StoredAhead,
            stored_ahead: 0,
        });
    }

    let system_identifier = match file.kind() {
        WalFileKind::Segment | WalFileKind::Partial => Some(segment_identity(path, &file, &bytes)?),
        WalFileKind::BackupHistory | WalFileKind::TimelineHistory => {
            let pgdata = options
                .pgdata
                .clone()
                .unwrap_or_else(|| parent_or_current(&pg_wal));
            control_system_identifier(&pgdata).or_else(|| control_system_identifier(Path::new(".")))
        }
    };
    let mode = match system_identifier {
        Some(system_identifier) => OpenMode::ForCluster {
            system_identifier,
            compress_level: DEFAULT_LEVEL,
        },
        // Without an identity to create the repository for, it must already exist.
        None => OpenMode::Existing,
    };
    let repository = Repository::open(&options.repo, options.key.clone(), mode).await?;

    let jobs = options.jobs.max(1);
    let ahead: Vec<WalFileName> = if jobs > 1 {
        ready_files(&pg_wal)
            .into_iter()
            .filter(|ready| ready != &file && !spool.contains(&ack_name(ready.as_str())))
            .take(jobs * AHEAD_PER_JOB - 1)
            .collect()
    } else {
        Vec::new()
    };
    let current = async {
        match repository
            .put_wal(file.timeline(), file.as_str(), bytes)
            .await?
        {
            WalPut::Created(size) => Ok(PushOutcome::Stored(size)),
            WalPut::AlreadyIdentical => Ok(PushOutcome::AlreadyArchived),
            WalPut::Conflict => Err(ArchiveError::Conflict {
                file: file.to_string(),
                location: repository.location().to_string(),
            }),
        }
    };
    let others = futures::stream::iter(ahead)
        .map(|ready| push_ahead(&repository, &spool, &pg_wal, ready))
        .buffer_unordered((jobs - 1).max(1))
        .filter(|stored| std::future::ready(*stored))
        .count();
    let (outcome, stored_ahead) = futures::join!(current, others);
    let outcome = outcome?;
    tracing::debug!(file = %file, ?outcome, stored_ahead, "wal push");
    Ok(PushSummary {
        file,
        outcome,
        stored_ahead,
    })
}

/// Stores one `.ready` file ahead of its own call and records it in the spool. Any problem
/// just leaves it for that call, which reports it properly.
async fn push_ahead(
    repository: &Repository,
    spool: &Spool,
    pg_wal: &Path,
    file: WalFileName,
) -> bool {
    let path = pg_wal.join(file.as_str());
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return false;
    };
    if matches!(file.kind(), WalFileKind::Segment | WalFileKind::Partial) {
        match segment_identity(&path, &file, &bytes) {
            Ok(system_identifier) if system_identifier == repository.config().system_identifier => {
            }
            _ => return false,
        }
    } else if file.kind() == WalFileKind::BackupHistory {
        // Cheap text files whose identity needs pg_control: leave them to their own call.
        return false;
    }
    let digest = blake3::hash(&bytes).to_hex().to_string();
    match repository
        .put_wal(file.timeline(), file.as_str(), bytes)
        .await
    {
        Ok(WalPut::Created(_) | WalPut::AlreadyIdentical) => spool
            .write(&ack_name(file.as_str()), digest.as_bytes())
            .is_ok(),
        Ok(WalPut::Conflict) => false,
        Err(error) => {
            tracing::debug!(file = %file, %error, "could not push ahead; its own call will retry");
            false
        }
    }
}

/// The system identifier of segment `bytes`, after checking the file is the segment it is
/// named after.
fn segment_identity(path: &Path, file: &WalFileName, bytes: &[u8]) -> Result<u64, ArchiveError> {
    let bad = |reason: String| ArchiveError::BadSegment {
        path: path.to_path_buf(),
        reason,
    };
    let header = SegmentHeader::parse(bytes).map_err(bad)?;
    if let Some(segment) = file.segment() {
        header
            .check_matches(segment, bytes.len() as u64)
            .map_err(bad)?;
    }
    Ok(header.system_identifier)
}

fn ack_name(file: &str) -> String {
    format!("{file}.ok")
}

async fn read(path: &Path) -> Result<Vec<u8>, ArchiveError> {
    tokio::fs::read(path)
        .await
        .map_err(|error| ArchiveError::io("read", path, error))
}
