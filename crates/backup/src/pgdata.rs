//! Walking PGDATA: every directory, file and link a backup records, after the exclusions of
//! [`crate::exclude`]. Tablespace links (`pg_tblspc/<oid>`) are recorded as links and followed,
//! so the tablespace's files are backed up under the link's path.

use crate::error::BackupError;
use crate::exclude::{self, Decision};
use crate::manifest::EntryKind;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One thing found in PGDATA.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Path relative to PGDATA, `/`-separated.
    pub(crate) path: String,
    /// Where to read it.
    pub(crate) absolute: PathBuf,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) size: u64,
    /// Link target.
    pub(crate) target: Option<String>,
}

/// Modification time of `metadata` in Unix nanoseconds.
pub(crate) fn mtime_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime_nsec())
}

/// Everything under `pgdata` that a backup records, sorted by path (parents first).
pub(crate) fn walk(pgdata: &Path) -> Result<Vec<Found>, BackupError> {
    let mut found = Vec::new();
    walk_dir(pgdata, "", &mut found)?;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn walk_dir(directory: &Path, relative: &str, found: &mut Vec<Found>) -> Result<(), BackupError> {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        // Dropped while we walk (a database being dropped): nothing to back up.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !relative.is_empty() => {
            return Ok(())
        }
        Err(error) => return Err(BackupError::io("list directory", directory, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| BackupError::io("list directory", directory, error))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let init_forks: HashSet<&str> = names
        .iter()
        .filter_map(|name| name.strip_suffix("_init"))
        .collect();
    for name in &names {
        let path = if relative.is_empty() {
            name.clone()
        } else {
            format!("{relative}/{name}")
        };
        let absolute = directory.join(name);
        let metadata = match std::fs::symlink_metadata(&absolute) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(BackupError::io("stat", &absolute, error)),
        };
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            let target = std::fs::read_link(&absolute)
                .map_err(|error| BackupError::io("read link", &absolute, error))?;
            let resolved = std::fs::metadata(&absolute)
                .map_err(|error| BackupError::io("follow link", &absolute, error))?;
            if path == "pg_wal" {
                // pg_wal elsewhere (initdb --waldir): restore makes it a plain directory.
                found.push(directory_entry(&path, &absolute, &resolved));
                continue;
            }
            found.push(Found {
                path: path.clone(),
                absolute: absolute.clone(),
                kind: EntryKind::Link,
                mode: metadata.mode() & 0o7777,
                size: 0,
                target: Some(target.to_string_lossy().into_owned()),
            });
            if relative == "pg_tblspc" && resolved.is_dir() {
                walk_dir(&absolute, &path, found)?;
            }
            continue;
        }
        let is_dir = file_type.is_dir();
        match exclude::decide(&path, is_dir) {
            Decision::Skip => continue,
            Decision::KeepEmpty => {
                found.push(directory_entry(&path, &absolute, &metadata));
                // pg_wal keeps its subdirectories (archive_status, summaries), never files;
                // elsewhere a kept subdirectory would be harmful (an empty replication slot
                // directory makes start-up fail).
                if path == "pg_wal" {
                    walk_subdirectories(&absolute, &path, found)?;
                }
                continue;
            }
            Decision::Copy => {}
        }
        if is_dir {
            found.push(directory_entry(&path, &absolute, &metadata));
            walk_dir(&absolute, &path, found)?;
        } else if file_type.is_file() {
            if exclude::is_unlogged_fork(name, |relation| init_forks.contains(relation)) {
                continue;
            }
            found.push(Found {
                path,
                absolute,
                kind: EntryKind::File,
                mode: metadata.mode() & 0o7777,
                size: metadata.len(),
                target: None,
            });
        }
        // Sockets, FIFOs and devices have no place in PGDATA and are not backed up.
    }
    Ok(())
}

fn walk_subdirectories(
    directory: &Path,
    relative: &str,
    found: &mut Vec<Found>,
) -> Result<(), BackupError> {
    let entries = std::fs::read_dir(directory)
        .map_err(|error| BackupError::io("list directory", directory, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| BackupError::io("list directory", directory, error))?;
        let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if metadata.is_dir() {
            let path = format!("{relative}/{}", entry.file_name().to_string_lossy());
            found.push(directory_entry(&path, &entry.path(), &metadata));
            walk_subdirectories(&entry.path(), &path, found)?;
        }
    }
    Ok(())
}

fn directory_entry(path: &str, absolute: &Path, metadata: &std::fs::Metadata) -> Found {
    Found {
        path: path.to_string(),
        absolute: absolute.to_path_buf(),
        kind: EntryKind::Directory,
        mode: metadata.mode() & 0o7777,
        size: 0,
        target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_applies_exclusions_and_keeps_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in [
            "base/5",
            "global",
            "pg_wal/archive_status",
            "pg_stat_tmp",
            "pg_replslot/slot",
            "pg_tblspc",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for file in [
            "PG_VERSION",
            "postmaster.pid",
            "base/5/16384",
            "base/5/16390",
            "base/5/16390_init",
            "base/5/pg_internal.init",
            "global/pg_control",
            "pg_wal/000000010000000000000001",
            "pg_stat_tmp/global.stat",
        ] {
            std::fs::write(root.join(file), b"x").unwrap();
        }
        let paths: Vec<(String, EntryKind)> = walk(root)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.kind))
            .collect();
        let expected = [
            ("PG_VERSION", EntryKind::File),
            ("base", EntryKind::Directory),
            ("base/5", EntryKind::Directory),
            ("base/5/16384", EntryKind::File),
            ("base/5/16390_init", EntryKind::File),
            ("global", EntryKind::Directory),
            ("global/pg_control", EntryKind::File),
            ("pg_replslot", EntryKind::Directory),
            ("pg_stat_tmp", EntryKind::Directory),
            ("pg_tblspc", EntryKind::Directory),
            ("pg_wal", EntryKind::Directory),
            ("pg_wal/archive_status", EntryKind::Directory),
        ];
        let expected: Vec<(String, EntryKind)> =
            expected.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(paths, expected);
    }
}
