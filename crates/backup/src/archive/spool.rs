//! The local spool: a directory of small named files that carries state from one `wal push` or
//! `wal fetch` process to the next (PostgreSQL starts one per file). Push records the files it
//! stored ahead of PostgreSQL's request (`<name>.ok`, holding the fingerprint of the bytes
//! stored, or `<name>.error` when a background worker could not store it);
//! fetch keeps the segments it fetched ahead (`<name>`, verified plaintext).
//!
//! Every entry is written to a temporary file, fsynced and renamed into place, so a crash
//! leaves a whole entry or none. The spool remembers which repository it belongs to and empties
//! itself when pointed at another, so an entry never vouches for another repository.

use super::error::ArchiveError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default spool directory name, created under `pg_wal` (PostgreSQL ignores it there and
/// backups skip `pg_wal`'s contents); `push` and `fetch` use subdirectories.
pub const SPOOL_DIR_NAME: &str = "pgdbre-spool";
/// The entry naming the repository the spool belongs to.
const REPOSITORY_ENTRY: &str = ".repository";
/// Prefix of in-progress writes; names starting with `.` are never entries.
const TEMP_PREFIX: &str = ".tmp-";

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir` for the repository `repository` (its
    /// location); entries left for another repository are removed.
    pub fn open(dir: &Path, repository: &str) -> Result<Spool, ArchiveError> {
        std::fs::create_dir_all(dir)
            .map_err(|error| ArchiveError::io("create the spool directory", dir, error))?;
        let spool = Spool {
            dir: dir.to_path_buf(),
        };
        let marker = dir.join(REPOSITORY_ENTRY);
        let recorded = std::fs::read_to_string(&marker).ok();
        if recorded.as_deref() != Some(repository) {
            for name in spool.names()? {
                spool.remove(&name);
            }
            spool.write_atomically(&marker, repository.as_bytes())?;
        }
        Ok(spool)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of entry `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The contents of entry `name`, if present.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(name)).ok()
    }

    /// Whether entry `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// Writes entry `name` atomically and durably.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.write_atomically(&self.path(name), bytes)
    }

    /// Removes entry `name` (absent is fine: another process may have taken it).
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }

    /// The entry names, sorted.
    pub fn names(&self) -> Result<Vec<String>, ArchiveError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|error| ArchiveError::io("list", &self.dir, error))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Moves entry `name` to `destination` (PostgreSQL's `%p`), atomically: by rename when
    /// both are on one file system, else by an atomic copy. `false` when there is no entry.
    pub fn take(&self, name: &str, destination: &Path) -> Result<bool, ArchiveError> {
        let source = self.path(name);
        match std::fs::rename(&source, destination) {
            Ok(()) => return Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(_) => {}
        }
        let Ok(bytes) = std::fs::read(&source) else {
            return Ok(false);
        };
        write_file_atomically(destination, &bytes)?;
        self.remove(name);
        Ok(true)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
        write_file_atomically(path, bytes)
    }
}

/// The directory holding `path` (`.` for a bare file name): `pg_wal` for PostgreSQL's `%p`.
pub(crate) fn parent_or_current(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` via a temporary file in the same directory, fsync and rename, so readers see
/// the old file or the whole new one (what PostgreSQL requires of a `restore_command`'s `%p`).
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = directory.join(format!("{TEMP_PREFIX}{file_name}.{}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename itself must survive a crash too.
        File::open(directory)?.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ArchiveError::io("write", path, error));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_move_out() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool"), "/repo/a").unwrap();
        spool.write("000000010000000000000003", b"segment").unwrap();
        spool.write("000000010000000000000004.ok", b"hash").unwrap();
        assert_eq!(
            spool.names().unwrap(),
            ["000000010000000000000003", "000000010000000000000004.ok"]
        );
        assert_eq!(spool.read("000000010000000000000004.ok").unwrap(), b"hash");
        let destination = dir.path().join("RECOVERYXLOG");
        assert!(spool
            .take("000000010000000000000003", &destination)
            .unwrap());
        assert_eq!(std::fs::read(&destination).unwrap(), b"segment");
        assert!(!spool
            .take("000000010000000000000003", &destination)
            .unwrap());
    }

    #[test]
    fn another_repository_empties_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "/repo/a").unwrap();
        spool.write("x", b"1").unwrap();
        assert!(Spool::open(dir.path(), "/repo/a").unwrap().contains("x"));
        let other = Spool::open(dir.path(), "/repo/b").unwrap();
        assert!(!other.contains("x"));
        assert!(other.names().unwrap().is_empty());
    }
}
