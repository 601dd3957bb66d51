//! The same behaviour suite against both backends: a local temp directory and a real
//! S3-compatible server (`s3s-fs`, started per test by the lab harness).

mod common;

use bytes::Bytes;
use pgdbre_lab::S3Server;
use pgdbre_storage::{Location, PutOutcome, Storage, StorageError, CHECK_KEY};
use std::collections::HashSet;

/// Storage on `prefix` of the server's bucket, with the server's own credentials.
async fn open_s3(server: &S3Server, prefix: &str) -> Storage {
    Storage::open(&common::s3_location(server, prefix, &[]))
        .await
        .expect("open S3 storage")
}

/// A backend under test; keeps its directory or server alive for the test's duration.
enum Backend {
    Local(tempfile::TempDir),
    S3(S3Server),
}

impl Backend {
    fn local() -> Backend {
        Backend::Local(tempfile::tempdir().expect("create a temp dir"))
    }

    fn s3() -> Backend {
        Backend::S3(S3Server::start().expect("start s3s-fs"))
    }

    /// Storage on the backend; S3 gets a prefix so the prefix handling is always exercised.
    async fn open(&self) -> Storage {
        match self {
            Backend::Local(dir) => Storage::open(&Location::Local(dir.path().join("repo")))
                .await
                .expect("open local storage"),
            Backend::S3(server) => open_s3(server, "cluster/main").await,
        }
    }
}

/// Runs a behaviour (an `async fn(Backend)`) once per backend, as `NAME::local` and `NAME::s3`.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn local() {
                super::$behaviour(super::Backend::local()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn s3() {
                super::$behaviour(super::Backend::s3()).await;
            }
        }
    )*};
}

on_both_backends!(
    put_get_size_list_delete_round_trip,
    put_replaces_an_existing_object,
    list_filters_by_string_prefix_and_sorts,
    put_if_absent_creates_once,
    deferred_put_is_create_only_and_visible_before_sync,
    concurrent_puts_from_sixteen_tasks,
    concurrent_put_if_absent_has_one_winner,
    readers_never_see_a_partial_object,
    large_and_empty_objects_round_trip,
    check_writes_a_hidden_object,
);

async fn put_get_size_list_delete_round_trip(backend: Backend) {
    let storage = backend.open().await;
    storage
        .put("blocks/ab/abcdef", Bytes::from_static(b"block contents"))
        .await
        .unwrap();
    assert_eq!(
        storage.get("blocks/ab/abcdef").await.unwrap(),
        Bytes::from_static(b"block contents")
    );
    assert_eq!(storage.size("blocks/ab/abcdef").await.unwrap(), Some(14));
    assert_eq!(storage.size("blocks/ab/missing").await.unwrap(), None);

    let listed = storage.list("").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].key, "blocks/ab/abcdef");
    assert_eq!(listed[0].size, 14);
    let age = std::time::SystemTime::now()
        .duration_since(listed[0].modified)
        .unwrap_or_default();
    assert!(age.as_secs() < 120, "modified time is off by {age:?}");

    storage.delete("blocks/ab/abcdef").await.unwrap();
    match storage.get("blocks/ab/abcdef").await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "blocks/ab/abcdef"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(storage.size("blocks/ab/abcdef").await.unwrap(), None);
    assert!(storage.list("").await.unwrap().is_empty());
    // Deleting what is not there is not an error (expire may race with another expire).
    storage.delete("blocks/ab/abcdef").await.unwrap();
    storage.delete("never/written").await.unwrap();
}

async fn put_replaces_an_existing_object(backend: Backend) {
    let storage = backend.open().await;
    storage
        .put("manifest", Bytes::from_static(b"first version"))
        .await
        .unwrap();
    storage
        .put("manifest", Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        storage.get("manifest").await.unwrap(),
        Bytes::from_static(b"second")
    );
    assert_eq!(storage.size("manifest").await.unwrap(), Some(6));
}

async fn list_filters_by_string_prefix_and_sorts(backend: Backend) {
    let storage = backend.open().await;
    let keys = [
        "wal/000000020000000000000001",
        "wal/000000010000000000000002",
        "wal/000000010000000000000001",
        "wal2/other",
        "backups/20260101T000000F/manifest",
        "walnut",
    ];
    for key in keys {
        storage
            .put(key, Bytes::from(key.to_string()))
            .await
            .unwrap();
    }
    let keys_of = |objects: Vec<pgdbre_storage::ObjectInfo>| -> Vec<String> {
        objects.into_iter().map(|object| object.key).collect()
    };
    assert_eq!(
        keys_of(storage.list("").await.unwrap()),
        [
            "backups/20260101T000000F/manifest",
            "wal/000000010000000000000001",
            "wal/000000010000000000000002",
            "wal/000000020000000000000001",
            "wal2/other",
            "walnut",
        ]
    );
    assert_eq!(
        keys_of(storage.list("wal/").await.unwrap()),
        [
            "wal/000000010000000000000001",
            "wal/000000010000000000000002",
            "wal/000000020000000000000001",
        ]
    );
    assert_eq!(
        keys_of(storage.list("wal/00000001").await.unwrap()),
        [
            "wal/000000010000000000000001",
            "wal/000000010000000000000002"
        ]
    );
    assert_eq!(
        keys_of(storage.list("wal").await.unwrap()),
        [
            "wal/000000010000000000000001",
            "wal/000000010000000000000002",
            "wal/000000020000000000000001",
            "wal2/other",
            "walnut",
        ]
    );
    assert!(storage.list("nothing/here/").await.unwrap().is_empty());
    assert!(storage.list("wal/9").await.unwrap().is_empty());
}

async fn put_if_absent_creates_once(backend: Backend) {
    let storage = backend.open().await;
    let key = "wal/000000010000000000000001";
    assert_eq!(
        storage
            .put_if_absent(key, Bytes::from_static(b"segment one"))
            .await
            .unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        storage
            .put_if_absent(key, Bytes::from_static(b"a different segment"))
            .await
            .unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(
        storage.get(key).await.unwrap(),
        Bytes::from_static(b"segment one")
    );
}

async fn deferred_put_is_create_only_and_visible_before_sync(backend: Backend) {
    let storage = backend.open().await;
    let key = "blocks/ab/abcdef";
    assert_eq!(
        storage
            .put_if_absent_deferred(key, Bytes::from_static(b"block"))
            .await
            .unwrap(),
        PutOutcome::Created
    );
    // Readable at once (a backup verifies a block another one left), durable after the sync.
    assert_eq!(
        storage.get(key).await.unwrap(),
        Bytes::from_static(b"block")
    );
    assert_eq!(
        storage
            .put_if_absent_deferred(key, Bytes::from_static(b"other"))
            .await
            .unwrap(),
        PutOutcome::AlreadyExists
    );
    storage.sync().await.unwrap();
    assert_eq!(
        storage.get(key).await.unwrap(),
        Bytes::from_static(b"block")
    );
    let keys: Vec<String> = storage
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key)
        .collect();
    assert_eq!(keys, vec![key.to_string()], "no staging file is left");
}

async fn concurrent_puts_from_sixteen_tasks(backend: Backend) {
    let storage = backend.open().await;
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let storage = storage.clone();
            tokio::spawn(async move {
                for object in 0..8 {
                    let key = format!("blocks/{task:02}/{object:02}");
                    let body = Bytes::from(format!("{task}:{object}:").repeat(1000));
                    storage.put(&key, body).await.unwrap();
                }
                // Everyone also overwrites one shared key with a whole, distinct body.
                let body = Bytes::from(vec![task as u8; 64 * 1024]);
                storage.put("shared", body).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let listed = storage.list("blocks/").await.unwrap();
    assert_eq!(listed.len(), 16 * 8);
    for task in 0..16 {
        for object in 0..8 {
            let key = format!("blocks/{task:02}/{object:02}");
            let expected = format!("{task}:{object}:").repeat(1000);
            assert_eq!(
                storage.get(&key).await.unwrap(),
                Bytes::from(expected),
                "{key}"
            );
        }
    }
    // One writer's whole body won, never a mix.
    let shared = storage.get("shared").await.unwrap();
    assert_eq!(shared.len(), 64 * 1024);
    assert!(shared.iter().all(|byte| *byte == shared[0]), "mixed bodies");
}

async fn concurrent_put_if_absent_has_one_winner(backend: Backend) {
    let create_only_is_atomic = matches!(backend, Backend::Local(_));
    let storage = backend.open().await;
    let tasks: Vec<_> = (0..16u8)
        .map(|task| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let outcome = storage
                    .put_if_absent("backups/latest.lock", Bytes::from(vec![task; 4096]))
                    .await
                    .unwrap();
                (task, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (task, outcome) = task.await.unwrap();
        if outcome == PutOutcome::Created {
            winners.push(task);
        }
    }
    if create_only_is_atomic {
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
    } else {
        // s3s-fs checks If-None-Match and then writes, without a lock, so racing creators can
        // all win (AWS S3 and MinIO decide atomically). The object is still one whole body.
        assert!(!winners.is_empty());
    }
    let stored = storage.get("backups/latest.lock").await.unwrap();
    assert!(
        winners
            .iter()
            .any(|task| stored.iter().all(|byte| byte == task) && stored.len() == 4096),
        "the stored object is not one winner's whole body"
    );
}

async fn readers_never_see_a_partial_object(backend: Backend) {
    let storage = backend.open().await;
    let body = |byte: u8| Bytes::from(vec![byte; 1024 * 1024]);
    storage.put("manifest", body(0)).await.unwrap();
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for round in 1..=20u8 {
                storage.put("manifest", body(round)).await.unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let read = storage.get("manifest").await.unwrap();
                    assert_eq!(read.len(), 1024 * 1024, "a partial object was visible");
                    assert!(
                        read.iter().all(|byte| *byte == read[0]),
                        "a mix was visible"
                    );
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

async fn large_and_empty_objects_round_trip(backend: Backend) {
    let storage = backend.open().await;
    let large: Bytes = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    storage.put("large", large.clone()).await.unwrap();
    assert_eq!(
        storage.size("large").await.unwrap(),
        Some(large.len() as u64)
    );
    assert!(storage.get("large").await.unwrap() == large);

    storage.put("empty", Bytes::new()).await.unwrap();
    assert_eq!(storage.size("empty").await.unwrap(), Some(0));
    assert!(storage.get("empty").await.unwrap().is_empty());
}

async fn check_writes_a_hidden_object(backend: Backend) {
    let storage = backend.open().await;
    storage.check().await.unwrap();
    storage.check().await.unwrap();
    assert!(
        storage.list("").await.unwrap().is_empty(),
        "{CHECK_KEY} is listed"
    );
    assert!(storage.size(CHECK_KEY).await.unwrap().is_some());
}

#[tokio::test]
async fn local_put_leaves_no_staging_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Location::Local(dir.path().to_path_buf()))
        .await
        .unwrap();
    for round in 0..3 {
        storage
            .put("manifests/one", Bytes::from(format!("round {round}")))
            .await
            .unwrap();
    }
    let names: HashSet<String> = std::fs::read_dir(dir.path().join("manifests"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, HashSet::from(["one".to_string()]));
}

#[tokio::test]
async fn s3_objects_are_files_under_the_server_root() {
    let server = S3Server::start().unwrap();
    let storage = open_s3(&server, "cluster/main").await;
    storage
        .put("blocks/ab/abcdef", Bytes::from_static(b"original"))
        .await
        .unwrap();
    let file = server
        .root_dir()
        .join(server.bucket())
        .join("cluster/main/blocks/ab/abcdef");
    assert_eq!(std::fs::read(&file).unwrap(), b"original");

    // A test corrupting an object on disk sees the corruption through the storage layer (the
    // repository's checksums, not this layer, must catch it).
    std::fs::write(&file, b"corruptd").unwrap();
    assert_eq!(
        storage.get("blocks/ab/abcdef").await.unwrap(),
        Bytes::from_static(b"corruptd")
    );
}

#[tokio::test]
async fn s3_prefixes_do_not_see_each_other() {
    let server = S3Server::start().unwrap();
    let first = open_s3(&server, "first").await;
    let second = open_s3(&server, "second").await;
    let whole_bucket = open_s3(&server, "").await;
    first
        .put("manifest", Bytes::from_static(b"1"))
        .await
        .unwrap();
    second
        .put("manifest", Bytes::from_static(b"2"))
        .await
        .unwrap();
    assert_eq!(
        first.get("manifest").await.unwrap(),
        Bytes::from_static(b"1")
    );
    assert_eq!(
        second.get("manifest").await.unwrap(),
        Bytes::from_static(b"2")
    );
    assert_eq!(first.list("").await.unwrap().len(), 1);
    let everything: Vec<String> = whole_bucket
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key)
        .collect();
    assert_eq!(everything, ["first/manifest", "second/manifest"]);
}
