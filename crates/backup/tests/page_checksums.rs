//! Page checksums are verified while a backup reads relation files: every page of a healthy
//! cluster passes (which also checks our implementation of PostgreSQL's algorithm), and a
//! damaged page is reported with its relation file and block number.

mod support;

use pgdbre_backup::{backup, BackupType};
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use std::os::unix::fs::FileExt;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_page_is_reported_with_relation_and_block() {
    // A private cluster: the damage must not leak into other tests' backups.
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-pages")).unwrap();
    let primary = cluster.primary();
    assert_eq!(primary.psql("SHOW data_checksums").unwrap(), "on");
    let path = primary
        .psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 5000) g; \
               CHECKPOINT; SELECT pg_relation_filepath('t');")
        .unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());

    let healthy = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    assert!(healthy.manifest.data_checksums);
    assert!(
        healthy.manifest.bad_pages.is_empty(),
        "{:?}",
        healthy.manifest.bad_pages
    );

    // Damage block 2 on disk; the server's cached copy stays clean, so it never rewrites it.
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(primary.data_dir().join(&path))
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 2 * 8192 + 4000).unwrap();
    byte[0] ^= 0xFF;
    file.write_all_at(&byte, 2 * 8192 + 4000).unwrap();
    drop(file);

    let damaged = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let bad: Vec<(String, u32)> = damaged
        .manifest
        .bad_pages
        .iter()
        .map(|p| (p.path.clone(), p.block))
        .collect();
    assert_eq!(bad, vec![(path, 2)]);
}
