//! The files PostgreSQL has finished and is waiting to archive: `pg_wal/archive_status/*.ready`.
//! `wal push` stores some of them ahead of their own `archive_command` call.

use super::name::WalFileName;
use std::path::Path;

/// The WAL files marked `.ready` in `pg_wal`, oldest first (timeline history files sort before
/// the segments of their timeline, as PostgreSQL archives them). Unreadable status directories
/// and foreign names give an empty or shorter list: pushing ahead is an optimisation.
pub fn ready_files(pg_wal: &Path) -> Vec<WalFileName> {
    let Ok(entries) = std::fs::read_dir(pg_wal.join("archive_status")) else {
        return Vec::new();
    };
    let mut names: Vec<WalFileName> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".ready")?.parse().ok())
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ready_files_in_archive_order() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("archive_status");
        std::fs::create_dir(&status).unwrap();
        for name in [
            "000000020000000000000005.ready",
            "000000010000000000000004.done",
            "00000002.history.ready",
            "000000020000000000000004.ready",
            "junk.ready",
        ] {
            std::fs::write(status.join(name), b"").unwrap();
        }
        let names: Vec<String> = ready_files(dir.path())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            [
                "00000002.history",
                "000000020000000000000004",
                "000000020000000000000005"
            ]
        );
        assert!(ready_files(&dir.path().join("missing")).is_empty());
    }
}
