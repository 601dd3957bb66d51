//! `pgdbre wal fetch %f %p`: hand one archived WAL file to recovery, as PostgreSQL's
//! `restore_command`.
//!
//! After fetching segment N it fetches N+1..N+k in parallel into the spool (k = `prefetch`),
//! and a later call finds its segment there and only renames it into place; when fewer than
//! k/2 segments remain ahead, a call tops the spool up again. So recovery pays one repository
//! round trip per batch, not per segment. Every file is verified (stored checksum, segment
//! header and system identifier) before it reaches `%p`, which is written atomically.
//!
//! A file the archive does not have is [`FetchOutcome::Missing`] — that is how PostgreSQL
//! learns where the archive ends, so it is not an error. A missing timeline history file is how
//! recovery ends (PostgreSQL probes for a newer timeline to pick its own): the spool's segments
//! are discarded then, so none fetched ahead past a recovery target stays behind.

use super::error::ArchiveError;
use super::identity::{control_system_identifier, SegmentHeader};
use super::name::{WalFileKind, WalFileName};
use super::spool::{parent_or_current, write_file_atomically, Spool, SPOOL_DIR_NAME};
use crate::error::BackupError;
use crate::key::RepoKey;
use crate::repository::{OpenMode, Repository};
use crate::wal::SegmentName;
use futures::StreamExt;
use std::path::{Path, PathBuf};

/// Segments fetched ahead when `--prefetch` is not given.
pub const DEFAULT_PREFETCH: usize = 8;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Repository location.
    pub repo: String,
    /// Repository key.
    pub key: Option<RepoKey>,
    /// Spool directory; `None`: `pg_wal/pgdbre-spool/fetch` next to `%p`.
    pub spool: Option<PathBuf>,
    /// Segments to fetch ahead; 0 disables prefetching.
    pub prefetch: usize,
    /// The data directory being recovered, whose `global/pg_control` must name the
    /// repository's cluster; `None`: the parent of `%p`'s directory.
    pub pgdata: Option<PathBuf>,
}

impl FetchOptions {
    /// Defaults for `repo`.
    pub fn new(repo: &str) -> FetchOptions {
        FetchOptions {
            repo: repo.to_string(),
            key: None,
            spool: None,
            prefetch: DEFAULT_PREFETCH,
            pgdata: None,
        }
    }
}

/// What `wal fetch` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The file is at `%p`.
    Restored {
        /// It came from the spool (fetched ahead by an earlier call).
        from_spool: bool,
        /// Segments this call fetched ahead into the spool.
        prefetched: usize,
    },
    /// The archive does not hold the file.
    Missing,
}

/// Fetches WAL file `file_name` from `options.repo` into `destination`.
pub async fn fetch(
    file_name: &str,
    destination: &Path,
    options: &FetchOptions,
) -> Result<FetchOutcome, ArchiveError> {
    let file: WalFileName = file_name.parse().map_err(ArchiveError::NotWalFile)?;
    let pg_wal = parent_or_current(destination);
    let spool_dir = options
        .spool
        .clone()
        .unwrap_or_else(|| pg_wal.join(SPOOL_DIR_NAME).join("fetch"));
    let spool = Spool::open(&spool_dir, &options.repo)?;
    if let Some(segment) = file.segment() {
        discard_passed(&spool, segment)?;
    }
    let pgdata = options
        .pgdata
        .clone()
        .unwrap_or_else(|| parent_or_current(&pg_wal));

    if spool.take(file.as_str(), destination)? {
        let mut prefetched = 0;
        if let (Some(segment), Some(size)) = (file.segment(), segment_size_of(destination)) {
            if ahead_in_spool(&spool, segment, size, options.prefetch)
                < options.prefetch.div_ceil(2)
            {
                let repository = open(options, &pgdata).await?;
                prefetched = prefetch(&repository, &spool, segment, size, options.prefetch).await;
            }
        }
        return Ok(FetchOutcome::Restored {
            from_spool: true,
            prefetched,
        });
    }

    let repository = open(options, &pgdata).await?;
    let bytes = match repository.get_wal(file.timeline(), file.as_str()).await {
        Ok(bytes) => bytes,
        Err(BackupError::MissingObject { .. }) => {
            if file.kind() == WalFileKind::TimelineHistory {
                discard_all(&spool)?;
            }
            return Ok(FetchOutcome::Missing);
        }
        Err(error) => return Err(error.into()),
    };
    let segment_size = match file.kind() {
        WalFileKind::Segment | WalFileKind::Partial => {
            Some(check_segment(&repository, &file, &bytes)?)
        }
        WalFileKind::BackupHistory | WalFileKind::TimelineHistory => None,
    };
    write_file_atomically(destination, &bytes)?;
    let prefetched = match (file.kind(), file.segment(), segment_size) {
        (WalFileKind::Segment, Some(segment), Some(size)) => {
            prefetch(&repository, &spool, segment, size, options.prefetch).await
        }
        _ => 0,
    };
    Ok(FetchOutcome::Restored {
        from_spool: false,
        prefetched,
    })
}

/// Opens the repository and checks that the cluster being recovered is the repository's.
async fn open(options: &FetchOptions, pgdata: &Path) -> Result<Repository, ArchiveError> {
    let repository =
        Repository::open(&options.repo, options.key.clone(), OpenMode::Existing).await?;
    let expected = repository.config().system_identifier;
    if let Some(server) =
        control_system_identifier(pgdata).or_else(|| control_system_identifier(Path::new(".")))
    {
        if server != expected {
            return Err(BackupError::OtherCluster {
                repository: expected,
                server,
            }
            .into());
        }
    }
    Ok(repository)
}

/// Checks a fetched segment's header against its name and the repository's cluster; returns
/// the segment size it declares.
fn check_segment(
    repository: &Repository,
    file: &WalFileName,
    bytes: &[u8],
) -> Result<u64, ArchiveError> {
    let object = crate::keys::wal_key(file.timeline(), file.as_str());
    let bad = |reason: String| ArchiveError::BadSegment {
        path: PathBuf::from(&object),
        reason,
    };
    let header = SegmentHeader::parse(bytes).map_err(bad)?;
    if let Some(segment) = file.segment() {
        header
            .check_matches(segment, bytes.len() as u64)
            .map_err(bad)?;
    }
    let expected = repository.config().system_identifier;
    if header.system_identifier != expected {
        return Err(ArchiveError::ForeignWal {
            file: file.to_string(),
            found: header.system_identifier,
            expected,
            location: repository.location().to_string(),
        });
    }
    Ok(header.segment_size)
}

/// Fetches the `count` segments after `after` that the spool lacks, in parallel; returns how
/// many were stored. A missing segment is the archive's end for now; other failures are left
/// for the call that needs that segment, which reports them.
async fn prefetch(
    repository: &Repository,
    spool: &Spool,
    after: SegmentName,
    segment_size: u64,
    count: usize,
) -> usize {
    let wanted: Vec<SegmentName> = successors(after, segment_size)
        .take(count)
        .filter(|segment| !spool.contains(&segment.to_string()))
        .collect();
    futures::stream::iter(wanted)
        .map(|segment| async move {
            let file: WalFileName = segment.to_string().parse().expect("a segment name is a WAL file name");
            match repository.get_wal(file.timeline(), file.as_str()).await {
                Ok(bytes) => check_segment(repository, &file, &bytes).is_ok() && spool.write(file.as_str(), &bytes).is_ok(),
                Err(BackupError::MissingObject { .. }) => false,
                Err(error) => {
                    tracing::debug!(file = %file, %error, "prefetch failed; the fetch of this segment will report it");
                    false
                }
            }
        })
        .buffer_unordered(count.max(1))
        .filter(|stored| std::future::ready(*stored))
        .count()
        .await
}

/// How many of the `count` segments after `after` are spooled, counting until the first gap.
fn ahead_in_spool(spool: &Spool, after: SegmentName, segment_size: u64, count: usize) -> usize {
    successors(after, segment_size)
        .take(count)
        .take_while(|segment| spool.contains(&segment.to_string()))
        .count()
}

fn successors(after: SegmentName, segment_size: u64) -> impl Iterator<Item = SegmentName> {
    std::iter::successors(Some(after), move |segment| Some(segment.next(segment_size))).skip(1)
}

/// Removes spooled segments at or before `requested` on any timeline: recovery has moved past
/// them, and after a timeline switch they would otherwise stay forever.
fn discard_passed(spool: &Spool, requested: SegmentName) -> Result<(), ArchiveError> {
    let position = |name: &str| name.get(8..24).map(str::to_string);
    let requested_name = requested.to_string();
    let requested_position = position(&requested_name);
    for name in spool.names()? {
        if name != requested_name
            && name.parse::<SegmentName>().is_ok()
            && position(&name) <= requested_position
        {
            spool.remove(&name);
        }
    }
    Ok(())
}

/// Empties the spool of segments. PostgreSQL looks for the next timeline's history file, and
/// finds none, when recovery ends (to pick its new timeline) and before it starts: segments
/// fetched ahead past a recovery target would otherwise stay in `pg_wal` for good.
fn discard_all(spool: &Spool) -> Result<(), ArchiveError> {
    for name in spool.names()? {
        if name.parse::<SegmentName>().is_ok() {
            spool.remove(&name);
        }
    }
    Ok(())
}

/// The segment size declared in the header of the segment at `path`.
fn segment_size_of(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut header = [0u8; 40];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    SegmentHeader::parse(&header)
        .ok()
        .map(|header| header.segment_size)
}
