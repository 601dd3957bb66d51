//! Backup from a standby: a full and an incremental backup of a streaming replica restore to
//! exactly the primary's table contents, and `verify` finds nothing wrong; against an idle
//! primary that never finishes the last WAL segment, the backup fails in one clear sentence.

mod support;

use pgdbre_backup::{
    backup, restore, verify, BackupError, BackupSummary, BackupType, OpenMode, Repository,
};
use pgdbre_lab::testing::{fresh_database, shared};
use pgdbre_lab::{Cluster, LabOptions, Node, PgInstall};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// Backs up `standby`. A standby cannot switch WAL segments, so the backup waits for the primary
/// to finish the segment holding its stop LSN; the test primary is otherwise idle, so it is
/// made to switch segments meanwhile, as `archive_timeout` would (a nudge, not a wait: the
/// backup polls for the segment itself).
async fn backup_standby(
    primary: &Node,
    standby: &Node,
    repo: &str,
    backup_type: BackupType,
) -> BackupSummary {
    let done = Arc::new(AtomicBool::new(false));
    let switcher = {
        let done = done.clone();
        let primary = primary.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                primary.psql("SELECT pg_switch_wal()").unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let result = backup(&conn(standby), backup_options(repo, backup_type)).await;
    done.store(true, Ordering::Relaxed);
    switcher.join().unwrap();
    result.unwrap_or_else(|error| panic!("backup of the standby: {error}"))
}

/// Restores backup `label` of `repo` into the empty `pgdata`, starts it, and returns the content
/// checksum of table `t` in `db`.
async fn restored_md5(
    cluster: &Cluster,
    repo: &str,
    label: &str,
    pgdata: &Path,
    db: &str,
) -> String {
    restore(restore_options(repo, pgdata, Some(label)))
        .await
        .unwrap();
    let server = start_restored(cluster, pgdata);
    table_md5(server.node(), db, "t")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_from_a_standby_restores_exactly() {
    let cluster = shared();
    let primary = cluster.primary();
    let standby = &cluster.replicas()[0];
    let db = fresh_database(cluster);
    primary
        .psql_db(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, payload text); \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
        )
        .unwrap();
    let at_full = table_md5(primary, &db, "t");
    cluster.wait_for_replay(Duration::from_secs(60)).unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());

    let full = backup_standby(primary, standby, &repo, BackupType::Full).await;
    let manifest = &full.manifest;
    assert!(manifest.from_standby);
    assert_eq!(manifest.timeline.0, 1);
    assert!(manifest.backup_label.contains("BACKUP FROM: standby"));
    assert!(!manifest.wal.is_empty());
    assert!(manifest.file("standby.signal").is_none());
    assert!(manifest.bad_pages.is_empty(), "{:?}", manifest.bad_pages);

    primary
        .psql_db(
            &db,
            "UPDATE t SET payload = 'changed' WHERE id % 100 = 0; \
             INSERT INTO t SELECT g, 'after the full' FROM generate_series(20001, 25000) g; \
             DELETE FROM t WHERE id % 777 = 0;",
        )
        .unwrap();
    let at_incremental = table_md5(primary, &db, "t");
    assert_ne!(at_incremental, at_full);
    cluster.wait_for_replay(Duration::from_secs(60)).unwrap();
    let incremental = backup_standby(primary, standby, &repo, BackupType::Incremental).await;
    assert!(incremental.manifest.from_standby);
    assert_eq!(
        incremental.manifest.parent.as_deref(),
        Some(manifest.label.as_str())
    );
    // Rows written after the incremental are in neither backup.
    primary
        .psql_db(&db, "INSERT INTO t VALUES (-1, 'after the backups');")
        .unwrap();

    let full_dir = dir.path().join("restored-full");
    let full_md5 = restored_md5(cluster, &repo, &manifest.label, &full_dir, &db).await;
    assert_eq!(full_md5, at_full);
    let incremental_dir = dir.path().join("restored-incremental");
    let label = &incremental.manifest.label;
    let incremental_md5 = restored_md5(cluster, &repo, label, &incremental_dir, &db).await;
    assert_eq!(incremental_md5, at_incremental);

    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let report = verify(&repository, 2).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.backups.len(), 2);
    let listed = pgdbre_backup::info(&repository).await.unwrap();
    assert!(listed.backups.iter().all(|backup| backup.from_standby));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_from_a_standby_of_an_idle_primary_names_the_unfinished_segment() {
    // A private cluster: nothing else may write WAL on its primary.
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).replicas(1)).unwrap();
    cluster
        .primary()
        .psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g;")
        .unwrap();
    cluster.wait_for_replay(Duration::from_secs(60)).unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let mut options = backup_options(&repo, BackupType::Full);
    options.wal_timeout = Duration::from_secs(2);

    let error = backup(&conn(&cluster.replicas()[0]), options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackupError::StandbyWalTimeout { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("archive_timeout"), "{message}");
    assert!(message.contains("pg_switch_wal()"), "{message}");
    // Nothing that looks like a backup was left behind.
    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    assert!(repository.labels().await.unwrap().is_empty());
    assert!(files_under(&dir.path().join("repo"), "in-progress").is_empty());
}
