//! `pgdbre restore`: write a backup's files into a data directory and set it up to recover —
//! `backup_label`, the backup's WAL in `pg_wal`, `recovery.signal`, and the `restore_command`
//! and target in `postgresql.auto.conf`. Every block is verified (stored checksum and content
//! address) before it is written; corrupt data stops the restore with the object and file named.
//!
//! `--delta` updates an existing copy in place: a file of the right size is compared chunk by
//! chunk and only differing chunks are rewritten; anything the backup does not have is removed.

use crate::error::BackupError;
use crate::key::RepoKey;
use crate::manifest::{BlockLocation, Entry, EntryKind, Manifest};
use crate::recovery::{
    recovery_settings, restore_command, strip_recovery_settings, RecoveryTarget, TargetAction,
};
use crate::repository::{decode_block, OpenMode, Repository};
use crate::tablespace_map::TablespaceMap;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// The OS user and group restored files belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// What to restore, where, and how recovery should go.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Repository location.
    pub repo: String,
    /// Repository key.
    pub key: Option<RepoKey>,
    /// The key file given by the user, named (never inlined) in `restore_command`.
    pub key_file: Option<PathBuf>,
    /// Backup label; `None` restores the latest.
    pub set: Option<String>,
    /// The data directory to restore into.
    pub pgdata: PathBuf,
    /// Update an existing directory in place.
    pub delta: bool,
    /// Recovery target.
    pub target: RecoveryTarget,
    /// What to do at the target.
    pub target_action: Option<TargetAction>,
    /// Files written in parallel.
    pub jobs: usize,
    /// Owner of the restored files; `None`: the owner of `pgdata` if it exists, else of its parent.
    pub owner: Option<Owner>,
    /// The `pgdbre` executable named in `restore_command`.
    pub program: PathBuf,
    /// Where tablespaces go instead of their recorded locations.
    pub tablespaces: TablespaceMap,
}

/// The result of a restore.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The backup restored.
    pub label: String,
    /// Files written (wholly or partly).
    pub files_written: u64,
    /// Files already identical (delta).
    pub files_unchanged: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Restores a backup into `options.pgdata`.
pub async fn restore(options: RestoreOptions) -> Result<RestoreSummary, BackupError> {
    let began = Instant::now();
    let repository =
        Repository::open(&options.repo, options.key.clone(), OpenMode::Existing).await?;
    let label = match &options.set {
        Some(label) => label.clone(),
        None => repository
            .labels()
            .await?
            .pop()
            .ok_or(BackupError::NoBackups)?,
    };
    let mut manifest = repository.manifest(&label).await?;
    crate::tablespace_map::apply(&mut manifest, &options.tablespaces)?;
    let pgdata = options.pgdata.clone();
    let owner = prepare_target(&pgdata, options.delta, options.owner)?;
    check_tablespace_targets(&manifest, options.delta)?;
    if options.delta {
        remove_extraneous(&pgdata, &manifest)?;
    }
    create_directories_and_links(&pgdata, &manifest)?;

    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::File)
        .collect();
    let jobs = options.jobs.max(1);
    // 1. Create (or, with --delta, compare) every file: which chunks each one needs.
    let needed: Vec<Result<Vec<usize>, BackupError>> = futures::stream::iter(files.iter())
        .map(|entry| {
            let absolute = pgdata.join(&entry.path);
            let entry = (*entry).clone();
            let (chunk_size, delta) = (manifest.chunk_size, options.delta);
            async move {
                tokio::task::spawn_blocking(move || {
                    prepare_file(&absolute, &entry, chunk_size, delta)
                })
                .await
                .map_err(|error| BackupError::Server(format!("restore task failed: {error}")))?
            }
        })
        .buffered(jobs * 2)
        .collect()
        .await;
    let needed = needed.into_iter().collect::<Result<Vec<_>, _>>()?;
    // 2. Fetch the needed blocks pack by pack and write them where they go.
    let written: Vec<AtomicU64> = files.iter().map(|_| AtomicU64::new(0)).collect();
    let by_pack = group_by_pack(&manifest, &files, &needed)?;
    let cpu = Semaphore::new(jobs);
    let context = WriteContext {
        repository: &repository,
        pgdata: &pgdata,
        files: &files,
        written: &written,
        cpu: &cpu,
        jobs,
    };
    let results: Vec<Result<(), BackupError>> = futures::stream::iter(by_pack)
        .map(|(pack, blocks)| restore_pack(&context, pack, blocks))
        .buffer_unordered(jobs)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<Result<Vec<()>, BackupError>>()?;
    // 3. Sizes, modes and times, once the contents are in place.
    let mut files_written = 0;
    let mut bytes_written = 0;
    for (entry, written) in files.iter().zip(&written) {
        let changed = written.load(Ordering::Relaxed);
        finish_file(&pgdata.join(&entry.path), entry)?;
        if changed > 0 || entry.size == 0 {
            files_written += 1;
            bytes_written += changed;
        }
    }

    write_wal(&repository, &pgdata, &manifest).await?;
    write_recovery_files(&pgdata, &manifest, &options, &repository)?;
    set_owner_recursively(&pgdata, owner)?;
    std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700))
        .map_err(|error| BackupError::io("set permissions of", &pgdata, error))?;
    sync_file_systems(&pgdata, &manifest)?;
    tracing::info!(label, pgdata = %pgdata.display(), "restore complete");
    Ok(RestoreSummary {
        label,
        files_written,
        files_unchanged: files.len() as u64 - files_written,
        bytes_written,
        elapsed: began.elapsed(),
    })
}

/// Checks the target directory (creating it if missing) and decides the owner.
fn prepare_target(pgdata: &Path, delta: bool, owner: Option<Owner>) -> Result<Owner, BackupError> {
    let existed = pgdata.exists();
    if existed {
        let mut entries = std::fs::read_dir(pgdata)
            .map_err(|error| BackupError::io("list directory", pgdata, error))?;
        let empty = entries.next().is_none();
        if !empty && !delta {
            return Err(BackupError::Target(format!(
                "{} is not empty; restore into an empty directory, or pass --delta to update an existing copy in place",
                pgdata.display()
            )));
        }
        if pgdata.join("postmaster.pid").exists() {
            return Err(BackupError::Target(format!(
                "{} has a postmaster.pid: PostgreSQL may be running on it; stop it (and remove a stale postmaster.pid) before restoring",
                pgdata.display()
            )));
        }
    } else {
        std::fs::create_dir_all(pgdata)
            .map_err(|error| BackupError::io("create directory", pgdata, error))?;
    }
    if let Some(owner) = owner {
        return Ok(owner);
    }
    let reference = if existed {
        pgdata.to_path_buf()
    } else {
        pgdata
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    let metadata = std::fs::metadata(&reference)
        .map_err(|error| BackupError::io("stat", &reference, error))?;
    Ok(Owner {
        uid: metadata.uid(),
        gid: metadata.gid(),
    })
}

/// Refuses tablespace directories that already hold files: restoring on the backed-up host
/// would otherwise write into the live cluster's tablespace.
fn check_tablespace_targets(manifest: &Manifest, delta: bool) -> Result<(), BackupError> {
    if delta {
        return Ok(());
    }
    for entry in &manifest.entries {
        let Some(target) = entry
            .target
            .as_deref()
            .filter(|_| entry.path.starts_with("pg_tblspc/"))
        else {
            continue;
        };
        let occupied = std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(BackupError::Target(format!(
                "tablespace directory {target} (of {}) is not empty and restoring would write into it; \
                 restore the tablespace elsewhere (--tablespace-map NAME=DIR, --tablespace-map-all DIR) \
                 or empty the directory first",
                entry.path
            )));
        }
    }
    Ok(())
}

/// Delta: removes whatever is in `pgdata` that the backup does not list (deepest first).
fn remove_extraneous(pgdata: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let wanted: HashMap<&str, EntryKind> = manifest
        .entries
        .iter()
        .map(|entry| (entry.path.as_str(), entry.kind))
        .collect();
    let mut stack = vec![(pgdata.to_path_buf(), String::new())];
    let mut directories_to_remove = Vec::new();
    while let Some((directory, relative)) = stack.pop() {
        let entries = std::fs::read_dir(&directory)
            .map_err(|error| BackupError::io("list directory", &directory, error))?;
        for entry in entries {
            let entry =
                entry.map_err(|error| BackupError::io("list directory", &directory, error))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let absolute = entry.path();
            let metadata = std::fs::symlink_metadata(&absolute)
                .map_err(|error| BackupError::io("stat", &absolute, error))?;
            let kind_matches = match wanted.get(path.as_str()) {
                Some(EntryKind::Directory) => metadata.is_dir(),
                Some(EntryKind::File) => metadata.is_file(),
                Some(EntryKind::Link) => metadata.file_type().is_symlink(),
                None => false,
            };
            if kind_matches {
                if metadata.is_dir() {
                    stack.push((absolute, path));
                }
                continue;
            }
            if metadata.is_dir() {
                directories_to_remove.push(absolute);
            } else {
                std::fs::remove_file(&absolute)
                    .map_err(|error| BackupError::io("remove", &absolute, error))?;
            }
        }
    }
    for directory in directories_to_remove {
        std::fs::remove_dir_all(&directory)
            .map_err(|error| BackupError::io("remove", &directory, error))?;
    }
    Ok(())
}

fn create_directories_and_links(pgdata: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    for entry in &manifest.entries {
        let absolute = pgdata.join(&entry.path);
        match entry.kind {
            EntryKind::Directory => {
                std::fs::create_dir_all(&absolute)
                    .map_err(|error| BackupError::io("create directory", &absolute, error))?;
                std::fs::set_permissions(&absolute, std::fs::Permissions::from_mode(entry.mode))
                    .map_err(|error| BackupError::io("set permissions of", &absolute, error))?;
            }
            EntryKind::Link => {
                let target = entry.target.as_deref().unwrap_or_default();
                if std::fs::symlink_metadata(&absolute).is_ok() {
                    // Delta: a link to the right place stays; one to elsewhere (a tablespace
                    // restored to a new directory) is replaced, or files would go the old way.
                    if std::fs::read_link(&absolute).is_ok_and(|old| old != Path::new(target)) {
                        std::fs::remove_file(&absolute)
                            .map_err(|error| BackupError::io("replace link", &absolute, error))?;
                    } else {
                        continue;
                    }
                }
                if entry.path.starts_with("pg_tblspc/") {
                    // The tablespace's directory must exist for its files to be written through the link.
                    std::fs::create_dir_all(target).map_err(|error| {
                        BackupError::io("create tablespace directory", target, error)
                    })?;
                    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o700))
                        .map_err(|error| BackupError::io("set permissions of", target, error))?;
                }
                std::os::unix::fs::symlink(target, &absolute)
                    .map_err(|error| BackupError::io("create link", &absolute, error))?;
            }
            EntryKind::File => {}
        }
    }
    Ok(())
}

/// Creates `absolute` (truncating it), or with `delta` keeps a file of the right size and
/// compares it chunk by chunk; returns the indexes of the chunks to write.
fn prepare_file(
    absolute: &Path,
    entry: &Entry,
    chunk_size: u64,
    delta: bool,
) -> Result<Vec<usize>, BackupError> {
    let existing_matches_size = delta
        && std::fs::symlink_metadata(absolute)
            .is_ok_and(|metadata| metadata.is_file() && metadata.len() == entry.size);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .read(true)
        .truncate(!existing_matches_size)
        .open(absolute)
        .map_err(|error| BackupError::io("create", absolute, error))?;
    let mut needed = Vec::with_capacity(entry.blocks.len());
    for (index, hash) in entry.blocks.iter().enumerate() {
        if existing_matches_size {
            let length = Manifest::block_len(entry.size, chunk_size, index) as usize;
            let mut current = vec![0u8; length];
            let same = file
                .read_exact_at(&mut current, index as u64 * chunk_size)
                .is_ok()
                && crate::chunk::content_address(&current) == *hash;
            if same {
                continue;
            }
        }
        needed.push(index);
    }
    Ok(needed)
}

/// One block a restore needs from a pack, and every place it goes (file index, offset).
struct Needed<'a> {
    hash: &'a str,
    location: &'a BlockLocation,
    targets: Vec<(usize, u64)>,
}

/// The needed chunks of every file, grouped by the pack holding them, in pack order.
fn group_by_pack<'a>(
    manifest: &'a Manifest,
    files: &[&'a Entry],
    needed: &[Vec<usize>],
) -> Result<BTreeMap<&'a str, Vec<Needed<'a>>>, BackupError> {
    let mut by_hash: HashMap<&str, Needed<'a>> = HashMap::new();
    for (file, indexes) in needed.iter().enumerate() {
        for &index in indexes {
            let hash = files[file].blocks[index].as_str();
            let location = manifest.location(hash).ok_or_else(|| {
                BackupError::corrupt(
                    &crate::keys::manifest_key(&manifest.label),
                    format!(
                        "it names block {hash} (of {}) but not where it is",
                        files[file].path
                    ),
                )
            })?;
            by_hash
                .entry(hash)
                .or_insert_with(|| Needed {
                    hash,
                    location,
                    targets: Vec::new(),
                })
                .targets
                .push((file, index as u64 * manifest.chunk_size));
        }
    }
    let mut by_pack: BTreeMap<&str, Vec<Needed<'a>>> = BTreeMap::new();
    for needed in by_hash.into_values() {
        by_pack
            .entry(needed.location.pack.as_str())
            .or_default()
            .push(needed);
    }
    for blocks in by_pack.values_mut() {
        blocks.sort_by_key(|needed| needed.location.offset);
    }
    Ok(by_pack)
}

/// What writing blocks shares.
struct WriteContext<'a> {
    repository: &'a Repository,
    pgdata: &'a Path,
    files: &'a [&'a Entry],
    /// Bytes written per file.
    written: &'a [AtomicU64],
    /// One permit per job: bounds the threads decoding and writing to `--jobs`.
    cpu: &'a Semaphore,
    jobs: usize,
}

/// Reads the `blocks` needed from `pack` in one request, then decodes, verifies and writes
/// each to every place it goes, `jobs` at a time.
async fn restore_pack(
    context: &WriteContext<'_>,
    pack: &str,
    blocks: Vec<Needed<'_>>,
) -> Result<(), BackupError> {
    let locations: Vec<&BlockLocation> = blocks.iter().map(|needed| needed.location).collect();
    let stored = context
        .repository
        .get_pack_ranges(pack, &locations)
        .await
        .map_err(|error| match error {
            BackupError::MissingObject { key } => BackupError::Corrupt {
                key,
                reason: format!(
                    "missing; needed by {} in this backup",
                    context.files[blocks[0].targets[0].0].path
                ),
            },
            other => other,
        })?;
    let results: Vec<Result<(), BackupError>> = futures::stream::iter(blocks.iter().zip(stored))
        .map(|(needed, stored)| write_block(context, needed, stored))
        .buffer_unordered(context.jobs)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn write_block(
    context: &WriteContext<'_>,
    needed: &Needed<'_>,
    stored: bytes::Bytes,
) -> Result<(), BackupError> {
    let codec = context.repository.codec().clone();
    let (hash, location) = (needed.hash.to_string(), needed.location.clone());
    let targets: Vec<(PathBuf, u64)> = needed
        .targets
        .iter()
        .map(|&(file, offset)| (context.pgdata.join(&context.files[file].path), offset))
        .collect();
    let _permit = context
        .cpu
        .acquire()
        .await
        .map_err(|error| BackupError::Server(format!("restore workers stopped: {error}")))?;
    let length = tokio::task::spawn_blocking(move || {
        let data = decode_block(&codec, &hash, &location, &stored)?;
        for (absolute, offset) in &targets {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(absolute)
                .map_err(|error| BackupError::io("open", absolute, error))?;
            file.write_all_at(&data, *offset)
                .map_err(|error| BackupError::io("write", absolute, error))?;
            start_write_back(&file, *offset, data.len());
        }
        Ok::<_, BackupError>(data.len() as u64)
    })
    .await
    .map_err(|error| BackupError::Server(format!("restore writer task failed: {error}")))?
    .map_err(|error| match error {
        BackupError::Corrupt { key, reason } => BackupError::Corrupt {
            key,
            reason: format!(
                "{reason}; needed by {} in this backup",
                context.files[needed.targets[0].0].path
            ),
        },
        other => other,
    })?;
    for &(file, _) in &needed.targets {
        context.written[file].fetch_add(length, Ordering::Relaxed);
    }
    Ok(())
}

/// Sets the size, mode and modification time of a restored file.
fn finish_file(absolute: &Path, entry: &Entry) -> Result<(), BackupError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(absolute)
        .map_err(|error| BackupError::io("open", absolute, error))?;
    file.set_len(entry.size)
        .map_err(|error| BackupError::io("truncate", absolute, error))?;
    file.set_permissions(std::fs::Permissions::from_mode(entry.mode))
        .map_err(|error| BackupError::io("set permissions of", absolute, error))?;
    let mtime = UNIX_EPOCH + Duration::from_nanos(entry.mtime_ns.max(0) as u64);
    file.set_modified(mtime)
        .map_err(|error| BackupError::io("set the modification time of", absolute, error))?;
    Ok(())
}

/// Starts writing `length` bytes at `offset` of `file` to disk without waiting, so the disk
/// works while later blocks are decoded and the final sync has little left to do (what
/// PostgreSQL's `backend_flush_after` does). Only a hint: errors surface in the final sync.
fn start_write_back(file: &std::fs::File, offset: u64, length: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            length as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Makes everything the restore wrote durable: one `syncfs(2)` of PGDATA's file system and of
/// each tablespace's, instead of an fsync per file (Linux reports write-back errors since 5.8).
fn sync_file_systems(pgdata: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let tablespaces = manifest
        .entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::Link && entry.path.starts_with("pg_tblspc/"))
        .filter_map(|entry| entry.target.as_deref().map(PathBuf::from));
    for directory in std::iter::once(pgdata.to_path_buf()).chain(tablespaces) {
        let sync = || -> std::io::Result<()> {
            use std::os::fd::AsRawFd;
            let handle = std::fs::File::open(&directory)?;
            // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
            if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        sync().map_err(|error| BackupError::io("sync the file system of", &directory, error))?;
    }
    Ok(())
}

/// Puts the backup's WAL into pg_wal, so recovery reaches consistency without any archive.
async fn write_wal(
    repository: &Repository,
    pgdata: &Path,
    manifest: &Manifest,
) -> Result<(), BackupError> {
    let pg_wal = pgdata.join("pg_wal");
    std::fs::create_dir_all(&pg_wal)
        .map_err(|error| BackupError::io("create directory", &pg_wal, error))?;
    for name in &manifest.wal {
        let bytes = repository.get_wal(manifest.timeline, name).await?;
        let path = pg_wal.join(name);
        std::fs::write(&path, &bytes).map_err(|error| BackupError::io("write", &path, error))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| BackupError::io("set permissions of", &path, error))?;
    }
    Ok(())
}

fn write_recovery_files(
    pgdata: &Path,
    manifest: &Manifest,
    options: &RestoreOptions,
    repository: &Repository,
) -> Result<(), BackupError> {
    let write = |name: &str, contents: &str| {
        let path = pgdata.join(name);
        std::fs::write(&path, contents).map_err(|error| BackupError::io("write", &path, error))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| BackupError::io("set permissions of", &path, error))
    };
    write("backup_label", &manifest.backup_label)?;
    match &manifest.tablespace_map {
        Some(map) => write("tablespace_map", map)?,
        None => {
            let _ = std::fs::remove_file(pgdata.join("tablespace_map"));
        }
    }
    let auto_conf_path = pgdata.join("postgresql.auto.conf");
    let existing = std::fs::read_to_string(&auto_conf_path).unwrap_or_default();
    let command = restore_command(
        &options.program,
        repository.location(),
        options.key_file.as_deref(),
    );
    let text = strip_recovery_settings(&existing)
        + &recovery_settings(
            &manifest.label,
            &command,
            &options.target,
            options.target_action,
        );
    write("postgresql.auto.conf", &text)?;
    write("recovery.signal", "")?;
    let _ = std::fs::remove_file(pgdata.join("standby.signal"));
    Ok(())
}

/// Gives everything under `pgdata` (links themselves, not their targets; tablespace directories
/// too) to `owner`.
fn set_owner_recursively(pgdata: &Path, owner: Owner) -> Result<(), BackupError> {
    let chown = |path: &Path| {
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
            .map_err(|error| BackupError::io("change the owner of", path, error))
    };
    chown(pgdata)?;
    let mut stack = vec![pgdata.to_path_buf()];
    while let Some(directory) = stack.pop() {
        let entries = std::fs::read_dir(&directory)
            .map_err(|error| BackupError::io("list directory", &directory, error))?;
        for entry in entries {
            let entry =
                entry.map_err(|error| BackupError::io("list directory", &directory, error))?;
            let path = entry.path();
            chown(&path)?;
            let metadata = std::fs::symlink_metadata(&path)
                .map_err(|error| BackupError::io("stat", &path, error))?;
            if metadata.is_dir() {
                stack.push(path);
            } else if metadata.file_type().is_symlink()
                && path.parent().is_some_and(|p| p.ends_with("pg_tblspc"))
            {
                let target = std::fs::read_link(&path)
                    .map_err(|error| BackupError::io("read link", &path, error))?;
                chown(&target)?;
                stack.push(target);
            }
        }
    }
    Ok(())
}
