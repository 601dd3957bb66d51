//! The backup manifest: everything needed to restore one backup without any other backup's
//! manifest (an incremental lists every file, pointing at the blocks it shares with its parent).
//! Written last and atomically; its presence is what makes a backup valid.

use crate::wal::{Lsn, TimelineId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tablespace of the backed-up cluster (not `pg_default` or `pg_global`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tablespace {
    /// `pg_tablespace.oid`: the name of its link in `pg_tblspc`.
    pub oid: u32,
    /// `pg_tablespace.spcname`.
    pub name: String,
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupType {
    /// Every file read.
    Full,
    /// Files unchanged since the parent (by the rule in [`crate::unchanged`]) are not read.
    Incremental,
}

impl BackupType {
    /// The label suffix pgBackRest uses: `F` or `I`.
    pub fn suffix(self) -> char {
        match self {
            BackupType::Full => 'F',
            BackupType::Incremental => 'I',
        }
    }
}

/// What a manifest entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file, stored as blocks.
    File,
    /// A directory (also the kept-but-emptied ones such as `pg_wal`).
    Directory,
    /// A symbolic link (`pg_tblspc/<oid>` for a tablespace).
    Link,
}

/// One file, directory or link of PGDATA, by its path relative to PGDATA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to PGDATA, `/`-separated.
    pub path: String,
    /// File, directory or link.
    pub kind: EntryKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Modification time observed *before* reading, in nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub mtime_ns: i64,
    /// BLAKE3 hex of each chunk of the file, in order (files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
    /// Link target (links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// A page whose checksum did not verify while it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadPage {
    /// Relation file, relative to PGDATA.
    pub path: String,
    /// Block number within the relation (segment number taken into account).
    pub block: u32,
}

/// Where a stored block lives: bytes `offset..offset + length` of pack `pack` (see pack.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLocation {
    /// Pack id (32 hex digits).
    pub pack: String,
    /// Offset of the block's encoded bytes in the pack.
    pub offset: u64,
    /// Length of the block's encoded bytes.
    pub length: u64,
}

/// Sizes of one backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Files in the backup.
    pub files: u64,
    /// Sum of their sizes: what a restore writes.
    pub bytes: u64,
    /// Bytes actually read from PGDATA (an incremental skips unchanged files).
    pub bytes_read: u64,
    /// Blocks this backup added to the repository.
    pub new_blocks: u64,
    /// Stored (compressed, encrypted) bytes this backup added, WAL included.
    pub new_stored_bytes: u64,
}

/// The manifest of one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Repository format version it was written with.
    pub format_version: u32,
    /// `20261125-181500F`.
    pub label: String,
    /// Full or incremental.
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    /// The backup this one compared against (incrementals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// `pg_control_system().system_identifier`.
    pub system_identifier: u64,
    /// `server_version_num`.
    pub pg_version_num: u32,
    /// `server_version`.
    pub pg_version: String,
    /// Timeline the backup started on.
    pub timeline: TimelineId,
    /// `pg_backup_start()`'s LSN: recovery starts at the checkpoint it names.
    pub start_lsn: Lsn,
    /// `pg_backup_stop()`'s LSN: the restored cluster is consistent after replaying to here.
    pub stop_lsn: Lsn,
    /// When the backup started (local clock, before `pg_backup_start`), Unix nanoseconds.
    pub start_unix_ns: i64,
    /// When the backup finished, Unix nanoseconds.
    pub stop_unix_ns: i64,
    /// `wal_segment_size` in bytes.
    pub wal_segment_size: u64,
    /// Chunk size the files were cut into.
    pub chunk_size: u64,
    /// Whether the cluster has data checksums (pages were verified while read).
    pub data_checksums: bool,
    /// The `backup_label` file `pg_backup_stop()` returned; restore writes it into PGDATA.
    pub backup_label: String,
    /// The `tablespace_map` file `pg_backup_stop()` returned (with tablespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace_map: Option<String>,
    /// The cluster's own tablespaces, by OID and name (their directories are the targets of
    /// the `pg_tblspc/<oid>` link entries), so a restore can move them by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tablespaces: Vec<Tablespace>,
    /// WAL files (segments, then history files) from start to stop LSN (from a standby: to the
    /// LSN it had replayed when the backup stopped, if further), stored under `wal/`.
    pub wal: Vec<String>,
    /// Files, directories and links of PGDATA.
    pub entries: Vec<Entry>,
    /// Where every block the entries name is stored (those shared with earlier backups too), so
    /// a restore needs this manifest only.
    pub blocks: BTreeMap<String, BlockLocation>,
    /// Pages that failed checksum verification while read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_pages: Vec<BadPage>,
    /// Whether this incremental read only the blocks WAL summaries listed as changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wal_summaries: bool,
    /// Whether the backup was taken from a standby (its `timeline` is the one the standby was
    /// replaying; its end is the copied `pg_control`'s `minRecoveryPoint`, at or before `stop_lsn`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_standby: bool,
    /// Sizes.
    pub totals: Totals,
}

impl Manifest {
    /// The file entry for `path`.
    pub fn file(&self, path: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|entry| entry.path == path && entry.kind == EntryKind::File)
    }

    /// Every block hash the backup references (with repeats).
    pub fn block_hashes(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .flat_map(|entry| entry.blocks.iter().map(String::as_str))
    }

    /// Where block `hash` is stored, if this manifest says.
    pub fn location(&self, hash: &str) -> Option<&BlockLocation> {
        self.blocks.get(hash)
    }

    /// Plaintext length of block `index` of a file of `size` bytes cut into `chunk_size` chunks.
    pub fn block_len(size: u64, chunk_size: u64, index: usize) -> u64 {
        let start = index as u64 * chunk_size;
        size.saturating_sub(start).min(chunk_size)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format_version: 2,
            label: "20261125-181500F".into(),
            backup_type: BackupType::Full,
            parent: None,
            system_identifier: 7_441_234_567_890_123_456,
            pg_version_num: 150018,
            pg_version: "15.18".into(),
            timeline: TimelineId(1),
            start_lsn: "0/3000028".parse().unwrap(),
            stop_lsn: "0/3000100".parse().unwrap(),
            start_unix_ns: 1_795_000_000_000_000_000,
            stop_unix_ns: 1_795_000_001_000_000_000,
            wal_segment_size: 16 << 20,
            chunk_size: 128 << 10,
            data_checksums: true,
            backup_label: "START WAL LOCATION: 0/3000028\n".into(),
            tablespace_map: None,
            tablespaces: vec![],
            wal: vec!["000000010000000000000003".into()],
            entries: vec![
                Entry {
                    path: "base".into(),
                    kind: EntryKind::Directory,
                    mode: 0o700,
                    size: 0,
                    mtime_ns: 0,
                    blocks: vec![],
                    target: None,
                },
                Entry {
                    path: "base/1/1259".into(),
                    kind: EntryKind::File,
                    mode: 0o600,
                    size: 200_000,
                    mtime_ns: 1_794_999_000_000_000_001,
                    blocks: vec!["aa".repeat(32), "bb".repeat(32)],
                    target: None,
                },
            ],
            blocks: [("aa", 0), ("bb", 9000)]
                .into_iter()
                .map(|(byte, offset)| {
                    let location = BlockLocation {
                        pack: "cd".repeat(16),
                        offset,
                        length: 9000,
                    };
                    (byte.repeat(32), location)
                })
                .collect(),
            bad_pages: vec![],
            wal_summaries: false,
            from_standby: false,
            totals: Totals::default(),
        }
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let manifest = sample();
        let json = serde_json::to_string(&manifest).unwrap();
        assert!(json.contains("\"type\":\"full\""), "{json}");
        assert!(json.contains("\"start_lsn\":\"0/3000028\""), "{json}");
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.file("base/1/1259").unwrap().blocks.len(), 2);
        assert!(back.file("base").is_none());
        assert_eq!(back.block_hashes().count(), 2);
        assert_eq!(back.location(&"bb".repeat(32)).unwrap().offset, 9000);
    }

    #[test]
    fn last_block_is_the_remainder() {
        assert_eq!(Manifest::block_len(200_000, 131_072, 0), 131_072);
        assert_eq!(Manifest::block_len(200_000, 131_072, 1), 200_000 - 131_072);
        assert_eq!(Manifest::block_len(131_072, 131_072, 1), 0);
    }
}
