//! `wal push` and `wal fetch` through the library, on real WAL segments of a real server:
//! idempotent re-push, refusal of a different segment or another cluster's segment under an
//! archived name, push-ahead of `.ready` files (by the call, or by the background worker, with
//! the call storing its file itself whenever the worker does not), prefetch into the spool, a
//! quiet miss and a loud, named corruption. The archive_command/restore_command path through the binary is tested in
//! `crates/cli/tests/wal_cli.rs`.

mod support;

use pgdbre_backup::archive::{
    fetch, push, run_worker, ArchiveError, FetchOptions, FetchOutcome, PushOptions, PushOutcome,
    WorkerSummary,
};
use pgdbre_backup::BackupError;
use pgdbre_lab::{Cluster, LabOptions, Node, PgInstall};
use std::path::{Path, PathBuf};
use support::*;

/// A private server (the tests switch WAL segments, which would disturb a shared one).
fn cluster() -> Cluster {
    Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("wal_keep_size", "1GB")).unwrap()
}

/// Fills and switches `count` WAL segments; returns their names, oldest first.
fn switched_segments(node: &Node, count: usize) -> Vec<String> {
    node.psql("CREATE TABLE IF NOT EXISTS walgen (x int)")
        .unwrap();
    (0..count)
        .map(|_| {
            node.psql("INSERT INTO walgen VALUES (1); SELECT pg_walfile_name(pg_switch_wal());")
                .unwrap()
        })
        .collect()
}

/// A `pg_wal` directory under `dir` holding copies of `names` from `node`, each marked `.ready`
/// as PostgreSQL marks finished segments.
fn copy_pg_wal(dir: &Path, node: &Node, names: &[String]) -> PathBuf {
    let pg_wal = dir.join("pg_wal");
    std::fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    for name in names {
        std::fs::copy(node.data_dir().join("pg_wal").join(name), pg_wal.join(name)).unwrap();
        std::fs::write(
            pg_wal.join("archive_status").join(format!("{name}.ready")),
            b"",
        )
        .unwrap();
    }
    pg_wal
}

/// Asserts `error` is the refusal of another cluster's WAL.
fn assert_other_cluster(error: &ArchiveError) {
    assert!(
        matches!(
            error,
            ArchiveError::Repository(BackupError::OtherCluster { .. })
        ),
        "{error:?}"
    );
}

fn push_options(repo: &str, jobs: usize) -> PushOptions {
    let mut options = PushOptions::new(repo);
    options.jobs = jobs;
    options
}

fn fetch_options(repo: &str, prefetch: usize) -> FetchOptions {
    let mut options = FetchOptions::new(repo);
    options.prefetch = prefetch;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_segment_twice_is_accepted_and_a_different_one_is_refused() {
    let cluster = cluster();
    let names = switched_segments(cluster.primary(), 1);
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let pg_wal = copy_pg_wal(dir.path(), cluster.primary(), &names);
    let segment = pg_wal.join(&names[0]);

    let first = push(&segment, &push_options(&repo, 1)).await.unwrap();
    assert!(
        matches!(first.outcome, PushOutcome::Stored(size) if size < 16 << 20),
        "{first:?}"
    );
    let again = push(&segment, &push_options(&repo, 1)).await.unwrap();
    assert_eq!(again.outcome, PushOutcome::AlreadyArchived);

    // The same name with other contents: what a second cluster or timeline would push.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[20_000] ^= 0xFF;
    std::fs::write(&segment, &bytes).unwrap();
    let error = push(&segment, &push_options(&repo, 1)).await.unwrap_err();
    assert!(matches!(error, ArchiveError::Conflict { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&names[0]) && message.contains(&repo),
        "{message}"
    );

    // A segment whose header names another cluster is refused before anything is stored.
    let mut foreign =
        std::fs::read(cluster.primary().data_dir().join("pg_wal").join(&names[0])).unwrap();
    foreign[24] ^= 0x01;
    let other_name = "0000000100000000000000F0";
    foreign[8..16].copy_from_slice(&(0xF0u64 << 24).to_le_bytes());
    std::fs::write(pg_wal.join(other_name), &foreign).unwrap();
    let error = push(&pg_wal.join(other_name), &push_options(&repo, 1))
        .await
        .unwrap_err();
    assert_other_cluster(&error);
    assert!(files_under(Path::new(&repo), other_name).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_stores_ready_files_ahead_and_fetch_prefetches_into_the_spool() {
    let cluster = cluster();
    let names = switched_segments(cluster.primary(), 6);
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let pg_wal = copy_pg_wal(dir.path(), cluster.primary(), &names);

    let first = push(&pg_wal.join(&names[0]), &push_options(&repo, 3))
        .await
        .unwrap();
    assert!(matches!(first.outcome, PushOutcome::Stored(_)), "{first:?}");
    assert_eq!(first.stored_ahead, 5);
    let acks = pg_wal.join("pgdbre-spool/push");
    for name in &names[1..] {
        assert!(
            acks.join(format!("{name}.ok")).is_file(),
            "{name} not acknowledged"
        );
    }
    // The later call returns from the spool and consumes the acknowledgement.
    let second = push(&pg_wal.join(&names[1]), &push_options(&repo, 3))
        .await
        .unwrap();
    assert_eq!(second.outcome, PushOutcome::StoredAhead);
    assert!(!acks.join(format!("{}.ok", names[1])).exists());
    // An acknowledgement never vouches for other bytes.
    let mut changed = std::fs::read(pg_wal.join(&names[2])).unwrap();
    changed[30_000] ^= 0xFF;
    std::fs::write(pg_wal.join(&names[2]), &changed).unwrap();
    let error = push(&pg_wal.join(&names[2]), &push_options(&repo, 1))
        .await
        .unwrap_err();
    assert!(matches!(error, ArchiveError::Conflict { .. }), "{error:?}");

    let restore_wal = dir.path().join("restore/pg_wal");
    std::fs::create_dir_all(&restore_wal).unwrap();
    let destination = restore_wal.join("RECOVERYXLOG");
    let spool = restore_wal.join("pgdbre-spool/fetch");
    let original =
        |name: &str| std::fs::read(cluster.primary().data_dir().join("pg_wal").join(name)).unwrap();

    let fetched = fetch(&names[0], &destination, &fetch_options(&repo, 3))
        .await
        .unwrap();
    assert_eq!(
        fetched,
        FetchOutcome::Restored {
            from_spool: false,
            prefetched: 3
        }
    );
    assert_eq!(std::fs::read(&destination).unwrap(), original(&names[0]));
    for name in &names[1..4] {
        assert_eq!(
            std::fs::read(spool.join(name)).unwrap(),
            original(name),
            "{name} not prefetched"
        );
    }
    assert!(!spool.join(&names[4]).exists());

    let fetched = fetch(&names[1], &destination, &fetch_options(&repo, 3))
        .await
        .unwrap();
    assert_eq!(
        fetched,
        FetchOutcome::Restored {
            from_spool: true,
            prefetched: 0
        }
    );
    assert_eq!(std::fs::read(&destination).unwrap(), original(&names[1]));
    // One segment left ahead (< k/2): this call tops the spool up with the rest of the archive.
    let fetched = fetch(&names[2], &destination, &fetch_options(&repo, 3))
        .await
        .unwrap();
    assert_eq!(
        fetched,
        FetchOutcome::Restored {
            from_spool: true,
            prefetched: 2
        }
    );
    assert_eq!(std::fs::read(&destination).unwrap(), original(&names[2]));
    for name in &names[3..6] {
        assert!(spool.join(name).is_file(), "{name} not in the spool");
    }
    // Recovery ends (here, short of the archive's end): PostgreSQL probes for the next
    // timeline's history file, finds none, and nothing fetched ahead stays in pg_wal.
    let probe = restore_wal.join("RECOVERYHISTORY");
    let next_timeline = fetch("00000002.history", &probe, &fetch_options(&repo, 3))
        .await
        .unwrap();
    assert_eq!(next_timeline, FetchOutcome::Missing);
    for name in &names[3..6] {
        assert!(!spool.join(name).exists(), "{name} left in the spool");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_stores_the_backlog_and_calls_store_what_it_does_not() {
    let cluster = cluster();
    let names = switched_segments(cluster.primary(), 4);
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let pg_wal = copy_pg_wal(dir.path(), cluster.primary(), &names);
    // A fifth `.ready` segment from another cluster (its header's system identifier differs).
    let mut foreign = std::fs::read(pg_wal.join(&names[3])).unwrap();
    foreign[24] ^= 0x01;
    let foreign_name = names[3].clone();
    let acks = pg_wal.join("pgdbre-spool/push");

    // Everything but the foreign segment (the last in archive order) is stored and acknowledged.
    std::fs::write(pg_wal.join(&foreign_name), &foreign).unwrap();
    let summary = run_worker(&pg_wal.join(&names[0]), &push_options(&repo, 2))
        .await
        .unwrap();
    assert_eq!(
        summary,
        WorkerSummary {
            stored: 3,
            failed: 1
        }
    );
    for name in &names[..3] {
        assert!(acks.join(format!("{name}.ok")).is_file(), "{name}");
    }
    let reason = std::fs::read_to_string(acks.join(format!("{foreign_name}.error"))).unwrap();
    assert!(reason.contains("cluster"), "{reason}");

    // A call whose file the worker stored returns from the spool without starting another one
    // (the worker command cannot run, so a start would be a failure the call recovers from).
    let mut options = push_options(&repo, 2);
    options.worker = Some(vec!["/nonexistent/pgdbre".into()]);
    let acknowledged = push(&pg_wal.join(&names[0]), &options).await.unwrap();
    assert_eq!(acknowledged.outcome, PushOutcome::StoredAhead);
    // A call for the file the worker failed on stores it itself, and so reports the real error.
    let error = push(&pg_wal.join(&foreign_name), &options)
        .await
        .unwrap_err();
    assert_other_cluster(&error);
    assert!(!acks.join(format!("{foreign_name}.error")).exists());

    // A worker that cannot start, or exits without storing the file: the call stores it.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let fresh_repo = repo_in(&fresh);
    let fresh_wal = copy_pg_wal(&fresh, cluster.primary(), &names[..3]);
    for worker in [vec!["/nonexistent/pgdbre".into()], vec!["true".into()]] {
        let mut options = push_options(&fresh_repo, 2);
        options.worker = Some(worker);
        let pushed = push(&fresh_wal.join(&names[1]), &options).await.unwrap();
        assert!(
            matches!(
                pushed.outcome,
                PushOutcome::Stored(_) | PushOutcome::AlreadyArchived
            ),
            "{pushed:?}"
        );
    }
    assert!(
        !files_under(Path::new(&fresh_repo), &names[1]).is_empty(),
        "{} not stored",
        names[1]
    );
    // Storing its own file after the worker let it down, a call does not push ahead: the
    // worker (a later one) has the others.
    assert!(files_under(Path::new(&fresh_repo), &names[2]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_segment_is_quiet_and_a_corrupt_one_is_named() {
    let cluster = cluster();
    let names = switched_segments(cluster.primary(), 1);
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let pg_wal = copy_pg_wal(dir.path(), cluster.primary(), &names);
    push(&pg_wal.join(&names[0]), &push_options(&repo, 1))
        .await
        .unwrap();

    let restore_wal = dir.path().join("restore/pg_wal");
    std::fs::create_dir_all(&restore_wal).unwrap();
    let destination = restore_wal.join("RECOVERYXLOG");
    let missing = fetch(
        "0000000100000000000000FE",
        &destination,
        &fetch_options(&repo, 2),
    )
    .await
    .unwrap();
    assert_eq!(missing, FetchOutcome::Missing);
    assert_eq!(
        fetch("00000005.history", &destination, &fetch_options(&repo, 2))
            .await
            .unwrap(),
        FetchOutcome::Missing
    );
    assert!(!destination.exists());

    let stored = files_under(Path::new(&repo), &names[0]);
    assert_eq!(stored.len(), 1, "{stored:?}");
    flip_byte(&stored[0]);
    let error = fetch(&names[0], &destination, &fetch_options(&repo, 2))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    let object = format!("wal/00000001/{}", names[0]);
    assert!(error.to_string().contains(&object), "{error}");
    assert!(!destination.exists(), "a corrupt segment must not reach %p");
}
