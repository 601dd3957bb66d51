//! The rule that lets an incremental backup reuse a file's blocks from its parent without
//! reading the file. It must never miss a change, so it only trusts what PostgreSQL cannot
//! fake: a write after the parent read the file moves the file's mtime past the parent's start.
//!
//! A file is **not read** only when all of these hold:
//! 1. the parent manifest has a regular file at the same path;
//! 2. its size now equals the size the parent recorded;
//! 3. its mtime now (nanoseconds) equals the mtime the parent recorded — observed by `stat`
//!    *before* the parent read the file, so a write during that read changes it;
//! 4. that mtime is older than the parent's start time by more than [`MTIME_SAFETY_MARGIN`].
//!
//! Why 4: file systems store mtimes with coarse granularity (a kernel tick of ~4 ms on ext4,
//! one or two seconds on others), so a write in the same tick as the recorded mtime can leave
//! the mtime unchanged. Any write after the parent started reading happens after the parent's
//! start time, so it stamps an mtime at or past that start (less one granule); a recorded mtime
//! more than the margin older than the start therefore cannot equal a post-start write's mtime.
//! Files written within the margin before the parent began are always read again. The parent's
//! start time is taken from the same clock as the mtimes (the backup runs on the database host).
//! The rule assumes the host clock does not step backwards by more than the margin between two
//! backups, and that nothing but PostgreSQL writes PGDATA (nothing resets mtimes).
//! Reading is all that is saved: the reused entry points at blocks the parent already stored.

use crate::manifest::{Entry, EntryKind};

/// How much older than the parent's start a recorded mtime must be for the file to be trusted
/// unchanged: larger than any file-system timestamp granularity PostgreSQL runs on (FAT's 2 s).
pub const MTIME_SAFETY_MARGIN_NS: i64 = 3_000_000_000;

/// What `stat` says about a file now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// Whether the parent's `entry` for this path may be reused without reading the file, for a
/// parent backup that started at `parent_start_ns` (see the module documentation).
pub fn can_reuse(entry: &Entry, now: FileState, parent_start_ns: i64) -> bool {
    entry.kind == EntryKind::File
        && entry.size == now.size
        && entry.mtime_ns == now.mtime_ns
        && entry.mtime_ns.saturating_add(MTIME_SAFETY_MARGIN_NS) < parent_start_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const PARENT_START: i64 = 1_800_000_000 * SECOND;

    fn entry(size: u64, mtime_ns: i64) -> Entry {
        Entry {
            path: "base/5/16384".into(),
            kind: EntryKind::File,
            mode: 0o600,
            size,
            mtime_ns,
            blocks: vec!["aa".repeat(32)],
            target: None,
        }
    }

    #[test]
    fn old_unchanged_file_is_reused() {
        let old = PARENT_START - 3600 * SECOND;
        assert!(can_reuse(
            &entry(8192, old),
            FileState {
                size: 8192,
                mtime_ns: old
            },
            PARENT_START
        ));
    }

    #[test]
    fn any_difference_in_size_or_mtime_means_read() {
        let old = PARENT_START - 3600 * SECOND;
        assert!(!can_reuse(
            &entry(8192, old),
            FileState {
                size: 16384,
                mtime_ns: old
            },
            PARENT_START
        ));
        assert!(!can_reuse(
            &entry(8192, old),
            FileState {
                size: 8192,
                mtime_ns: old + 1
            },
            PARENT_START
        ));
        // Even an mtime that went backwards.
        assert!(!can_reuse(
            &entry(8192, old),
            FileState {
                size: 8192,
                mtime_ns: old - 1
            },
            PARENT_START
        ));
    }

    #[test]
    fn file_written_in_the_same_second_as_the_parent_is_read() {
        // Written during the parent backup's first second: the same-tick rewrite that keeps
        // size and mtime identical must not be trusted.
        for offset in [0, SECOND / 2, -SECOND, -2 * SECOND, -MTIME_SAFETY_MARGIN_NS] {
            let mtime = PARENT_START + offset;
            let now = FileState {
                size: 8192,
                mtime_ns: mtime,
            };
            assert!(
                !can_reuse(&entry(8192, mtime), now, PARENT_START),
                "offset {offset}"
            );
        }
        let just_old_enough = PARENT_START - MTIME_SAFETY_MARGIN_NS - 1;
        let now = FileState {
            size: 8192,
            mtime_ns: just_old_enough,
        };
        assert!(can_reuse(&entry(8192, just_old_enough), now, PARENT_START));
    }

    #[test]
    fn directories_and_links_are_never_reused_as_files() {
        let old = PARENT_START - 3600 * SECOND;
        let mut directory = entry(0, old);
        directory.kind = EntryKind::Directory;
        assert!(!can_reuse(
            &directory,
            FileState {
                size: 0,
                mtime_ns: old
            },
            PARENT_START
        ));
    }
}
