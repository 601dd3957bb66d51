//! The repository fails loudly and precisely: damaged blocks and manifests are named by
//! `verify` and refused by `restore`; another cluster's backup and a wrong key are one clear
//! sentence each.

mod support;

use pgdbre_backup::{
    backup, keys, restore, verify, BackupError, BackupType, OpenMode, RepoKey, Repository,
};
use pgdbre_lab::testing::shared;
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_block_is_named_by_verify_and_refused_by_restore() {
    let cluster = shared();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let summary = backup(
        &conn(cluster.primary()),
        backup_options(&repo, BackupType::Full),
    )
    .await
    .unwrap();
    let label = summary.manifest.label.clone();
    // The block of pg_control: every restore needs it.
    let hash = summary.manifest.file("global/pg_control").unwrap().blocks[0].clone();
    let location = summary.manifest.location(&hash).unwrap().clone();
    let pack = dir.path().join("repo").join(keys::pack_key(&location.pack));
    flip_byte_at(&pack, location.offset + location.length / 2);

    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let report = verify(&repository, 2).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(problem.object, keys::pack_key(&location.pack));
    assert_eq!(problem.backups, vec![label]);
    assert!(
        problem.what.contains("checksum mismatch") && problem.what.contains(&hash),
        "{}",
        problem.what
    );

    let error = restore(restore_options(&repo, &dir.path().join("restored"), None))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, BackupError::Corrupt { .. }), "{message}");
    assert!(message.contains(&hash), "{message}");
    assert!(message.contains("global/pg_control"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_manifest_is_named_by_verify_and_refused_by_restore() {
    let cluster = shared();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let summary = backup(
        &conn(cluster.primary()),
        backup_options(&repo, BackupType::Full),
    )
    .await
    .unwrap();
    let key = format!("backups/{}/manifest", summary.manifest.label);
    flip_byte(&dir.path().join("repo").join(&key));

    let repository = Repository::open(&repo, None, OpenMode::Existing)
        .await
        .unwrap();
    let report = verify(&repository, 2).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].object, key);
    let error = restore(restore_options(&repo, &dir.path().join("restored"), None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&key), "{error}");
    assert!(error.to_string().contains("corrupt"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_clusters_backup_is_refused() {
    let cluster = shared();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    backup(
        &conn(cluster.primary()),
        backup_options(&repo, BackupType::Full),
    )
    .await
    .unwrap();
    let other =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-other")).unwrap();
    let error = backup(
        &conn(other.primary()),
        backup_options(&repo, BackupType::Full),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, BackupError::OtherCluster { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("belongs to another PostgreSQL cluster"),
        "{error}"
    );
    assert_eq!(
        Repository::open(&repo, None, OpenMode::Existing)
            .await
            .unwrap()
            .labels()
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_repository_needs_the_right_key() {
    let cluster = shared();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let key = RepoKey::from_material(b"correct horse battery staple 0123456789").unwrap();
    let mut options = backup_options(&repo, BackupType::Full);
    options.key = Some(key.clone());
    backup(&conn(cluster.primary()), options.clone())
        .await
        .unwrap();

    let wrong = RepoKey::from_material(b"incorrect horse battery staple 0123456789").unwrap();
    options.key = Some(wrong.clone());
    let error = backup(&conn(cluster.primary()), options).await.unwrap_err();
    assert!(matches!(error, BackupError::WrongKey), "{error}");
    assert!(!error.to_string().contains("horse"), "{error}");

    let mut restoring = restore_options(&repo, &dir.path().join("restored"), None);
    let error = restore(restoring.clone()).await.unwrap_err();
    assert!(matches!(error, BackupError::KeyRequired), "{error}");
    restoring.key = Some(wrong);
    assert!(matches!(
        restore(restoring.clone()).await.unwrap_err(),
        BackupError::WrongKey
    ));

    // With the right key everything reads back, and nothing is stored in the clear.
    let repository = Repository::open(&repo, Some(key), OpenMode::Existing)
        .await
        .unwrap();
    assert!(verify(&repository, 2).await.unwrap().is_ok());
    let manifest = files_under(&dir.path().join("repo"), "/manifest");
    let raw = std::fs::read(&manifest[0]).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("pg_control"));
}
