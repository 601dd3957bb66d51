//! What a backup leaves out of PGDATA, following PostgreSQL's "Backing Up the Data Directory"
//! (the low-level API section) and what `pg_basebackup` skips: contents that the server
//! recreates at start-up or that recovery must not see.

/// Directories kept (created empty on restore) but whose contents are never copied.
const EMPTIED_DIRECTORIES: &[&str] = &[
    "pg_dynshmem",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
];

/// Files at the top of PGDATA that are never copied.
const EXCLUDED_TOP_FILES: &[&str] = &[
    // The running server's pid and command line.
    "postmaster.pid",
    "postmaster.opts",
    // Restore writes the backup's own label and map from pg_backup_stop().
    "backup_label",
    "tablespace_map",
    // Restore decides how the copy starts (recovery or standby); a stale signal must not win.
    "recovery.signal",
    "standby.signal",
    // Names the server's current log files, which are not part of the backup.
    "current_logfiles",
];

/// What to do with one path (relative to PGDATA, `/`-separated) found while walking PGDATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Copy it (and, for a directory, walk into it).
    Copy,
    /// Record the directory, skip its contents.
    KeepEmpty,
    /// Leave it out.
    Skip,
}

/// The decision for `path`, a directory when `is_dir`.
pub fn decide(path: &str, is_dir: bool) -> Decision {
    let name = path.rsplit('/').next().unwrap_or(path);
    // Temporary files and directories of sorts and hashes, in any tablespace.
    if name.starts_with("pgsql_tmp") {
        return Decision::Skip;
    }
    // Relation cache init files are rebuilt at start-up.
    if name == "pg_internal.init" {
        return Decision::Skip;
    }
    if !path.contains('/') {
        if is_dir && EMPTIED_DIRECTORIES.contains(&name) {
            return Decision::KeepEmpty;
        }
        if !is_dir && EXCLUDED_TOP_FILES.contains(&name) {
            return Decision::Skip;
        }
    }
    // WAL comes from the archive or the backup's own WAL list, never from a copy of pg_wal;
    // its subdirectories (archive_status, summaries) are kept so the server finds them.
    if path == "pg_wal" || path.starts_with("pg_wal/") {
        return if is_dir {
            Decision::KeepEmpty
        } else {
            Decision::Skip
        };
    }
    Decision::Copy
}

/// Whether `name` in a database directory belongs to an unlogged relation, given the names in
/// that directory: unlogged relations are reset from their `_init` fork after recovery, so only
/// that fork is copied (as PostgreSQL's documentation recommends).
pub fn is_unlogged_fork(name: &str, has_init_fork: impl Fn(&str) -> bool) -> bool {
    let base = name.split('.').next().unwrap_or(name);
    let (relation, fork) = match base.split_once('_') {
        Some((relation, fork)) => (relation, Some(fork)),
        None => (base, None),
    };
    if relation.is_empty() || !relation.bytes().all(|byte| byte.is_ascii_digit()) {
        return false;
    }
    if fork == Some("init") {
        return false;
    }
    has_init_fork(relation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_exclusions() {
        assert_eq!(decide("postmaster.pid", false), Decision::Skip);
        assert_eq!(decide("postmaster.opts", false), Decision::Skip);
        assert_eq!(decide("backup_label", false), Decision::Skip);
        assert_eq!(decide("pg_replslot", true), Decision::KeepEmpty);
        assert_eq!(decide("pg_stat_tmp", true), Decision::KeepEmpty);
        assert_eq!(decide("pg_subtrans", true), Decision::KeepEmpty);
        assert_eq!(decide("pg_wal", true), Decision::KeepEmpty);
        assert_eq!(decide("pg_wal/archive_status", true), Decision::KeepEmpty);
        assert_eq!(
            decide("pg_wal/000000010000000000000001", false),
            Decision::Skip
        );
        assert_eq!(decide("base/5/pgsql_tmp", true), Decision::Skip);
        assert_eq!(
            decide("base/pgsql_tmp/pgsql_tmp123.0", false),
            Decision::Skip
        );
        assert_eq!(decide("base/5/pg_internal.init", false), Decision::Skip);
        assert_eq!(decide("global/pg_internal.init", false), Decision::Skip);
    }

    #[test]
    fn everything_else_is_copied() {
        assert_eq!(decide("base/5/1259", false), Decision::Copy);
        assert_eq!(decide("global/pg_control", false), Decision::Copy);
        assert_eq!(decide("postgresql.auto.conf", false), Decision::Copy);
        assert_eq!(decide("pg_xact", true), Decision::Copy);
        assert_eq!(decide("pg_logical/snapshots", true), Decision::Copy);
        // Only the top-level names are special.
        assert_eq!(decide("base/5/postmaster.pid", false), Decision::Copy);
        assert_eq!(
            decide("pg_tblspc/16385/PG_15_202209061/pg_replslot", true),
            Decision::Copy
        );
    }

    #[test]
    fn unlogged_relations_keep_only_their_init_fork() {
        let has_init = |relation: &str| relation == "16390";
        assert!(is_unlogged_fork("16390", has_init));
        assert!(is_unlogged_fork("16390.1", has_init));
        assert!(is_unlogged_fork("16390_fsm", has_init));
        assert!(is_unlogged_fork("16390_vm", has_init));
        assert!(!is_unlogged_fork("16390_init", has_init));
        assert!(!is_unlogged_fork("16391", has_init));
        assert!(!is_unlogged_fork("PG_VERSION", has_init));
    }
}
