//! [`Storage`]: whole-object reads and atomic writes of a repository's objects, on a local
//! directory or an S3-compatible bucket, through one `object_store` handle.
//!
//! Local writes go to a staging file next to the target (`key#N`), are fsynced, renamed into
//! place and the directory fsynced (`LocalFileSystem::with_fsync`), so a reader sees the whole
//! object or nothing, also after a crash; `put_if_absent` publishes with a hard link, which fails
//! when the target exists. S3 writes are one PUT (atomic by S3's contract) and create-only puts
//! send `If-None-Match: *`. Transient S3 failures (5xx, throttling, dropped connections) are
//! retried a few times with jittered exponential backoff, capped so that an endpoint refusing
//! connections is reported within a few seconds instead of after minutes.
//!
//! [`Storage::put_if_absent_deferred`] is the same create-only put without the per-object fsyncs,
//! for the many immutable blocks of a backup: a local directory makes them durable all at once
//! in [`Storage::sync`] (one `syncfs`), instead of two fsyncs per object; an S3 PUT is durable
//! when acknowledged, so there it is [`Storage::put_if_absent`].

use crate::error::{classify, StorageError, Target};
use crate::location::Location;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The object [`Storage::check`] writes to prove the repository is writable. [`Storage::list`]
/// never returns it.
pub const CHECK_KEY: &str = ".pgdbre-check";

/// Retries of one S3 request after a transient failure. With the backoff below, the waits add up
/// to at most ~3 s, which bounds how long an endpoint refusing connections takes to report.
const S3_MAX_RETRIES: usize = 5;
/// A stuck TCP connect is given up after this long (then retried as above).
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One request, including sending or receiving the body; generous for large objects on slow
/// links.
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether [`Storage::put_if_absent`] wrote the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the given bytes.
    Created,
    /// An object already existed under the key; it was left unchanged.
    AlreadyExists,
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key, relative to the repository root (`/`-separated).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, as the storage reports it.
    pub modified: SystemTime,
}

/// A repository's object storage. Cheap to clone; safe to use from many tasks at once.
///
/// Keys are `/`-separated relative paths (`blocks/ab/abcdef…`): no leading or trailing `/`, no
/// empty, `.` or `..` segment, no `\`, `#` or control character.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The local directory and a handle on it that does not fsync, for deferred puts; `None`
    /// for S3.
    local: Option<(PathBuf, Arc<dyn ObjectStore>)>,
    /// Key prefix inside the store, without a trailing `/` (the S3 location's prefix; empty for
    /// a local directory, whose store is rooted at the directory itself).
    prefix: String,
    target: Arc<Target>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.target.location)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens the storage at `location`. A local directory is created if missing; an S3 bucket
    /// is not contacted until the first operation (call [`Storage::check`] to fail early).
    pub async fn open(location: &Location) -> Result<Storage, StorageError> {
        let target = Arc::new(Target {
            location: location.to_string(),
            endpoint: location.endpoint_for_messages(),
        });
        type Stores = (
            Arc<dyn ObjectStore>,
            Option<(PathBuf, Arc<dyn ObjectStore>)>,
            String,
        );
        let (store, local, prefix): Stores = match location {
            Location::Local(directory) => {
                if directory.exists() && !directory.is_dir() {
                    return Err(target
                        .other("it exists and is not a directory; point --repo at a directory"));
                }
                let directory = directory.clone();
                let created = {
                    let directory = directory.clone();
                    tokio::task::spawn_blocking(move || std::fs::create_dir_all(&directory))
                        .await
                        .map_err(|error| target.other(format!("create directory: {error}")))?
                };
                created.map_err(|error| {
                    target.io(
                        "create",
                        &format!("directory {}", directory.display()),
                        &error,
                    )
                })?;
                let store = LocalFileSystem::new_with_prefix(&directory)
                    .map_err(|error| classify(&target, "", error))?
                    .with_fsync(true);
                let unsynced = LocalFileSystem::new_with_prefix(&directory)
                    .map_err(|error| classify(&target, "", error))?;
                let unsynced: Arc<dyn ObjectStore> = Arc::new(unsynced);
                (Arc::new(store), Some((directory, unsynced)), String::new())
            }
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                credentials,
            } => {
                install_tls_provider();
                let mut client = ClientOptions::new()
                    .with_connect_timeout(S3_CONNECT_TIMEOUT)
                    .with_timeout(S3_REQUEST_TIMEOUT);
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_conditional_put(S3ConditionalPut::ETagMatch)
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig {
                            init_backoff: Duration::from_millis(100),
                            max_backoff: Duration::from_secs(5),
                            base: 2.0,
                        },
                        max_retries: S3_MAX_RETRIES,
                        retry_timeout: Duration::from_secs(120),
                    });
                if let Some(endpoint) = endpoint {
                    // S3-compatible servers rarely have per-bucket DNS names: address the bucket
                    // in the path, and allow a plain-http endpoint when one is configured.
                    client = client.with_allow_http(endpoint.starts_with("http://"));
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(credentials) = credentials {
                    builder = builder
                        .with_access_key_id(&credentials.access_key_id)
                        .with_secret_access_key(&credentials.secret_access_key);
                    if let Some(token) = &credentials.session_token {
                        builder = builder.with_token(token);
                    }
                }
                let store = builder
                    .with_client_options(client)
                    .build()
                    .map_err(|error| target.other(format!("configure the S3 client: {error}")))?;
                (Arc::new(store), None, prefix.clone())
            }
        };
        tracing::debug!(location = %target.location, "opened repository storage");
        Ok(Storage {
            store,
            local,
            prefix,
            target,
        })
    }

    /// The repository as displayed in messages (never with secrets).
    pub fn location(&self) -> &str {
        &self.target.location
    }

    /// Proves in one round trip that the storage is reachable, the credentials are accepted and
    /// objects can be written, by overwriting the small object [`CHECK_KEY`].
    pub async fn check(&self) -> Result<(), StorageError> {
        self.put(
            CHECK_KEY,
            Bytes::from_static(b"written by pgdbre to check that the repository is writable\n"),
        )
        .await
    }

    /// Writes `bytes` under `key`, replacing any existing object, atomically: readers see the
    /// old object or the whole new one, never a part, and a failed put leaves no partial object.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.store
            .put_opts(&path, PutPayload::from(bytes), PutMode::Overwrite.into())
            .await
            .map_err(|error| classify(&self.target, key, error))?;
        Ok(())
    }

    /// Writes `bytes` under `key` only if no object exists there, atomically (one create-only
    /// operation, so of two concurrent writers exactly one gets [`PutOutcome::Created`]).
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome, StorageError> {
        let path = self.path(key)?;
        let options = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(error) => Err(classify(&self.target, key, error)),
        }
    }

    /// [`Storage::put_if_absent`] whose durability is deferred to the next [`Storage::sync`]:
    /// atomic and create-only as that one, but on a local directory a crash of the machine
    /// before the sync may leave the object empty or partial (a killed process does not: the
    /// kernel holds the whole object). Callers must sync before writing anything that refers to
    /// it, and must check an existing object's content before trusting it.
    pub async fn put_if_absent_deferred(
        &self,
        key: &str,
        bytes: Bytes,
    ) -> Result<PutOutcome, StorageError> {
        let Some((_, unsynced)) = &self.local else {
            // An acknowledged S3 PUT is durable already.
            return self.put_if_absent(key, bytes).await;
        };
        let path = self.path(key)?;
        match unsynced
            .put_opts(&path, PutPayload::from(bytes), PutMode::Create.into())
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(error) => Err(classify(&self.target, key, error)),
        }
    }

    /// Makes every object written so far durable, including those of
    /// [`Storage::put_if_absent_deferred`]. Local: one `syncfs(2)` of the repository's file
    /// system (data and directory entries; Linux reports write-back errors since 5.8), cheaper
    /// than one fsync per object because the journal commits once. S3: nothing to do.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let Some((directory, _)) = &self.local else {
            return Ok(());
        };
        let directory = directory.clone();
        let synced = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::os::fd::AsRawFd;
            let handle = std::fs::File::open(&directory)?;
            // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
            if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
        .await
        .map_err(|error| self.target.other(format!("sync task failed: {error}")))?;
        synced.map_err(|error| self.target.io("sync", "the repository", &error))
    }

    /// Reads the whole object under `key`; [`StorageError::NotFound`] when there is none.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let classify = |error| classify(&self.target, key, error);
        self.store
            .get(&path)
            .await
            .map_err(classify)?
            .bytes()
            .await
            .map_err(classify)
    }

    /// Reads byte `ranges` of the object under `key` (nearby ranges are fetched together);
    /// [`StorageError::NotFound`] when there is no object.
    pub async fn get_ranges(
        &self,
        key: &str,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>, StorageError> {
        let path = self.path(key)?;
        self.store
            .get_ranges(&path, ranges)
            .await
            .map_err(|error| classify(&self.target, key, error))
    }

    /// The size of the object under `key`, or `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(classify(&self.target, key, error)),
        }
    }

    /// Every object whose key starts with `prefix` (a plain string prefix, as S3 lists: `"wal/"`
    /// for a directory, `"wal/00000001"` for the segments of timeline 1; `""` for all), sorted
    /// by key. In-progress local writes and [`CHECK_KEY`] are not listed.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        // object_store lists whole directories, so list the one holding `prefix` and filter.
        let directory = match prefix.rfind('/') {
            Some(slash) => &prefix[..slash],
            None => "",
        };
        let directory_path = if directory.is_empty() {
            (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()))
        } else {
            Some(self.path(directory)?)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(directory_path.as_ref())
            .try_collect()
            .await
            .map_err(|error| classify(&self.target, prefix, error))?;
        let mut objects: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|meta| {
                let key = self.key_of(meta.location.as_ref())?;
                (key.starts_with(prefix) && key != CHECK_KEY).then(|| ObjectInfo {
                    key,
                    size: meta.size,
                    modified: SystemTime::from(meta.last_modified),
                })
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes the object under `key`; deleting an absent object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(classify(&self.target, key, error)),
        }
    }

    /// The store path of `key`, after checking the key's shape.
    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        validate_key(key)
            .map_err(|reason| self.target.other(format!("invalid key {key:?}: {reason}")))?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(&full)
            .map_err(|error| self.target.other(format!("invalid key {key:?}: {error}")))
    }

    /// The repository key of a store path, or `None` for a path outside the prefix.
    fn key_of(&self, path: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return Some(path.to_string());
        }
        path.strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')
            .map(str::to_string)
    }
}

/// Keys map to file names on a local repository, so they must be portable relative paths; `#`
/// is refused because `key#N` names the local store's in-progress writes.
fn validate_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.chars().any(|c| c == '\\' || c == '#' || c.is_control()) {
        return Err("it contains '\\', '#' or a control character");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("it has a leading or trailing '/', or an empty, '.' or '..' segment");
    }
    Ok(())
}

/// reqwest is built without a default TLS crypto provider (the workspace uses ring, not aws-lc),
/// so install ring as the process default unless the program already chose one.
fn install_tls_provider() {
    // An error only means a provider is already installed, which is what we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_plain_relative_paths() {
        for good in [
            "manifest",
            "blocks/ab/abcdef",
            "wal/000000010000000000000001.zst",
        ] {
            assert_eq!(validate_key(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/abs", "dir/", "a//b", "./a", "a/../b", "a\\b", "a#1", "a\nb",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }
}
