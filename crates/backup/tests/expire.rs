//! `expire` against real backups: retention by count deletes exactly what no retained backup
//! references (asserted on the object lists) and the retained backups still restore exactly;
//! an `expire` while a backup runs deletes nothing that backup needs; the marker of a killed
//! backup blocks collection only until it is stale, then is removed.

mod support;

use pgdbre_backup::{
    backup, expire, keys, restore, verify, BackupType, ExpireOptions, Manifest, OpenMode,
    Repository, Retention,
};
use pgdbre_lab::testing::{fresh_database, shared};
use pgdbre_lab::{wait_until, Cluster, LabOptions, PgInstall};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use support::*;

fn keep_full(count: usize) -> ExpireOptions {
    let mut options = ExpireOptions::new(Retention {
        full: Some(count),
        days: None,
    });
    // The tests' packs are seconds old; the grace period is tested by the in-progress rule.
    options.pack_grace = Duration::ZERO;
    options
}

async fn keys_under(repository: &Repository, prefix: &str) -> BTreeSet<String> {
    repository
        .storage()
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key)
        .collect()
}

fn pack_keys<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> BTreeSet<String> {
    manifests
        .into_iter()
        .flat_map(|manifest| manifest.blocks.values())
        .map(|location| keys::pack_key(&location.pack))
        .collect()
}

/// The segment number part of a WAL file name (timeline aside).
fn position(name: &str) -> &str {
    &name[8..24]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_keeps_what_retained_backups_need_and_deletes_the_rest() {
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
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let old = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    primary
        .psql_db(
            &db,
            "UPDATE t SET payload = md5(payload) WHERE id % 2 = 0; CHECKPOINT;",
        )
        .unwrap();
    let full = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    primary
        .psql_db(
            &db,
            "INSERT INTO t SELECT g, 'late' FROM generate_series(20001, 21000) g;",
        )
        .unwrap();
    let incremental = backup(
        &conn(primary),
        backup_options(&repo, BackupType::Incremental),
    )
    .await
    .unwrap()
    .manifest;
    let source = table_md5(primary, &db, "t");
    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let all_before = keys_under(&repository, "").await;

    let mut dry_run = keep_full(1);
    dry_run.dry_run = true;
    let planned = expire(&repository, &dry_run).await.unwrap();
    assert_eq!(planned.expired, [old.label.as_str()]);
    assert!(planned.packs_deleted > 0, "{planned:?}");
    assert_eq!(
        keys_under(&repository, "").await,
        all_before,
        "a dry run deleted something"
    );

    let report = expire(&repository, &keep_full(1)).await.unwrap();
    assert_eq!(report.expired, [old.label.as_str()]);
    assert_eq!(
        report.retained,
        [full.label.clone(), incremental.label.clone()]
    );
    assert_eq!(report.packs_deleted, planned.packs_deleted);
    assert_eq!(
        repository.labels().await.unwrap(),
        [full.label.clone(), incremental.label.clone()]
    );
    assert!(keys_under(&repository, &format!("backups/{}/", old.label))
        .await
        .is_empty());
    // Exactly the packs the retained backups reference remain.
    assert_eq!(
        keys_under(&repository, keys::PACKS_PREFIX).await,
        pack_keys([&full, &incremental])
    );
    // WAL: the old backup's segments are gone, everything from the oldest retained start stays.
    let wal = keys_under(&repository, keys::WAL_PREFIX).await;
    let full_start = full.wal[0].clone();
    for name in &old.wal {
        assert!(
            position(name) >= position(&full_start)
                || !wal.iter().any(|key| key.ends_with(name.as_str())),
            "{name} kept"
        );
    }
    for name in full.wal.iter().chain(&incremental.wal) {
        assert!(
            wal.iter().any(|key| key.ends_with(name.as_str())),
            "{name} deleted"
        );
    }
    assert!(
        wal.iter()
            .all(|key| position(key.rsplit('/').next().unwrap()) >= position(&full_start)),
        "{wal:?}"
    );
    assert_eq!(
        report.wal_deleted.len(),
        all_before
            .iter()
            .filter(|key| key.starts_with("wal/"))
            .count()
            - wal.len()
    );

    let check = verify(&repository, 2).await.unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, Some(&incremental.label)))
        .await
        .unwrap();
    let server = start_restored(cluster, &target);
    assert_eq!(table_md5(server.node(), &db, "t"), source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_during_a_running_backup_deletes_nothing_it_needs() {
    // Its own server: the large table would slow every other backup of a shared one.
    let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests())).unwrap();
    let primary = cluster.primary();
    primary
        .psql(
            "CREATE TABLE small (id int PRIMARY KEY, payload text); \
               INSERT INTO small SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
        )
        .unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let first = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    primary
        .psql("UPDATE small SET payload = md5(payload); CHECKPOINT;")
        .unwrap();
    let second = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    // Enough data that the next backup is still running when expire looks.
    primary
        .psql(
            "CREATE TABLE big (id int PRIMARY KEY, payload text); \
               INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) \
               FROM generate_series(1, 150000) g; CHECKPOINT;",
        )
        .unwrap();
    let small = table_md5(primary, "postgres", "small");
    let big = table_md5(primary, "postgres", "big");

    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let (connection, options) = (conn(primary), backup_options(&repo, BackupType::Full));
    let running = tokio::spawn(async move { backup(&connection, options).await });
    let storage = repository.storage().clone();
    let marker = tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        wait_until(
            Duration::from_secs(60),
            "the backup's in-progress marker",
            || {
                let listed = handle.block_on(storage.list(keys::BACKUPS_PREFIX)).unwrap();
                listed
                    .into_iter()
                    .map(|object| object.key)
                    .find(|key| key.ends_with("/in-progress"))
            },
        )
    })
    .await
    .unwrap()
    .unwrap();

    let report = expire(&repository, &keep_full(1)).await.unwrap();
    assert!(
        repository.storage().size(&marker).await.unwrap().is_some(),
        "the backup ended before expire finished, so this test proved nothing; make `big` bigger"
    );
    assert_eq!(report.expired, [first.label.as_str()]);
    assert_eq!(report.running.len(), 1, "{report:?}");
    assert_eq!(report.packs_deleted, 0, "{report:?}");
    assert!(
        report
            .packs_skipped_because
            .as_deref()
            .unwrap_or("")
            .contains("running"),
        "{report:?}"
    );

    let third = running.await.unwrap().unwrap().manifest;
    // With the backup done, a second expire collects what the first left.
    let after = expire(&repository, &keep_full(1)).await.unwrap();
    assert_eq!(after.expired, [second.label.as_str()]);
    assert!(after.packs_deleted > 0, "{after:?}");
    assert_eq!(
        keys_under(&repository, keys::PACKS_PREFIX).await,
        pack_keys([&third])
    );
    let check = verify(&repository, 2).await.unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);

    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, Some(&third.label)))
        .await
        .unwrap();
    let server = start_restored(&cluster, &target);
    assert_eq!(table_md5(server.node(), "postgres", "small"), small);
    assert_eq!(table_md5(server.node(), "postgres", "big"), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backups_marker_blocks_collection_only_until_stale() {
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
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let old = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    primary
        .psql_db(&db, "UPDATE t SET payload = md5(payload); CHECKPOINT;")
        .unwrap();
    let new = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap()
        .manifest;
    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    assert!(
        keys_under(&repository, keys::PACKS_PREFIX).await != pack_keys([&new]),
        "the old backup left no pack to collect"
    );

    // A marker as a killed backup leaves it, still fresh: it must block, it may be alive.
    let killed = "20200101-000000F";
    let marker = keys::in_progress_key(killed);
    repository
        .storage()
        .put(
            &marker,
            br#"{"pid":1,"start_unix_ns":0,"refreshed_unix_ns":0}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
    let blocked = expire(&repository, &keep_full(1)).await.unwrap();
    assert_eq!(blocked.expired, [old.label.as_str()]);
    assert_eq!(blocked.running, [killed], "{blocked:?}");
    assert!(blocked.stale_markers_removed.is_empty(), "{blocked:?}");
    assert_eq!(blocked.packs_deleted, 0, "{blocked:?}");
    assert!(blocked.packs_kept > 0, "{blocked:?}");
    assert!(
        blocked
            .packs_skipped_because
            .as_deref()
            .is_some_and(|reason| reason.contains(killed)),
        "{blocked:?}"
    );
    assert!(repository.storage().size(&marker).await.unwrap().is_some());

    // Ten minutes and more without a refresh: the backup is dead.
    let path = std::path::Path::new(&repo).join(&marker);
    let stale = SystemTime::now() - Duration::from_secs(11 * 60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(stale)
        .unwrap();
    let all_before = keys_under(&repository, "").await;
    let mut dry_run = keep_full(1);
    dry_run.dry_run = true;
    let planned = expire(&repository, &dry_run).await.unwrap();
    assert_eq!(planned.stale_markers_removed, [killed], "{planned:?}");
    assert!(planned.running.is_empty(), "{planned:?}");
    assert_eq!(planned.packs_deleted, blocked.packs_kept, "{planned:?}");
    assert_eq!(keys_under(&repository, "").await, all_before);

    let collected = expire(&repository, &keep_full(1)).await.unwrap();
    assert_eq!(collected.stale_markers_removed, [killed], "{collected:?}");
    assert!(collected.running.is_empty(), "{collected:?}");
    assert_eq!(collected.packs_skipped_because, None, "{collected:?}");
    assert_eq!(collected.packs_deleted, blocked.packs_kept, "{collected:?}");
    assert_eq!(repository.storage().size(&marker).await.unwrap(), None);
    assert_eq!(
        keys_under(&repository, keys::PACKS_PREFIX).await,
        pack_keys([&new])
    );
    let json = serde_json::to_value(&collected).unwrap();
    assert_eq!(json["stale_markers_removed"], serde_json::json!([killed]));
    let check = verify(&repository, 2).await.unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);

    // Nothing stale left: the report says nothing about markers.
    let quiet = expire(&repository, &keep_full(1)).await.unwrap();
    assert!(quiet.stale_markers_removed.is_empty() && quiet.running.is_empty());
    assert!(serde_json::to_value(&quiet)
        .unwrap()
        .get("stale_markers_removed")
        .is_none());
}
