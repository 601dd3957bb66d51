//! `pgdbre info`: what the repository holds — each backup with its LSN range and sizes, and the
//! repository's deduplication and compression ratios.
//!
//! Ratios: *dedup* is the bytes all backups would restore divided by the plaintext bytes of the
//! distinct blocks stored; *compression* is that plaintext divided by the stored block bytes.

use crate::error::BackupError;
use crate::keys;
use crate::manifest::{BackupType, Manifest};
use crate::repository::Repository;
use crate::wal::{Lsn, TimelineId};
use serde::Serialize;
use std::collections::HashMap;

/// One backup as `info` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    /// Label.
    pub label: String,
    /// Full or incremental.
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    /// Parent label (incrementals).
    pub parent: Option<String>,
    /// Start, Unix nanoseconds.
    pub start_unix_ns: i64,
    /// Stop, Unix nanoseconds.
    pub stop_unix_ns: i64,
    /// Timeline.
    pub timeline: TimelineId,
    /// Start LSN.
    pub start_lsn: Lsn,
    /// Stop LSN (earliest point a restore of this backup can stop at).
    pub stop_lsn: Lsn,
    /// PostgreSQL version.
    pub pg_version: String,
    /// Files.
    pub files: u64,
    /// Bytes a restore writes.
    pub bytes: u64,
    /// Bytes read from PGDATA while backing up.
    pub bytes_read: u64,
    /// Stored bytes this backup added to the repository.
    pub new_stored_bytes: u64,
    /// WAL files stored with the backup.
    pub wal_files: usize,
    /// Pages that failed checksum verification.
    pub bad_pages: usize,
    /// Taken from a standby.
    pub from_standby: bool,
}

/// The repository as `info` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryInfo {
    /// Location.
    pub location: String,
    /// The cluster's system identifier.
    pub system_identifier: u64,
    /// Format version.
    pub format_version: u32,
    /// Whether objects are encrypted.
    pub encrypted: bool,
    /// Compression and default level.
    pub compression: String,
    /// Valid backups, oldest first.
    pub backups: Vec<BackupInfo>,
    /// Sum of all backups' sizes.
    pub logical_bytes: u64,
    /// Plaintext bytes of the distinct blocks referenced.
    pub unique_bytes: u64,
    /// Stored bytes of the blocks referenced.
    pub stored_block_bytes: u64,
    /// Stored bytes of the WAL archive.
    pub stored_wal_bytes: u64,
    /// Stored bytes of everything.
    pub repository_bytes: u64,
    /// `logical_bytes / unique_bytes`.
    pub dedup_ratio: f64,
    /// `unique_bytes / stored_block_bytes`.
    pub compression_ratio: f64,
    /// Oldest and newest WAL file in the archive.
    pub wal_range: Option<(String, String)>,
}

/// Summarises `repository`.
pub async fn info(repository: &Repository) -> Result<RepositoryInfo, BackupError> {
    let objects = repository.storage().list("").await?;
    let mut unique: HashMap<String, u64> = HashMap::new();
    // Stored length of each referenced block, by where it is.
    let mut stored_blocks: HashMap<(String, u64), u64> = HashMap::new();
    let mut backups = Vec::new();
    let mut logical_bytes = 0;
    for label in repository.labels().await? {
        let manifest = repository.manifest(&label).await?;
        for entry in &manifest.entries {
            for (index, hash) in entry.blocks.iter().enumerate() {
                unique
                    .entry(hash.clone())
                    .or_insert_with(|| Manifest::block_len(entry.size, manifest.chunk_size, index));
            }
        }
        for location in manifest.blocks.values() {
            stored_blocks.insert((location.pack.clone(), location.offset), location.length);
        }
        logical_bytes += manifest.totals.bytes;
        backups.push(BackupInfo {
            label,
            backup_type: manifest.backup_type,
            parent: manifest.parent.clone(),
            start_unix_ns: manifest.start_unix_ns,
            stop_unix_ns: manifest.stop_unix_ns,
            timeline: manifest.timeline,
            start_lsn: manifest.start_lsn,
            stop_lsn: manifest.stop_lsn,
            pg_version: manifest.pg_version.clone(),
            files: manifest.totals.files,
            bytes: manifest.totals.bytes,
            bytes_read: manifest.totals.bytes_read,
            new_stored_bytes: manifest.totals.new_stored_bytes,
            wal_files: manifest.wal.len(),
            bad_pages: manifest.bad_pages.len(),
            from_standby: manifest.from_standby,
        });
    }
    let unique_bytes: u64 = unique.values().sum();
    let stored_block_bytes: u64 = stored_blocks.values().sum();
    // The range spans whole segments: `.history`, `.backup` and `.partial` files are not ends
    // of it (a `.backup` file sorts after its segment and would show as the last one).
    let wal: Vec<&str> = objects
        .iter()
        .filter(|object| object.key.starts_with(keys::WAL_PREFIX))
        .filter_map(|object| object.key.rsplit('/').next())
        .filter(|name| !name.contains('.'))
        .collect();
    let stored_wal_bytes = objects
        .iter()
        .filter(|object| object.key.starts_with(keys::WAL_PREFIX))
        .map(|object| object.size)
        .sum();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let config = repository.config();
    Ok(RepositoryInfo {
        location: repository.location().to_string(),
        system_identifier: config.system_identifier,
        format_version: config.format_version,
        encrypted: config.encrypted,
        compression: format!("{} level {}", config.compression, config.compress_level),
        backups,
        logical_bytes,
        unique_bytes,
        stored_block_bytes,
        stored_wal_bytes,
        repository_bytes: objects.iter().map(|object| object.size).sum(),
        dedup_ratio: ratio(logical_bytes, unique_bytes),
        compression_ratio: ratio(unique_bytes, stored_block_bytes),
        wal_range: wal
            .iter()
            .min()
            .zip(wal.iter().max())
            .map(|(first, last)| (first.to_string(), last.to_string())),
    })
}
