//! `pgdbre backup`: copy PGDATA between `pg_backup_start()` and `pg_backup_stop()` (non-exclusive,
//! one session) into the repository, store the WAL that makes the copy consistent, and write the
//! manifest last.
//!
//! Order matters for correctness: a temporary replication slot reserves WAL from before the
//! backup's checkpoint, so the segments the backup needs cannot be recycled while it runs; each
//! file is `stat`ed before it is read, so the recorded mtime is never newer than the content;
//! the manifest is written only after every block and WAL segment it names is stored and synced.

use crate::chunk::{content_address, ChunkBuffers, CHUNK_SIZE};
use crate::codec::Codec;
use crate::cpu_pool::CpuPool;
use crate::error::BackupError;
use crate::key::RepoKey;
use crate::keys;
use crate::label::backup_label;
use crate::manifest::{
    BackupType, BadPage, BlockLocation, Entry, EntryKind, Manifest, Tablespace, Totals,
};
use crate::marker::{marker_body, Heartbeat, Stamp, MARKER_REFRESH_INTERVAL};
use crate::pack::{PackWriter, PACK_TARGET};
use crate::page::{self, PAGE_SIZE};
use crate::pgdata::{self, Found};
use crate::repository::{now_ns, OpenMode, Repository, WalPut};
use crate::summary::{self, ChangedBlocks, ReadPlan};
use crate::unchanged::{can_reuse, FileState};
use crate::wal::{segments_between, Lsn, SegmentName, TimelineId};
use futures::StreamExt;
use pgdbre_pg::{ConnConfig, Session};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an incremental waits for the WAL summarizer to reach its start LSN before it
/// falls back to reading changed files whole.
const SUMMARY_WAIT: Duration = Duration::from_secs(30);
/// Relation segment size PostgreSQL uses by default (1 GiB of 8 KiB pages), in pages.
const DEFAULT_RELSEG_PAGES: u32 = 131_072;
/// Chunks of one file in flight at once (read, hashed, compressed, being stored): enough for
/// one large file to keep every job busy, few enough to bound memory (4 MiB per file).
const CHUNKS_AHEAD: usize = 8;
/// Files in flight per job. Small files spend most of their time waiting (open, stat, store),
/// not computing, so more files than jobs keep the `--jobs` compressing threads busy; the
/// computing itself stays limited to `--jobs` threads.
const FILES_PER_JOB: usize = 2;

/// Progress of a running backup, reported after every chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Files finished.
    pub files_done: u64,
    /// Files to back up.
    pub files_total: u64,
    /// Bytes of PGDATA handled (read, or skipped as unchanged).
    pub bytes_done: u64,
    /// Bytes of PGDATA to handle.
    pub bytes_total: u64,
}

/// Callback that receives [`Progress`].
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// What to back up, where, and how.
#[derive(Clone)]
pub struct BackupOptions {
    /// Repository location (path or `s3://bucket/prefix`).
    pub repo: String,
    /// Repository key (required for an encrypted repository, used to create one).
    pub key: Option<RepoKey>,
    /// PGDATA; `None` uses the server's `data_directory`.
    pub pgdata: Option<PathBuf>,
    /// Full or incremental.
    pub backup_type: BackupType,
    /// Files read in parallel.
    pub jobs: usize,
    /// Ask for an immediate checkpoint instead of a spread one.
    pub fast: bool,
    /// zstd level; `None` uses the repository's.
    pub compress_level: Option<i32>,
    /// How long to wait for the WAL the backup needs to appear in pg_wal.
    pub wal_timeout: Duration,
    /// Called as the backup advances (the CLI draws a progress line).
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("repo", &self.repo)
            .field("backup_type", &self.backup_type)
            .field("jobs", &self.jobs)
            .field("fast", &self.fast)
            .finish_non_exhaustive()
    }
}

impl BackupOptions {
    /// A full backup of the server's data directory into `repo`, 2 jobs, fast checkpoint.
    pub fn new(repo: &str) -> BackupOptions {
        BackupOptions {
            repo: repo.to_string(),
            key: None,
            pgdata: None,
            backup_type: BackupType::Full,
            jobs: 2,
            fast: true,
            compress_level: None,
            wal_timeout: Duration::from_secs(60),
            progress: None,
        }
    }
}

/// The result of a backup.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// How long it took.
    pub elapsed: Duration,
}

/// Facts about the server the backup needs, read once.
struct ServerFacts {
    system_identifier: u64,
    data_directory: PathBuf,
    wal_segment_size: u64,
    block_size: u32,
    relseg_pages: u32,
    data_checksums: bool,
}

/// Counters shared by the copy workers.
#[derive(Default)]
struct Counters {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    bytes_read: AtomicU64,
    new_blocks: AtomicU64,
    new_stored_bytes: AtomicU64,
}

/// Takes a backup of the server `connection` points at into `options.repo`.
pub async fn backup(
    connection: &ConnConfig,
    options: BackupOptions,
) -> Result<BackupSummary, BackupError> {
    let began = Instant::now();
    let session = Session::connect(connection).await?;
    let facts = server_facts(&session).await?;
    let pgdata = options
        .pgdata
        .clone()
        .unwrap_or_else(|| facts.data_directory.clone());
    check_pgdata(&pgdata, facts.system_identifier)?;

    let mut repository = Repository::open(
        &options.repo,
        options.key.clone(),
        OpenMode::ForCluster {
            system_identifier: facts.system_identifier,
            compress_level: options
                .compress_level
                .unwrap_or(crate::codec::DEFAULT_LEVEL),
        },
    )
    .await?;
    if let Some(level) = options.compress_level {
        repository = repository.with_compress_level(level);
    }
    if options.backup_type == BackupType::Incremental && repository.labels().await?.is_empty() {
        return Err(BackupError::NoParent);
    }

    let (label, start_ns) = unique_label(&repository, options.backup_type).await?;
    let marker = keys::in_progress_key(&label);
    let written = Stamp::now();
    repository
        .storage()
        .put(&marker, marker_body(start_ns, start_ns))
        .await?;
    // Refreshed from now on, also while waiting for an expire: `expire` takes a marker not
    // refreshed for `MARKER_STALE` for a killed backup's.
    let heartbeat = Heartbeat::start(
        &repository,
        &marker,
        start_ns,
        written,
        MARKER_REFRESH_INTERVAL,
    );
    // After the marker, so a concurrent `expire` either sees it or is seen (see expire.rs); the
    // parent is read after it too, so no pack it names can be collected while this backup runs.
    let result = match crate::expire::wait_for_pack_collection(&repository).await {
        Ok(()) => match latest_manifest(&repository, options.backup_type).await {
            Ok(parent) => {
                run(
                    &session,
                    &repository,
                    &options,
                    &facts,
                    &pgdata,
                    parent.as_ref(),
                    &label,
                    start_ns,
                    &heartbeat,
                )
                .await
            }
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    // No refresh may land after the delete below, or the marker would outlive the backup.
    heartbeat.stop().await;
    // The marker only protects a running backup; remove it whether the backup worked or not.
    if let Err(error) = repository.storage().delete(&marker).await {
        tracing::warn!("could not remove {marker}: {error}");
    }
    let manifest = result?;
    Ok(BackupSummary {
        manifest,
        elapsed: began.elapsed(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    session: &Session,
    repository: &Repository,
    options: &BackupOptions,
    facts: &ServerFacts,
    pgdata: &Path,
    parent: Option<&Manifest>,
    label: &str,
    start_ns: i64,
    heartbeat: &Heartbeat,
) -> Result<Manifest, BackupError> {
    let client = session.client();
    let query_error = |error: tokio_postgres::Error| BackupError::Pg(session.query_error(&error));
    // Reserve WAL from now on, so nothing the backup needs is recycled before it is copied.
    let slot = format!("pgdbre_backup_{}", session.info().backend_pid);
    if let Err(error) = client
        .execute(
            "SELECT pg_catalog.pg_create_physical_replication_slot($1, true, true)",
            &[&slot],
        )
        .await
    {
        tracing::warn!(
            "could not create temporary replication slot {slot} ({}); WAL is not reserved during the backup",
            pgdbre_pg::redact(&error.to_string())
        );
    }
    let start_sql = if session.info().has_pg_backup_start() {
        "SELECT pg_catalog.pg_backup_start($1, $2)::text"
    } else {
        "SELECT pg_catalog.pg_start_backup($1, $2, false)::text"
    };
    let start_lsn: String = client
        .query_one(start_sql, &[&label, &options.fast])
        .await
        .map_err(query_error)?
        .get(0);
    let start_lsn: Lsn = start_lsn.parse().map_err(BackupError::Server)?;
    tracing::info!(label, %start_lsn, "backup started");

    let walk_root = pgdata.to_path_buf();
    let found = tokio::task::spawn_blocking(move || pgdata::walk(&walk_root))
        .await
        .map_err(|error| BackupError::Server(format!("walking PGDATA failed: {error}")))??;
    let changes = match parent {
        // Summaries name 8 KiB pages; chunk arithmetic below assumes both sizes.
        Some(parent)
            if facts.block_size as usize == PAGE_SIZE && parent.chunk_size == CHUNK_SIZE =>
        {
            summary::changed_blocks(
                session,
                parent.timeline,
                parent.start_lsn,
                start_lsn,
                u64::from(facts.relseg_pages.max(1)),
                SUMMARY_WAIT,
            )
            .await
        }
        _ => None,
    };
    if changes.is_some() {
        tracing::info!(
            label,
            "reading only blocks the WAL summaries list as changed"
        );
    }
    let packs = PackWriter::new(repository, PACK_TARGET);
    let mut copied = copy_files(
        repository,
        &packs,
        options,
        facts,
        parent,
        start_lsn,
        found,
        changes.as_ref(),
    )
    .await?;
    let from_standby = session.info().in_recovery;
    if from_standby {
        // A standby backup ends at the copied pg_control's minRecoveryPoint (see standby.rs).
        let stored = crate::standby::copy_control_file_last(
            &packs,
            &copied.known,
            pgdata,
            &mut copied.entries,
        )
        .await?;
        copied
            .counters
            .new_stored_bytes
            .fetch_add(stored, Ordering::Relaxed);
    }

    let stop_sql = if session.info().has_pg_backup_start() {
        "SELECT lsn::text, labelfile, spcmapfile FROM pg_catalog.pg_backup_stop(false)"
    } else {
        "SELECT lsn::text, labelfile, spcmapfile FROM pg_catalog.pg_stop_backup(false, false)"
    };
    // Names let a restore move a tablespace by name (`--tablespace-map NAME=DIR`).
    let tablespaces = client
        .query(
            "SELECT oid::int8, spcname::text FROM pg_catalog.pg_tablespace \
             WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
            &[],
        )
        .await
        .map_err(query_error)?
        .iter()
        .filter_map(|row| {
            Some(Tablespace {
                oid: u32::try_from(row.get::<_, i64>(0)).ok()?,
                name: row.get(1),
            })
        })
        .collect();
    let row = client.query_one(stop_sql, &[]).await.map_err(query_error)?;
    let stop_lsn: Lsn = row
        .get::<_, String>(0)
        .parse()
        .map_err(BackupError::Server)?;
    let backup_label_text: String = row.get(1);
    let tablespace_map: Option<String> = row
        .get::<_, Option<String>>(2)
        .filter(|map| !map.trim().is_empty());
    let timeline = start_timeline(&backup_label_text)?;
    tracing::info!(label, %stop_lsn, from_standby, "backup stopped");
    // A standby's backup also keeps the WAL it had replayed past the stop LSN (see standby.rs).
    let wal_end = if from_standby {
        crate::standby::wal_end(
            session,
            timeline,
            start_lsn,
            stop_lsn,
            facts.wal_segment_size,
            options.wal_timeout,
        )
        .await?
    } else {
        stop_lsn
    };

    let blocks = locate_blocks(&copied, packs.finish().await?)?;
    let (wal, wal_stored) = store_wal(
        repository,
        pgdata,
        timeline,
        start_lsn,
        wal_end,
        facts,
        options.wal_timeout,
    )
    .await?;
    let _ = client
        .execute("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&slot])
        .await;

    let bytes = copied.entries.iter().map(|entry| entry.size).sum();
    let files = copied
        .entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::File)
        .count() as u64;
    let manifest = Manifest {
        format_version: keys::FORMAT_VERSION,
        label: label.to_string(),
        backup_type: options.backup_type,
        parent: parent.map(|parent| parent.label.clone()),
        system_identifier: facts.system_identifier,
        pg_version_num: session.info().version.0,
        pg_version: session.info().version.to_string(),
        timeline,
        start_lsn,
        stop_lsn,
        start_unix_ns: start_ns,
        stop_unix_ns: now_ns(),
        wal_segment_size: facts.wal_segment_size,
        chunk_size: CHUNK_SIZE,
        data_checksums: session.info().data_checksums,
        backup_label: backup_label_text,
        tablespace_map,
        tablespaces,
        wal,
        entries: copied.entries,
        blocks,
        bad_pages: copied.bad_pages,
        wal_summaries: changes.is_some(),
        from_standby,
        totals: Totals {
            files,
            bytes,
            bytes_read: copied.counters.bytes_read.load(Ordering::Relaxed),
            new_blocks: copied.counters.new_blocks.load(Ordering::Relaxed),
            new_stored_bytes: copied.counters.new_stored_bytes.load(Ordering::Relaxed) + wal_stored,
        },
    };
    // Sync first (the manifest write's own sync then has nothing left to do), so that as little
    // as possible happens between the lease check and the manifest.
    repository.storage().sync().await?;
    heartbeat.check()?;
    repository.put_manifest(&manifest).await?;
    for bad in &manifest.bad_pages {
        tracing::warn!("page checksum failure in {} block {}", bad.path, bad.block);
    }
    tracing::info!(label, files, bytes, "backup complete");
    Ok(manifest)
}

/// The parent of an incremental: the newest valid backup.
async fn latest_manifest(
    repository: &Repository,
    backup_type: BackupType,
) -> Result<Option<Manifest>, BackupError> {
    if backup_type == BackupType::Full {
        return Ok(None);
    }
    let labels = repository.labels().await?;
    let last = labels.last().ok_or(BackupError::NoParent)?;
    Ok(Some(repository.manifest(last).await?))
}

/// A label no valid backup has. Labels have one-second resolution, so a second backup within
/// the same second waits for the next one.
async fn unique_label(
    repository: &Repository,
    backup_type: BackupType,
) -> Result<(String, i64), BackupError> {
    loop {
        let start_ns = now_ns();
        let label = backup_label(start_ns.div_euclid(1_000_000_000), backup_type);
        let taken = repository
            .storage()
            .size(&keys::manifest_key(&label))
            .await?
            .is_some()
            || repository
                .storage()
                .size(&keys::in_progress_key(&label))
                .await?
                .is_some();
        if !taken {
            return Ok((label, start_ns));
        }
        let into_second = start_ns.rem_euclid(1_000_000_000) as u64;
        tokio::time::sleep(Duration::from_nanos(1_000_000_000 - into_second)).await;
    }
}

async fn server_facts(session: &Session) -> Result<ServerFacts, BackupError> {
    let row = session
        .client()
        .query_one(
            "SELECT (SELECT system_identifier FROM pg_catalog.pg_control_system())::text, \
                    current_setting('data_directory'), \
                    (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size')::int8, \
                    current_setting('block_size')::int4, \
                    (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'segment_size')::int4",
            &[],
        )
        .await
        .map_err(|error| {
            let error = session.query_error(&error);
            if error.is_insufficient_privilege() {
                BackupError::Server(format!(
                    "{error}; hint: back up as a superuser, or a role granted pg_read_all_settings and EXECUTE on pg_backup_start/pg_backup_stop"
                ))
            } else {
                BackupError::Pg(error)
            }
        })?;
    let system_identifier: String = row.get(0);
    Ok(ServerFacts {
        system_identifier: system_identifier.parse().map_err(|_| {
            BackupError::Server(format!(
                "unexpected system identifier {system_identifier:?}"
            ))
        })?,
        data_directory: PathBuf::from(row.get::<_, String>(1)),
        wal_segment_size: row.get::<_, i64>(2) as u64,
        block_size: row.get::<_, i32>(3) as u32,
        relseg_pages: row.get::<_, i32>(4) as u32,
        data_checksums: session.info().data_checksums,
    })
}

/// Refuses a PGDATA that is not the connected server's (its `pg_control` names another cluster).
fn check_pgdata(pgdata: &Path, system_identifier: u64) -> Result<(), BackupError> {
    let control = pgdata.join("global/pg_control");
    let bytes =
        std::fs::read(&control).map_err(|error| BackupError::io("read", &control, error))?;
    // ControlFileData starts with the 64-bit system identifier, in host byte order.
    let found = bytes
        .get(..8)
        .map(|head| u64::from_ne_bytes(head.try_into().expect("8 bytes")))
        .unwrap_or(0);
    if found != system_identifier {
        return Err(BackupError::Server(format!(
            "{} belongs to another cluster (system identifier {found}) than the server connected to \
             ({system_identifier}); pass the server's data directory with --pgdata",
            pgdata.display()
        )));
    }
    Ok(())
}

/// `START TIMELINE: n` of a backup label.
fn start_timeline(backup_label: &str) -> Result<TimelineId, BackupError> {
    backup_label
        .lines()
        .find_map(|line| line.strip_prefix("START TIMELINE:"))
        .and_then(|value| value.trim().parse().ok())
        .map(TimelineId)
        .ok_or_else(|| {
            BackupError::Server(
                "pg_backup_stop() returned a backup label without START TIMELINE".into(),
            )
        })
}

struct Copied {
    entries: Vec<Entry>,
    bad_pages: Vec<BadPage>,
    counters: Arc<Counters>,
    /// Blocks stored before this backup, where they are.
    known: Arc<HashMap<String, BlockLocation>>,
}

/// Where each block the entries name is stored: written by this backup, or by its parent's set.
fn locate_blocks(
    copied: &Copied,
    written: HashMap<String, BlockLocation>,
) -> Result<BTreeMap<String, BlockLocation>, BackupError> {
    let mut blocks = BTreeMap::new();
    for hash in copied.entries.iter().flat_map(|entry| entry.blocks.iter()) {
        if blocks.contains_key(hash) {
            continue;
        }
        let location = written
            .get(hash)
            .or_else(|| copied.known.get(hash))
            .ok_or_else(|| {
                BackupError::Server(format!(
                    "internal error: block {hash} of this backup was neither stored nor found stored"
                ))
            })?;
        blocks.insert(hash.clone(), location.clone());
    }
    Ok(blocks)
}

/// Copies every file (in parallel), returning the manifest entries in path order.
#[allow(clippy::too_many_arguments)]
async fn copy_files(
    repository: &Repository,
    packs: &PackWriter<'_>,
    options: &BackupOptions,
    facts: &ServerFacts,
    parent: Option<&Manifest>,
    start_lsn: Lsn,
    found: Vec<Found>,
    changes: Option<&ChangedBlocks>,
) -> Result<Copied, BackupError> {
    // A parent cut into chunks of another size cannot lend its block lists.
    let parent = parent.filter(|parent| parent.chunk_size == CHUNK_SIZE);
    let counters = Arc::new(Counters::default());
    let bad_pages = Arc::new(Mutex::new(Vec::new()));
    let files_total = found.iter().filter(|f| f.kind == EntryKind::File).count() as u64;
    let bytes_total = found.iter().map(|f| f.size).sum();
    let report = {
        let counters = counters.clone();
        let progress = options.progress.clone();
        move || {
            if let Some(progress) = &progress {
                progress(Progress {
                    files_done: counters.files_done.load(Ordering::Relaxed),
                    files_total,
                    bytes_done: counters.bytes_done.load(Ordering::Relaxed),
                    bytes_total,
                });
            }
        }
    };
    let parent_files: HashMap<&str, &Entry> = parent
        .map(|parent| {
            parent
                .entries
                .iter()
                .map(|entry| (entry.path.as_str(), entry))
                .collect()
        })
        .unwrap_or_default();
    let page_check = PageCheck {
        enabled: verifies_pages(facts),
        start_lsn,
        relseg_pages: facts.relseg_pages,
    };
    let dedup = Arc::new(Dedup {
        known: Arc::new(known_blocks(parent)),
        claimed: Mutex::new(HashSet::new()),
    });
    let pool = CpuPool::new(options.jobs.max(1))
        .map_err(|error| BackupError::Server(format!("could not start copy threads: {error}")))?;
    let codec = repository.codec().clone();
    let buffers = Arc::new(ChunkBuffers::default());
    let mut entries: Vec<Entry> = Vec::with_capacity(found.len());
    let mut files = Vec::new();
    for item in found {
        match item.kind {
            EntryKind::File => files.push(item),
            kind => entries.push(Entry {
                path: item.path,
                kind,
                mode: item.mode,
                size: 0,
                mtime_ns: 0,
                blocks: Vec::new(),
                target: item.target,
            }),
        }
    }
    let results: Vec<Result<Option<Entry>, BackupError>> = futures::stream::iter(files)
        .map(|item| {
            let reuse = parent.and_then(|parent| {
                parent_files
                    .get(item.path.as_str())
                    .map(|entry| ((*entry).clone(), parent.start_unix_ns))
            });
            let counters = counters.clone();
            let bad_pages = bad_pages.clone();
            let report = report.clone();
            let dedup = dedup.clone();
            let buffers = buffers.clone();
            let (pool, codec) = (&pool, &codec);
            async move {
                let context = CopyContext {
                    packs,
                    page_check,
                    counters: &counters,
                    bad_pages: &bad_pages,
                    changes,
                    dedup,
                    pool,
                    buffers,
                    codec,
                };
                let entry = copy_file(&context, item, reuse, &report).await?;
                counters.files_done.fetch_add(1, Ordering::Relaxed);
                report();
                Ok(entry)
            }
        })
        .buffer_unordered(options.jobs.max(1) * FILES_PER_JOB)
        .collect()
        .await;
    for result in results {
        if let Some(entry) = result? {
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bad_pages = std::mem::take(&mut *bad_pages.lock().expect("bad page list lock"));
    bad_pages.sort_by(|a, b| (&a.path, a.block).cmp(&(&b.path, b.block)));
    Ok(Copied {
        entries,
        bad_pages,
        counters,
        known: dedup.known.clone(),
    })
}

/// Which chunks need no store: those the parent names (incrementals only), and those this
/// backup has already stored or is storing (a chunk repeated within it, such as an all-zero one).
struct Dedup {
    known: Arc<HashMap<String, BlockLocation>>,
    claimed: Mutex<HashSet<String>>,
}

impl Dedup {
    /// Whether the caller must store `hash`: true exactly once per hash the repository may lack.
    fn claim(&self, hash: &str) -> bool {
        !self.known.contains_key(hash)
            && self
                .claimed
                .lock()
                .expect("claimed block set lock")
                .insert(hash.to_string())
    }
}

/// The blocks an incremental may reference instead of storing them: its parent's, with where
/// they are stored (the parent was read after this backup's in-progress marker, so none of its
/// packs can be collected while this backup runs). A full backup references nothing stored
/// before it: it is self-contained, so damage to an older backup's packs never breaks it and
/// expiring a backup set frees its packs exactly (as pgBackRest's full backups are). Packs of
/// a killed backup are named by no manifest, so they are never trusted.
fn known_blocks(parent: Option<&Manifest>) -> HashMap<String, BlockLocation> {
    parent
        .map(|parent| {
            parent
                .blocks
                .iter()
                .map(|(hash, location)| (hash.clone(), location.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Pages are verified when the cluster has data checksums and the page size this verifier knows.
fn verifies_pages(facts: &ServerFacts) -> bool {
    facts.data_checksums && facts.block_size as usize == PAGE_SIZE
}

/// How pages are verified while read.
#[derive(Clone, Copy)]
struct PageCheck {
    /// Whether to verify at all.
    enabled: bool,
    start_lsn: Lsn,
    relseg_pages: u32,
}

/// What every file copy shares.
struct CopyContext<'a> {
    packs: &'a PackWriter<'a>,
    page_check: PageCheck,
    counters: &'a Counters,
    bad_pages: &'a Mutex<Vec<BadPage>>,
    /// Blocks changed since the parent, from WAL summaries, when the server could say.
    changes: Option<&'a ChangedBlocks>,
    dedup: Arc<Dedup>,
    /// `--jobs` threads verifying, hashing and compressing.
    pool: &'a CpuPool,
    /// Buffers chunks are read into.
    buffers: Arc<ChunkBuffers>,
    codec: &'a Codec,
}

/// Backs up one file: reuses the parent's entry when [`can_reuse`] allows; else, when WAL
/// summaries cover the file, reads only the chunks holding changed blocks; else reads it all.
/// Only chunks the repository lacks are stored. `None` when the file vanished (dropped during
/// the backup: WAL replay removes it on restore anyway).
async fn copy_file(
    context: &CopyContext<'_>,
    item: Found,
    reuse: Option<(Entry, i64)>,
    report: &(impl Fn() + Send + Sync),
) -> Result<Option<Entry>, BackupError> {
    let absolute = item.absolute.clone();
    let opened = tokio::task::spawn_blocking(
        move || -> Result<Option<(std::fs::File, std::fs::Metadata)>, std::io::Error> {
            // Stat before reading: a write during the read then shows as a newer mtime next time.
            let file = match std::fs::File::open(&absolute) {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            };
            let metadata = file.metadata()?;
            Ok(Some((file, metadata)))
        },
    )
    .await
    .map_err(|error| BackupError::Server(format!("file reader task failed: {error}")))?
    .map_err(|error| BackupError::io("open", &item.absolute, error))?;
    let Some((file, metadata)) = opened else {
        return Ok(None);
    };
    let now = FileState {
        size: metadata.len(),
        mtime_ns: pgdata::mtime_ns(&metadata),
    };
    let file = Arc::new(file);
    let verify_segment = page::relation_segment(&item.path).filter(|_| context.page_check.enabled);
    if let Some((parent_entry, parent_start)) = reuse {
        if can_reuse(&parent_entry, now, parent_start) {
            context
                .counters
                .bytes_done
                .fetch_add(now.size, Ordering::Relaxed);
            return Ok(Some(Entry {
                mode: item.mode,
                ..parent_entry
            }));
        }
        let chunks_match = parent_entry.kind == EntryKind::File
            && parent_entry.size == now.size
            && parent_entry.blocks.len() as u64 == now.size.div_ceil(CHUNK_SIZE);
        if let Some(ReadPlan::Chunks(changed)) = context
            .changes
            .filter(|_| chunks_match)
            .map(|changes| changes.plan(&item.path))
        {
            let mut blocks = parent_entry.blocks.clone();
            let mut complete = true;
            for (index, block) in blocks.iter_mut().enumerate() {
                let expected = Manifest::block_len(now.size, CHUNK_SIZE, index);
                if !changed.contains(&(index as u64)) {
                    context
                        .counters
                        .bytes_done
                        .fetch_add(expected, Ordering::Relaxed);
                    continue;
                }
                let offset = index as u64 * CHUNK_SIZE;
                let (hash, length) =
                    store_chunk(context, &file, &item, offset, verify_segment).await?;
                if length != expected {
                    // Truncated or extended while we read: read the whole file instead.
                    complete = false;
                    break;
                }
                *block = hash;
                report();
            }
            if complete {
                return Ok(Some(Entry {
                    path: item.path,
                    kind: EntryKind::File,
                    mode: item.mode,
                    size: now.size,
                    mtime_ns: now.mtime_ns,
                    blocks,
                    target: None,
                }));
            }
        }
    }
    // The chunks up to the stat size are handled CHUNKS_AHEAD at a time, so a large file keeps
    // every job busy; a file that grew meanwhile is read on to its end one chunk at a time, and
    // one that shrank ends at its first short chunk.
    let mut chunks = futures::stream::iter(0..now.size.div_ceil(CHUNK_SIZE))
        .map(|index| store_chunk(context, &file, &item, index * CHUNK_SIZE, verify_segment))
        .buffered(CHUNKS_AHEAD);
    let mut blocks = Vec::new();
    let mut offset = 0u64;
    let mut ended = false;
    // Every started chunk is awaited, also past the end: one this chunk claimed may be named
    // by another file, so it must be stored before the manifest.
    while let Some(result) = chunks.next().await {
        let (hash, length) = result?;
        if !ended && length > 0 {
            blocks.push(hash);
            offset += length;
            report();
        }
        ended = ended || length < CHUNK_SIZE;
    }
    while !ended {
        let (hash, length) = store_chunk(context, &file, &item, offset, verify_segment).await?;
        if length > 0 {
            blocks.push(hash);
            offset += length;
            report();
        }
        ended = length < CHUNK_SIZE;
    }
    drop(chunks);
    Ok(Some(Entry {
        path: item.path,
        kind: EntryKind::File,
        mode: item.mode,
        // What was read: a relation may grow or shrink while copied; WAL replay reconciles it.
        size: offset,
        mtime_ns: now.mtime_ns,
        blocks,
        target: None,
    }))
}

/// Reads, verifies and (if the repository may lack it) stores the chunk at `offset`; returns its
/// hash and length (0 at end of file). The read runs as a blocking task of its own (a read
/// waiting for the disk must not idle a core); verifying, hashing and compressing run as one
/// job on the CPU pool; the store itself runs on neither.
async fn store_chunk(
    context: &CopyContext<'_>,
    file: &Arc<std::fs::File>,
    item: &Found,
    offset: u64,
    verify_segment: Option<u32>,
) -> Result<(String, u64), BackupError> {
    let file = file.clone();
    let path = item.path.clone();
    let absolute = item.absolute.clone();
    let page_check = context.page_check;
    let dedup = context.dedup.clone();
    let codec = context.codec.clone();
    let reader = file.clone();
    let buffers = context.buffers.clone();
    let read = tokio::task::spawn_blocking(move || read_span(&reader, offset, buffers.take()))
        .await
        .map_err(|error| BackupError::Server(format!("file reader task failed: {error}")))?
        .map_err(|error| BackupError::io("read", &item.absolute, error))?;
    let buffers = context.buffers.clone();
    let (hash, length, bad, encoded) = context
        .pool
        .run(move || {
            let (data, hash, bad) =
                check_chunk(&file, read, offset, &path, verify_segment, page_check)
                    .map_err(|error| BackupError::io("read", &absolute, error))?;
            let encoded = if !data.is_empty() && dedup.claim(&hash) {
                Some(codec.encode(&keys::block_name(&hash), &data)?)
            } else {
                None
            };
            let length = data.len() as u64;
            buffers.give(data);
            Ok::<_, BackupError>((hash, length, bad, encoded))
        })
        .await
        .ok_or_else(|| BackupError::Server("a copy thread failed".into()))??;
    if length == 0 {
        return Ok((hash, 0));
    }
    if !bad.is_empty() {
        context
            .bad_pages
            .lock()
            .expect("bad page list lock")
            .extend(bad);
    }
    if let Some(encoded) = encoded {
        context.packs.add(hash.clone(), &encoded).await?;
        context.counters.new_blocks.fetch_add(1, Ordering::Relaxed);
        context
            .counters
            .new_stored_bytes
            .fetch_add(encoded.len() as u64, Ordering::Relaxed);
    }
    context
        .counters
        .bytes_read
        .fetch_add(length, Ordering::Relaxed);
    context
        .counters
        .bytes_done
        .fetch_add(length, Ordering::Relaxed);
    Ok((hash, length))
}

/// Reads the chunk at `offset` into `data` (a chunk-sized buffer): shorter at the end of the
/// file, empty past it.
fn read_span(
    file: &std::fs::File,
    offset: u64,
    mut data: Vec<u8>,
) -> Result<Vec<u8>, std::io::Error> {
    let mut filled = 0;
    while filled < data.len() {
        let read = file.read_at(&mut data[filled..], offset + filled as u64)?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    data.truncate(filled);
    Ok(data)
}

/// Verifies the pages of chunk `data` read at `offset` and hashes it. A page that fails is
/// read once more (it may have been caught mid-write) before it is reported.
fn check_chunk(
    file: &std::fs::File,
    mut data: Vec<u8>,
    offset: u64,
    path: &str,
    verify_segment: Option<u32>,
    page_check: PageCheck,
) -> Result<(Vec<u8>, String, Vec<BadPage>), std::io::Error> {
    let mut bad = Vec::new();
    if let Some(segment) = verify_segment {
        let first_page = (offset / PAGE_SIZE as u64) as u32;
        let segment_base = segment.wrapping_mul(page_check.relseg_pages_or_default());
        for index in 0..data.len() / PAGE_SIZE {
            let block = segment_base + first_page + index as u32;
            if page::page_is_valid(
                &data[index * PAGE_SIZE..(index + 1) * PAGE_SIZE],
                block,
                page_check.start_lsn,
            ) {
                continue;
            }
            let mut again = vec![0u8; PAGE_SIZE];
            let page_offset = offset + (index * PAGE_SIZE) as u64;
            let reread = file.read_at(&mut again, page_offset)? == PAGE_SIZE;
            if reread && page::page_is_valid(&again, block, page_check.start_lsn) {
                // It was being written; store the settled page.
                data[index * PAGE_SIZE..(index + 1) * PAGE_SIZE].copy_from_slice(&again);
                continue;
            }
            bad.push(BadPage {
                path: path.to_string(),
                block,
            });
        }
    }
    let hash = content_address(&data);
    Ok((data, hash, bad))
}

impl PageCheck {
    fn relseg_pages_or_default(self) -> u32 {
        if self.relseg_pages == 0 {
            DEFAULT_RELSEG_PAGES
        } else {
            self.relseg_pages
        }
    }
}

/// Copies the WAL from `start` to `stop` (and the timeline's history file) from pg_wal into the
/// archive, waiting up to `timeout` for each segment to be complete. Returns the file names and
/// the stored bytes added.
async fn store_wal(
    repository: &Repository,
    pgdata: &Path,
    timeline: TimelineId,
    start: Lsn,
    stop: Lsn,
    facts: &ServerFacts,
    timeout: Duration,
) -> Result<(Vec<String>, u64), BackupError> {
    let mut names = Vec::new();
    let mut stored = 0;
    for segment in segments_between(timeline, start, stop, facts.wal_segment_size) {
        let bytes = wait_for_segment(pgdata, segment, facts.wal_segment_size, timeout).await?;
        stored += put_wal(repository, timeline, &segment.to_string(), bytes).await?;
        names.push(segment.to_string());
    }
    if timeline.0 > 1 {
        let name = timeline.history_file_name();
        let path = pgdata.join("pg_wal").join(&name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|error| BackupError::io("read", &path, error))?;
        stored += put_wal(repository, timeline, &name, bytes).await?;
        names.push(name);
    }
    Ok((names, stored))
}

async fn put_wal(
    repository: &Repository,
    timeline: TimelineId,
    name: &str,
    bytes: Vec<u8>,
) -> Result<u64, BackupError> {
    match repository.put_wal(timeline, name, bytes).await? {
        WalPut::Created(size) => Ok(size),
        WalPut::AlreadyIdentical => Ok(0),
        WalPut::Conflict => Err(BackupError::Server(format!(
            "the archive already holds a different WAL file {name} of timeline {timeline}; the repository \
             may have been used by another server with the same system identifier (a restored copy?): \
             use a separate repository for it"
        ))),
    }
}

/// The contents of `segment` from pg_wal once its first page belongs to it (a recycled file
/// still carries an older address until PostgreSQL rewrites it).
async fn wait_for_segment(
    pgdata: &Path,
    segment: SegmentName,
    segment_size: u64,
    timeout: Duration,
) -> Result<Vec<u8>, BackupError> {
    let path = pgdata.join("pg_wal").join(segment.to_string());
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(5);
    loop {
        match tokio::fs::read(&path).await {
            Ok(bytes)
                if bytes.len() as u64 == segment_size
                    && first_page_address(&bytes) == Some(segment.start(segment_size)) =>
            {
                return Ok(bytes)
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(BackupError::io("read", &path, error)),
        }
        if Instant::now() >= deadline {
            return Err(BackupError::WalTimeout {
                segment: segment.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

/// `xlp_pageaddr` of the first WAL page (offset 8 of `XLogPageHeaderData`).
fn first_page_address(segment: &[u8]) -> Option<Lsn> {
    let bytes: [u8; 8] = segment.get(8..16)?.try_into().ok()?;
    Some(Lsn(u64::from_le_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_comes_from_the_backup_label() {
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                     CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
                     START TIME: 2026-11-25 18:15:00 UTC\nLABEL: x\nSTART TIMELINE: 3\n";
        assert_eq!(start_timeline(label).unwrap(), TimelineId(3));
        assert!(start_timeline("LABEL: x\n").is_err());
    }

    #[test]
    fn first_page_address_reads_the_header() {
        let mut segment = vec![0u8; 64];
        segment[8..16].copy_from_slice(&0x0300_0000u64.to_le_bytes());
        assert_eq!(first_page_address(&segment), Some(Lsn(0x0300_0000)));
        assert_eq!(first_page_address(&[0u8; 4]), None);
    }
}
