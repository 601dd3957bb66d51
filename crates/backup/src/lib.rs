//! The backup repository and the commands on it: `backup`, `restore`, `info`, `verify`.
//!
//! A repository (format in `docs/backup-format.md`) holds immutable content-addressed blocks,
//! one manifest per backup and the WAL archive, on any [`pgdbre_storage::Storage`]. Every
//! stored object goes through one [`Codec`] (zstd, optional AES-256-GCM, BLAKE3 checksum), so
//! the later `wal push/fetch`, `expire` and `drill` build on [`Repository`], [`keys`] and the
//! WAL types in [`wal`] rather than re-deriving the layout.
//!
//! Pure decisions are separate from I/O and unit-tested where they live: what to leave out of
//! PGDATA ([`exclude`]), when an incremental may skip reading a file ([`unchanged`]), page
//! checksums ([`page`]), recovery settings ([`recovery`]).

pub mod archive;
mod backup;
pub mod chunk;
mod codec;
mod config;
mod cpu_pool;
mod error;
pub mod exclude;
mod expire;
mod info;
mod key;
pub mod keys;
mod label;
mod manifest;
mod marker;
pub mod pack;
pub mod page;
mod pgdata;
pub mod recovery;
mod repository;
mod restore;
mod standby;
mod summary;
mod tablespace_map;
pub mod unchanged;
mod verify;
pub mod wal;

pub use backup::{backup, BackupOptions, BackupSummary, Progress, ProgressFn};
pub use codec::{Codec, DEFAULT_LEVEL};
pub use config::RepoConfig;
pub use error::BackupError;
pub use expire::{
    choose_expired, expire, BackupFacts, ExpireOptions, ExpireReport, Retention, DEFAULT_PACK_GRACE,
};
pub use info::{info, BackupInfo, RepositoryInfo};
pub use key::{RepoKey, KEY_ENV};
pub use label::{backup_label, format_utc};
pub use manifest::{
    BackupType, BadPage, BlockLocation, Entry, EntryKind, Manifest, Tablespace, Totals,
};
pub use repository::{OpenMode, Repository, WalPut};
pub use restore::{restore, Owner, RestoreOptions, RestoreSummary};
pub use tablespace_map::TablespaceMap;
pub use verify::{verify, Problem, VerifyReport};
