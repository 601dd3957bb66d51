//! Backup and restore against a real server: a full and an incremental backup restore to
//! exactly the source's table contents, an incremental stores only what changed, and the
//! unchanged-file rule does not miss a file rewritten in the parent backup's second.

mod support;

use pgdbre_backup::{backup, info, restore, verify, BackupType, OpenMode, Repository};
use pgdbre_lab::testing::{fresh_database, shared};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_backup_restores_the_exact_table_contents() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    primary
        .psql_db(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, payload text); \
                       INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
        )
        .unwrap();
    let source = table_md5(primary, &db, "t");
    let dir = open_tempdir();
    let repo = repo_in(dir.path());

    let summary = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let manifest = &summary.manifest;
    assert!(manifest.label.ends_with('F'), "{}", manifest.label);
    assert!(!manifest.wal.is_empty());
    assert!(manifest.stop_lsn > manifest.start_lsn);
    assert!(manifest.bad_pages.is_empty(), "{:?}", manifest.bad_pages);
    assert!(manifest.file("global/pg_control").is_some());
    assert!(manifest.file("postmaster.pid").is_none());
    // Rows added after the backup are not in it.
    primary
        .psql_db(&db, "INSERT INTO t VALUES (-1, 'after the backup');")
        .unwrap();

    let target = dir.path().join("restored");
    let restored = restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    assert_eq!(restored.label, manifest.label);
    let server = start_restored(cluster, &target);
    assert_eq!(table_md5(server.node(), &db, "t"), source);

    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let report = verify(&repository, 2).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.backups, vec![manifest.label.clone()]);
    let summary = info(&repository).await.unwrap();
    assert_eq!(summary.backups.len(), 1);
    assert!(
        summary.compression_ratio > 1.5,
        "{}",
        summary.compression_ratio
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_stores_only_changed_chunks_and_restores_exactly() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    // ~30 MB of incompressible rows, so "stored much less than the full" means something.
    primary
        .psql_db(&db, "CREATE TABLE big (id int PRIMARY KEY, payload text); \
                       INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) \
                       FROM generate_series(1, 250000) g;")
        .unwrap();
    // Settle the pages first (hint bits, freezing, visibility map): otherwise the first reads
    // after the load rewrite every page, and the incremental rightly stores them all.
    primary
        .psql_db(&db, "VACUUM (FREEZE, ANALYZE) big; CHECKPOINT;")
        .unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let full = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let after_full = dir_size(&dir.path().join("repo"));

    primary
        .psql_db(
            &db,
            "UPDATE big SET payload = 'changed' WHERE id IN (10, 50000, 200000); CHECKPOINT;",
        )
        .unwrap();
    let changed = table_md5(primary, &db, "big");
    let incremental = backup(
        &conn(primary),
        backup_options(&repo, BackupType::Incremental),
    )
    .await
    .unwrap();
    let growth = dir_size(&dir.path().join("repo")) - after_full;
    let manifest = &incremental.manifest;
    assert_eq!(
        manifest.parent.as_deref(),
        Some(full.manifest.label.as_str())
    );
    assert!(manifest.label.ends_with('I'));
    assert!(
        growth * 10 < after_full,
        "incremental grew the repository by {growth} bytes, the full took {after_full}"
    );
    // Old files whose mtime is well before the parent's start were not even read.
    assert!(manifest.totals.bytes_read <= manifest.totals.bytes);

    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, Some(&manifest.label)))
        .await
        .unwrap();
    let server = start_restored(cluster, &target);
    assert_eq!(table_md5(server.node(), &db, "big"), changed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rewritten_within_the_parent_backups_second_is_not_missed() {
    let cluster = shared();
    let primary = cluster.primary();
    let name = format!("pgdbre_skip_rule_probe_{}", std::process::id());
    let probe = primary.data_dir().join(&name);
    std::fs::write(&probe, b"version one of this file").unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let full = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let recorded = full
        .manifest
        .file(&name)
        .expect("probe file backed up")
        .clone();

    // Same size, new content, and the very mtime the parent recorded: what a write in the same
    // file-system timestamp tick looks like. Only the time rule can catch it.
    std::fs::write(&probe, b"version two of this file").unwrap();
    let file = std::fs::File::options().write(true).open(&probe).unwrap();
    file.set_modified(
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(recorded.mtime_ns as u64),
    )
    .unwrap();
    drop(file);
    let incremental = backup(
        &conn(primary),
        backup_options(&repo, BackupType::Incremental),
    )
    .await
    .unwrap();
    let _ = std::fs::remove_file(&probe);
    let entry = incremental.manifest.file(&name).unwrap();
    assert_eq!(entry.size, recorded.size);
    assert_eq!(entry.mtime_ns, recorded.mtime_ns);
    assert_ne!(
        entry.blocks, recorded.blocks,
        "the rewritten file was skipped"
    );

    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(target.join(&name)).unwrap(),
        b"version two of this file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_restore_rewrites_only_what_differs() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    primary
        .psql_db(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, payload text); \
                       INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g; \
                       VACUUM (FREEZE) t; CHECKPOINT;",
        )
        .unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    // The copy runs (and so diverges) before being brought up to date.
    drop(start_restored(cluster, &target));

    primary
        .psql_db(&db, "UPDATE t SET payload = 'delta' WHERE id <= 10;")
        .unwrap();
    let source = table_md5(primary, &db, "t");
    backup(
        &conn(primary),
        backup_options(&repo, BackupType::Incremental),
    )
    .await
    .unwrap();
    let mut options = restore_options(&repo, &target, None);
    let refused = restore(options.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("--delta"), "{refused}");
    options.delta = true;
    let summary = restore(options).await.unwrap();
    assert!(
        summary.files_unchanged > summary.files_written,
        "{summary:?}"
    );
    let server = start_restored(cluster, &target);
    assert_eq!(table_md5(server.node(), &db, "t"), source);
}

/// Packs are made durable once, before the manifest, not one by one: a machine crash during a
/// backup can leave empty or torn packs. No later backup may use them: they are named by no
/// manifest, so the next backup stores its blocks in packs of its own, and restores exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packs_left_by_a_crashed_backup_are_never_used() {
    let cluster = shared();
    let primary = cluster.primary();
    let db = fresh_database(cluster);
    primary
        .psql_db(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, payload text); \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
        )
        .unwrap();
    let source = table_md5(primary, &db, "t");
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let crashed = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    // As if the machine had crashed before that backup's sync: every pack empty, no manifest.
    let torn = files_under(&dir.path().join("repo/packs"), "");
    assert!(!torn.is_empty());
    for pack in &torn {
        std::fs::write(pack, b"").unwrap();
    }
    std::fs::remove_file(
        dir.path()
            .join("repo/backups")
            .join(&crashed.label)
            .join("manifest"),
    )
    .unwrap();

    let manifest = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    let crashed_packs: std::collections::HashSet<&String> = crashed
        .blocks
        .values()
        .map(|location| &location.pack)
        .collect();
    assert!(
        manifest
            .blocks
            .values()
            .all(|location| !crashed_packs.contains(&location.pack)),
        "the second backup uses a pack of the crashed one"
    );
    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let report = verify(&repository, 2).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    let server = start_restored(cluster, &target);
    assert_eq!(table_md5(server.node(), &db, "t"), source);
}
