//! `pgdbre wal push %p`: archive one WAL file, as PostgreSQL's `archive_command`.
//!
//! Files PostgreSQL has already marked `.ready` are stored ahead of their own call, `jobs` at a
//! time, and recorded in the spool with the fingerprint (XXH3-128) of the bytes stored; their
//! own later call returns as soon as the file on disk still has that fingerprint — no
//! repository round trip. From
//! the command line the storing ahead is done by a background worker ([`super::worker`]) that
//! keeps going while PostgreSQL's calls are acknowledged, so a backlog drains at the speed of
//! `jobs` compressors (pgBackRest's archive-async); without one, each call that finds its file
//! not acknowledged stores a batch of the next files itself. Either way, the process that
//! returns 0 for a file has seen that file durably stored.
//!
//! Pushing the same file twice succeeds; a different file under an archived name is refused
//! (that is what keeps two clusters or timelines from mixing in one repository), as is a
//! segment whose header names another cluster than the repository's.

use super::error::ArchiveError;
use super::identity::{control_system_identifier, SegmentHeader};
use super::name::{WalFileKind, WalFileName};
use super::ready::ready_files;
use super::spool::{parent_or_current, Spool, SPOOL_DIR_NAME};
use super::worker;
use crate::codec::DEFAULT_LEVEL;
use crate::key::RepoKey;
use crate::repository::{EncodedWal, OpenMode, Repository, WalPut};
use futures::StreamExt;
use std::cell::RefCell;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

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
    /// How to start a background worker (program, then arguments) that runs
    /// [`run_worker`](super::run_worker) on the same options; `None`: each call stores the
    /// files ahead of it itself (see [`push`]).
    pub worker: Option<Vec<OsString>>,
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
            worker: None,
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
    /// An earlier call or the background worker stored it; acknowledged from the spool.
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
    let file = file_name_of(path)?;
    let (pg_wal, spool) = open_spool(path, options)?;
    let ack = ack_name(file.as_str());
    // Stored ahead by an earlier call or the worker: done if the file still has the fingerprint
    // of the bytes stored. Most of a backlog's calls end here.
    if acknowledged(&spool, &ack, path).await? {
        return Ok(PushSummary {
            file,
            outcome: PushOutcome::StoredAhead,
            stored_ahead: 0,
        });
    }
    // A background worker failed on this file earlier: this call stores it and says why not.
    let worker_failed = spool.contains(&error_name(file.as_str()));
    spool.remove(&error_name(file.as_str()));
    let mut jobs = options.jobs.max(1);
    if let (Some(command), false, true) = (&options.worker, worker_failed, jobs > 1) {
        if file.kind() != WalFileKind::BackupHistory {
            if worker::stored_in_background(command, &spool, &file, path).await? {
                return Ok(PushSummary {
                    file,
                    outcome: PushOutcome::StoredAhead,
                    stored_ahead: 0,
                });
            }
            // The worker did not store it: store it here, alone (the worker has the others).
            jobs = 1;
        }
    }

    let repository = open_repository(path, &file, options).await?;

    let ahead: Vec<WalFileName> = if jobs > 1 {
        ready_files(&pg_wal)
            .into_iter()
            .filter(|ready| ready != &file && !spool.contains(&ack_name(ready.as_str())))
            .filter(|ready| ready.kind() != WalFileKind::BackupHistory)
            .take(jobs * AHEAD_PER_JOB - 1)
            .collect()
    } else {
        Vec::new()
    };
    // `jobs` files are read and compressed at a time, the requested one first (the semaphore
    // is fair and it asks first); a file waiting for the storage (fsync, upload) gives its slot
    // to the next, so up to `jobs` more are in flight to keep the slots busy meanwhile.
    let slots = Semaphore::new(jobs);
    let current = async {
        let encoded = {
            let _slot = slots.acquire().await;
            encode_file(&repository, path, &file).await?.0
        };
        match repository.store_wal(encoded).await? {
            WalPut::Created(size) => Ok(PushOutcome::Stored(size)),
            WalPut::AlreadyIdentical => Ok(PushOutcome::AlreadyArchived),
            WalPut::Conflict => Err(ArchiveError::Conflict {
                file: file.to_string(),
                location: repository.location().to_string(),
            }),
        }
    };
    let others = futures::stream::iter(ahead)
        .map(|ready| push_ahead(&repository, &spool, &pg_wal, &slots, ready))
        .buffer_unordered(jobs)
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

/// The WAL file name of `path` (PostgreSQL's `%p`).
pub(super) fn file_name_of(path: &Path) -> Result<WalFileName, ArchiveError> {
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    file_name.parse().map_err(ArchiveError::NotWalFile)
}

/// The `pg_wal` directory of the WAL file at `path` and the push spool for it.
pub(super) fn open_spool(
    path: &Path,
    options: &PushOptions,
) -> Result<(PathBuf, Spool), ArchiveError> {
    let pg_wal = parent_or_current(path);
    let spool_dir = options
        .spool
        .clone()
        .unwrap_or_else(|| pg_wal.join(SPOOL_DIR_NAME).join("push"));
    let spool = Spool::open(&spool_dir, &options.repo)?;
    Ok((pg_wal, spool))
}

/// Opens `options.repo` for the cluster that wrote the WAL file `file` at `path` (creating the
/// repository if it is the first file archived): a segment names its cluster in its header,
/// other files go by the data directory's `pg_control`.
pub(super) async fn open_repository(
    path: &Path,
    file: &WalFileName,
    options: &PushOptions,
) -> Result<Repository, ArchiveError> {
    let pg_wal = parent_or_current(path);
    let system_identifier = match file.kind() {
        WalFileKind::Segment | WalFileKind::Partial => Some(header_identity(path).await?),
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
    Ok(Repository::open(&options.repo, options.key.clone(), mode).await?)
}

/// Stores one `.ready` file ahead of its own call and records it in the spool: `<name>.ok`
/// with the fingerprint of the bytes stored, or `<name>.error` with why not, which sends that call
/// to store the file itself and report the problem properly. `true` when stored.
pub(super) async fn push_ahead(
    repository: &Repository,
    spool: &Spool,
    pg_wal: &Path,
    slots: &Semaphore,
    file: WalFileName,
) -> bool {
    let path = pg_wal.join(file.as_str());
    let stored = async {
        let encoded = {
            let _slot = slots.acquire().await;
            let (encoded, system_identifier) = encode_file(repository, &path, &file)
                .await
                .map_err(|error| error.to_string())?;
            if let Some(system_identifier) = system_identifier {
                if system_identifier != repository.config().system_identifier {
                    return Err(format!(
                        "its header names cluster {system_identifier}, not the repository's"
                    ));
                }
            }
            encoded
        };
        let fingerprint = format!("{:032x}", encoded.fingerprint());
        match repository.store_wal(encoded).await {
            Ok(WalPut::Created(_) | WalPut::AlreadyIdentical) => spool
                .write(&ack_name(file.as_str()), fingerprint.as_bytes())
                .map_err(|error| error.to_string()),
            Ok(WalPut::Conflict) => Err("another file is archived under its name".to_string()),
            Err(error) => Err(error.to_string()),
        }
    };
    match stored.await {
        Ok(()) => true,
        Err(reason) => {
            tracing::debug!(file = %file, %reason, "could not push ahead; its own call will");
            let _ = spool.write(&error_name(file.as_str()), reason.as_bytes());
            false
        }
    }
}

thread_local! {
    /// The file being encoded, read into a buffer each thread keeps: a fresh 16 MiB buffer per
    /// segment costs thousands of page faults, more than the read itself.
    static FILE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads WAL file `file` at `path`, checks a segment is the one it is named after, and encodes
/// it for `repository`, on a blocking thread. Also returns a segment's system identifier.
async fn encode_file(
    repository: &Repository,
    path: &Path,
    file: &WalFileName,
) -> Result<(EncodedWal, Option<u64>), ArchiveError> {
    let repository = repository.clone();
    let path = path.to_path_buf();
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut reader =
            std::fs::File::open(&path).map_err(|error| ArchiveError::io("read", &path, error))?;
        FILE_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let bytes = read_into(&mut reader, &mut buffer)
                .map_err(|error| ArchiveError::io("read", &path, error))?;
            let system_identifier = match file.kind() {
                WalFileKind::Segment | WalFileKind::Partial => {
                    Some(segment_identity(&path, &file, bytes)?)
                }
                WalFileKind::BackupHistory | WalFileKind::TimelineHistory => None,
            };
            let encoded = repository.encode_wal(file.timeline(), file.as_str(), bytes)?;
            Ok((encoded, system_identifier))
        })
    })
    .await
    .unwrap_or_else(|error| {
        Err(ArchiveError::io(
            "read",
            Path::new(""),
            std::io::Error::other(error),
        ))
    })
}

/// The whole of `reader` in `buffer`, which grows as needed and is never shrunk.
fn read_into<'a>(reader: &mut std::fs::File, buffer: &'a mut Vec<u8>) -> std::io::Result<&'a [u8]> {
    let len = usize::try_from(reader.metadata()?.len()).map_err(std::io::Error::other)?;
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    reader.read_exact(&mut buffer[..len])?;
    Ok(&buffer[..len])
}

/// The system identifier in the first page header of the segment at `path`.
async fn header_identity(path: &Path) -> Result<u64, ArchiveError> {
    let mut header = [0; 64];
    let mut reader = tokio::fs::File::open(path)
        .await
        .map_err(|error| ArchiveError::io("read", path, error))?;
    let mut len = 0;
    while len < header.len() {
        match reader.read(&mut header[len..]).await {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(error) => return Err(ArchiveError::io("read", path, error)),
        }
    }
    SegmentHeader::parse(&header[..len])
        .map(|header| header.system_identifier)
        .map_err(|reason| ArchiveError::BadSegment {
            path: path.to_path_buf(),
            reason,
        })
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

/// The spool entry that acknowledges `file` as stored.
pub(super) fn ack_name(file: &str) -> String {
    format!("{file}.ok")
}

/// The spool entry that records why a worker could not store `file`.
pub(super) fn error_name(file: &str) -> String {
    format!("{file}.error")
}

/// Whether the spool acknowledges the file at `path` under entry `ack` with the bytes it holds
/// now. The entry is consumed either way: one that does not match vouches for nothing.
pub(super) async fn acknowledged(
    spool: &Spool,
    ack: &str,
    path: &Path,
) -> Result<bool, ArchiveError> {
    let Some(recorded) = spool.read(ack) else {
        return Ok(false);
    };
    let matches = recorded == fingerprint_file(path).await?.as_bytes();
    spool.remove(ack);
    Ok(matches)
}

/// [`wal_fingerprint`] (hex) of the file at `path`, read through a small buffer (a fresh
/// segment-sized one costs more in page faults than the read), off the async threads.
async fn fingerprint_file(path: &Path) -> Result<String, ArchiveError> {
    let owned = path.to_path_buf();
    let fingerprint = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buffer = vec![0; FINGERPRINT_BUFFER];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return Ok(format!("{:032x}", hasher.digest128())),
                Ok(read) => hasher.update(&buffer[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    })
    .await
    .unwrap_or_else(|error| Err(std::io::Error::other(error)));
    fingerprint.map_err(|error| ArchiveError::io("read", path, error))
}

/// Bytes read at a time while fingerprinting a file.
const FINGERPRINT_BUFFER: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::wal_fingerprint;

    #[tokio::test]
    async fn file_fingerprints_match_those_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // Empty, smaller than the buffer, a segment, and not a multiple of the buffer.
        for len in [0, 1, 1025, 16 * 1024 * 1024, 3 * FINGERPRINT_BUFFER + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                fingerprint_file(&path).await.unwrap(),
                format!("{:032x}", wal_fingerprint(&bytes)),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn a_reused_buffer_reads_each_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("long");
        let short = dir.path().join("short");
        std::fs::write(&long, vec![7; 5000]).unwrap();
        std::fs::write(&short, [1, 2, 3]).unwrap();
        let mut buffer = Vec::new();
        let read = read_into(&mut std::fs::File::open(&long).unwrap(), &mut buffer).unwrap();
        assert_eq!(read, &[7; 5000][..]);
        let read = read_into(&mut std::fs::File::open(&short).unwrap(), &mut buffer).unwrap();
        assert_eq!(read, &[1, 2, 3][..]);
    }
}
