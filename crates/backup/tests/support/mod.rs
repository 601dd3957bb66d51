//! Shared by the backup integration tests: a repository in a temp dir, a restore target the
//! server user can enter, and table checksums to compare source and restored copies.

#![allow(dead_code)] // Each test binary uses a different subset.

use pgdbre_backup::recovery::RecoveryTarget;
use pgdbre_backup::{BackupOptions, BackupType, Owner, RestoreOptions, TablespaceMap};
use pgdbre_lab::restored::{server_owner, RestoredServer};
use pgdbre_lab::{Cluster, Node};
use pgdbre_pg::ConnConfig;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temp directory the server user can traverse (tempfile makes 0700 dirs owned by root).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgdbre-backup-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A fresh repository location inside `dir`.
pub fn repo_in(dir: &Path) -> String {
    dir.join("repo").display().to_string()
}

/// Connection settings for `node`.
pub fn conn(node: &Node) -> ConnConfig {
    ConnConfig::resolve_with_env(Some(&node.dsn()), &|_| None).unwrap()
}

/// Options for a backup of `node`'s cluster into `repo`.
pub fn backup_options(repo: &str, backup_type: BackupType) -> BackupOptions {
    let mut options = BackupOptions::new(repo);
    options.backup_type = backup_type;
    options
}

/// Options to restore the latest (or `set`) backup of `repo` into `pgdata`, owned by the
/// server user, with a `restore_command` that finds nothing (the backup's own WAL suffices).
pub fn restore_options(repo: &str, pgdata: &Path, set: Option<&str>) -> RestoreOptions {
    let (uid, gid) = server_owner().unwrap();
    RestoreOptions {
        repo: repo.to_string(),
        key: None,
        key_file: None,
        set: set.map(str::to_string),
        pgdata: pgdata.to_path_buf(),
        delta: false,
        target: RecoveryTarget::Latest,
        target_action: None,
        jobs: 2,
        owner: Some(Owner { uid, gid }),
        program: PathBuf::from("/bin/false"),
        tablespaces: TablespaceMap::default(),
    }
}

/// Starts a server on a restored `pgdata` and waits until recovery has ended.
pub fn start_restored(cluster: &Cluster, pgdata: &Path) -> RestoredServer {
    let server = RestoredServer::start(cluster.install(), pgdata, cluster.primary().passfile())
        .unwrap_or_else(|error| panic!("starting the restored server: {error}"));
    server
        .wait_for_promotion(Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("{error}\n{}", server.node().log_contents()));
    server
}

/// The content checksum of table `table` in `dbname`.
pub fn table_md5(node: &Node, dbname: &str, table: &str) -> String {
    node.psql_db(
        dbname,
        &format!("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"),
    )
    .unwrap()
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                stack.push(entry.path());
            } else {
                total += metadata.len();
            }
        }
    }
    total
}

/// Every file under `dir` (recursively) whose path contains `needle`.
pub fn files_under(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.metadata().unwrap().is_dir() {
                stack.push(entry.path());
            } else if entry.path().to_string_lossy().contains(needle) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// Flips one byte in the middle of `path`.
pub fn flip_byte(path: &Path) {
    let middle = std::fs::metadata(path).unwrap().len() / 2;
    flip_byte_at(path, middle);
}

/// Flips one bit of the byte at `offset` of `path`.
pub fn flip_byte_at(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}
