//! An open repository: its storage, its config, and the codec every object goes through. All
//! reads verify: objects by their stored checksum, blocks also by their content address.
//! This is the API that `wal push/fetch`, `expire` and `drill` build on.

use crate::codec::Codec;
use crate::config::RepoConfig;
use crate::error::BackupError;
use crate::key::RepoKey;
use crate::keys::{self, CONFIG_KEY, FORMAT_VERSION};
use crate::manifest::{BlockLocation, Manifest};
use crate::wal::TimelineId;
use bytes::Bytes;
use pgdbre_storage::{Location, PutOutcome, Storage, StorageError};
use std::time::{SystemTime, UNIX_EPOCH};

/// How [`Repository::open`] treats a location without a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// It must exist (restore, info, verify, wal fetch).
    Existing,
    /// Create it for this cluster if missing; if present it must belong to this cluster
    /// (backup, wal push).
    ForCluster {
        /// The connected server's `system_identifier`.
        system_identifier: u64,
        /// zstd level recorded when creating.
        compress_level: i32,
    },
}

/// What [`Repository::put_wal`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalPut {
    /// Stored now; the stored size in bytes.
    Created(u64),
    /// The same file was already archived (idempotent re-push).
    AlreadyIdentical,
    /// A *different* file is archived under that name; nothing was written.
    Conflict,
}

/// A WAL file encoded for the repository, not stored yet ([`Repository::encode_wal`]).
#[derive(Debug)]
pub(crate) struct EncodedWal {
    key: String,
    /// [`wal_fingerprint`] of the file's bytes, to compare with a file already archived under
    /// its name.
    fingerprint: u128,
    stored: Vec<u8>,
}

impl EncodedWal {
    /// [`wal_fingerprint`] of the file's bytes.
    pub(crate) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }
}

/// What tells two versions of a WAL file apart: XXH3-128 of its bytes. Not a defence against
/// forgery (the stored object's BLAKE3 checksum is what detects damage): it answers "is this
/// the file already archived under that name", at memory speed, for every file pushed.
pub(crate) fn wal_fingerprint(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// An open backup repository.
#[derive(Debug, Clone)]
pub struct Repository {
    storage: Storage,
    codec: Codec,
    config: RepoConfig,
    location: String,
}

impl Repository {
    /// Opens the repository at `location` (a path or `s3://bucket/prefix`) with `key`.
    pub async fn open(
        location: &str,
        key: Option<RepoKey>,
        mode: OpenMode,
    ) -> Result<Repository, BackupError> {
        let parsed = Location::parse(location)?;
        let storage = Storage::open(&parsed).await?;
        let config = match storage.get(CONFIG_KEY).await {
            Ok(stored) => RepoConfig::decode(&stored)?,
            Err(StorageError::NotFound { .. }) => match mode {
                OpenMode::Existing => {
                    return Err(BackupError::NoRepository {
                        location: location.to_string(),
                    })
                }
                OpenMode::ForCluster {
                    system_identifier,
                    compress_level,
                } => create(&storage, key.as_ref(), system_identifier, compress_level).await?,
            },
            Err(error) => return Err(error.into()),
        };
        if let OpenMode::ForCluster {
            system_identifier, ..
        } = mode
        {
            if config.system_identifier != system_identifier {
                return Err(BackupError::OtherCluster {
                    repository: config.system_identifier,
                    server: system_identifier,
                });
            }
        }
        match (&key, config.encrypted) {
            (None, true) => return Err(BackupError::KeyRequired),
            (Some(_), false) => return Err(BackupError::KeyForPlainRepository),
            (Some(key), true)
                if config.key_check.as_deref() != Some(key.check_value().as_str()) =>
            {
                return Err(BackupError::WrongKey)
            }
            _ => {}
        }
        Ok(Repository {
            codec: Codec::new(config.compress_level, key),
            storage,
            config,
            location: location.to_string(),
        })
    }

    /// Uses `level` instead of the repository's default for objects written from now on.
    pub fn with_compress_level(mut self, level: i32) -> Repository {
        self.codec = Codec::new(level, self.codec_key());
        self
    }

    fn codec_key(&self) -> Option<RepoKey> {
        self.codec.key().cloned()
    }

    /// The underlying storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
    /// The codec objects are written and read with.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }
    /// The repository config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    /// The location as the user gave it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Encodes and stores `plaintext` under `key` only if nothing is there yet. Returns the
    /// stored size when written, `None` when the key existed.
    pub async fn put_new(&self, key: &str, plaintext: Vec<u8>) -> Result<Option<u64>, BackupError> {
        let codec = self.codec.clone();
        let object_key = key.to_string();
        let stored = tokio::task::spawn_blocking(move || codec.encode(&object_key, &plaintext))
            .await
            .map_err(|error| {
                BackupError::corrupt(key, format!("encoder task failed: {error}"))
            })??;
        let size = stored.len() as u64;
        match self.storage.put_if_absent(key, Bytes::from(stored)).await? {
            PutOutcome::Created => Ok(Some(size)),
            PutOutcome::AlreadyExists => Ok(None),
        }
    }

    /// Reads, verifies and decodes the object `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BackupError> {
        let stored = match self.storage.get(key).await {
            Ok(stored) => stored,
            Err(StorageError::NotFound { .. }) => {
                return Err(BackupError::MissingObject {
                    key: key.to_string(),
                })
            }
            Err(error) => return Err(error.into()),
        };
        let codec = self.codec.clone();
        let object_key = key.to_string();
        tokio::task::spawn_blocking(move || codec.decode(&object_key, &stored))
            .await
            .map_err(|error| BackupError::corrupt(key, format!("decoder task failed: {error}")))?
    }

    /// The stored bytes of blocks at `locations` of pack `pack`, not yet verified: callers
    /// decode them with [`decode_block`] on threads of their own. Nearby blocks are read
    /// together.
    pub async fn get_pack_ranges(
        &self,
        pack: &str,
        locations: &[&BlockLocation],
    ) -> Result<Vec<Bytes>, BackupError> {
        let key = keys::pack_key(pack);
        let ranges: Vec<std::ops::Range<u64>> = locations
            .iter()
            .map(|location| location.offset..location.offset + location.length)
            .collect();
        match self.storage.get_ranges(&key, &ranges).await {
            Ok(parts) => Ok(parts),
            Err(StorageError::NotFound { .. }) => Err(BackupError::MissingObject { key }),
            // A range past the end: the pack was truncated.
            Err(StorageError::Other { detail, .. })
                if detail.to_ascii_lowercase().contains("range") =>
            {
                Err(BackupError::corrupt(&key, format!("truncated ({detail})")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes `manifest` as the last step of a backup: atomically, and never over another.
    pub async fn put_manifest(&self, manifest: &Manifest) -> Result<(), BackupError> {
        // Packs were stored with deferred durability; the manifest must never name a block a
        // crash could still lose.
        self.storage.sync().await?;
        let key = keys::manifest_key(&manifest.label);
        let json = serde_json::to_vec(manifest).map_err(|error| BackupError::Manifest {
            key: key.clone(),
            reason: error.to_string(),
        })?;
        match self.put_new(&key, json).await? {
            Some(_) => Ok(()),
            None => Err(BackupError::Manifest {
                key,
                reason: "a backup with this label already exists".into(),
            }),
        }
    }

    /// The manifest of backup `label`, verified.
    pub async fn manifest(&self, label: &str) -> Result<Manifest, BackupError> {
        let key = keys::manifest_key(label);
        let json = match self.get(&key).await {
            Err(BackupError::MissingObject { .. }) => {
                return Err(BackupError::NoSuchBackup {
                    label: label.to_string(),
                })
            }
            other => other?,
        };
        serde_json::from_slice(&json)
            .map_err(|error| BackupError::corrupt(&key, format!("invalid manifest: {error}")))
    }

    /// Labels of the valid backups (those with a manifest), oldest first.
    pub async fn labels(&self) -> Result<Vec<String>, BackupError> {
        let mut labels: Vec<String> = self
            .storage
            .list(keys::BACKUPS_PREFIX)
            .await?
            .iter()
            .filter_map(|object| keys::label_of_manifest(&object.key).map(str::to_string))
            .collect();
        labels.sort();
        Ok(labels)
    }

    /// Archives WAL file `file_name` (a segment or a `.history` file) of `timeline`. Pushing
    /// the same bytes again is a no-op; different bytes under an existing name are a
    /// [`WalPut::Conflict`] for the caller to refuse loudly.
    pub async fn put_wal(
        &self,
        timeline: TimelineId,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<WalPut, BackupError> {
        let repository = self.clone();
        let name = file_name.to_string();
        let encoded =
            tokio::task::spawn_blocking(move || repository.encode_wal(timeline, &name, &bytes))
                .await
                .map_err(|error| {
                    BackupError::corrupt(
                        &keys::wal_key(timeline, file_name),
                        format!("encoder task failed: {error}"),
                    )
                })??;
        self.store_wal(encoded).await
    }

    /// The CPU half of [`Repository::put_wal`]: `bytes` fingerprinted, compressed (and
    /// encrypted).
    /// Blocking: callers run it on threads of their own, and may bound how many run at once
    /// separately from the I/O half, [`Repository::store_wal`].
    pub(crate) fn encode_wal(
        &self,
        timeline: TimelineId,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<EncodedWal, BackupError> {
        let key = keys::wal_key(timeline, file_name);
        let fingerprint = wal_fingerprint(bytes);
        let stored = self.codec.encode(&key, bytes)?;
        Ok(EncodedWal {
            key,
            fingerprint,
            stored,
        })
    }

    /// The I/O half of [`Repository::put_wal`]: stores `encoded` unless its name is taken;
    /// then compares it with the file archived under that name.
    pub(crate) async fn store_wal(&self, encoded: EncodedWal) -> Result<WalPut, BackupError> {
        let EncodedWal {
            key,
            fingerprint,
            stored,
        } = encoded;
        let size = stored.len() as u64;
        match self
            .storage
            .put_if_absent(&key, Bytes::from(stored))
            .await?
        {
            PutOutcome::Created => Ok(WalPut::Created(size)),
            PutOutcome::AlreadyExists => {
                let existing = self.get(&key).await?;
                Ok(if wal_fingerprint(&existing) == fingerprint {
                    WalPut::AlreadyIdentical
                } else {
                    WalPut::Conflict
                })
            }
        }
    }

    /// The WAL file `file_name` of `timeline`, verified.
    pub async fn get_wal(
        &self,
        timeline: TimelineId,
        file_name: &str,
    ) -> Result<Vec<u8>, BackupError> {
        self.get(&keys::wal_key(timeline, file_name)).await
    }
}

/// The plaintext of block `hash` from its `stored` bytes at `location`, after verifying the
/// stored checksum and the content address; damage names the pack, the offset and the block.
/// CPU work: run it off the async threads.
pub(crate) fn decode_block(
    codec: &Codec,
    hash: &str,
    location: &BlockLocation,
    stored: &[u8],
) -> Result<Vec<u8>, BackupError> {
    let damaged = |reason: String| {
        BackupError::corrupt(
            &keys::pack_key(&location.pack),
            format!("block {hash} at offset {}: {reason}", location.offset),
        )
    };
    if stored.len() as u64 != location.length {
        return Err(damaged("truncated".into()));
    }
    let plaintext = codec
        .decode(&keys::block_name(hash), stored)
        .map_err(|error| match error {
            BackupError::Corrupt { reason, .. } => damaged(reason),
            other => other,
        })?;
    if blake3::hash(&plaintext).to_hex().as_str() != hash {
        return Err(damaged("content does not match its address".into()));
    }
    Ok(plaintext)
}

/// Writes the config of a new repository; when another process created it first, uses theirs.
async fn create(
    storage: &Storage,
    key: Option<&RepoKey>,
    system_identifier: u64,
    compress_level: i32,
) -> Result<RepoConfig, BackupError> {
    storage.check().await?;
    let config = RepoConfig {
        format_version: FORMAT_VERSION,
        system_identifier,
        compression: "zstd".into(),
        compress_level,
        encrypted: key.is_some(),
        key_check: key.map(RepoKey::check_value),
        created_unix_ns: now_ns(),
    };
    match storage
        .put_if_absent(CONFIG_KEY, Bytes::from(config.encode()))
        .await?
    {
        PutOutcome::Created => {
            tracing::info!(
                system_identifier,
                encrypted = config.encrypted,
                "created backup repository"
            );
            Ok(config)
        }
        PutOutcome::AlreadyExists => RepoConfig::decode(&storage.get(CONFIG_KEY).await?),
    }
}

/// Now, in Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i64)
}
