//! Packs: the objects blocks are stored in. A backup appends each new block (already encoded by
//! the codec: compressed, maybe encrypted, checksummed) to an open pack and stores the pack as
//! one object once it reaches [`PACK_TARGET`] bytes, so a 3 GB backup is a handful of objects,
//! not thousands: creating objects (files, or S3 PUTs) costs more than the bytes in them.
//!
//! A pack is only the concatenation of its blocks; the manifest records where each block lives
//! ([`BlockLocation`]). Pack names are random, never reused, so a pack left by a killed or
//! crashed backup is never mistaken for a later one's: nothing references it, `expire` collects
//! it. Packs are written with deferred durability and synced once, before the manifest.

use crate::error::BackupError;
use crate::keys;
use crate::manifest::BlockLocation;
use crate::repository::Repository;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use bytes::Bytes;
use pgdbre_storage::PutOutcome;
use std::collections::HashMap;
use std::sync::Mutex;

/// Size at which an open pack is stored. Large enough that object count stops mattering
/// (a 3 GB pgbench database is ~10 packs at zstd level 3), small enough that a backup holds
/// little in memory and a restore of a few files reads little it does not need.
pub const PACK_TARGET: usize = 16 << 20;

/// A fresh pack name: 128 random bits in hex.
pub fn new_pack_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The pack being filled.
#[derive(Default)]
struct OpenPack {
    bytes: Vec<u8>,
    /// Hash, offset and length of each block in `bytes`.
    blocks: Vec<(String, u64, u64)>,
}

/// Collects a backup's new blocks into packs and stores them.
pub struct PackWriter<'a> {
    repository: &'a Repository,
    target: usize,
    open: Mutex<OpenPack>,
    stored: Mutex<HashMap<String, BlockLocation>>,
}

impl<'a> PackWriter<'a> {
    /// A writer storing packs of about `target` bytes in `repository`.
    pub fn new(repository: &'a Repository, target: usize) -> PackWriter<'a> {
        PackWriter {
            repository,
            target: target.max(1),
            open: Mutex::new(OpenPack::default()),
            stored: Mutex::new(HashMap::new()),
        }
    }

    /// The repository the packs go to.
    pub fn repository(&self) -> &Repository {
        self.repository
    }

    /// Appends block `hash`, `encoded` by the repository's codec; stores the open pack when
    /// this fills it. A hash added twice is stored twice (the later location is kept).
    pub async fn add(&self, hash: String, encoded: &[u8]) -> Result<(), BackupError> {
        let full = {
            let mut open = self.open.lock().expect("open pack lock");
            let offset = open.bytes.len() as u64;
            if open.bytes.capacity() == 0 {
                open.bytes.reserve(self.target + self.target / 8);
            }
            open.bytes.extend_from_slice(encoded);
            open.blocks.push((hash, offset, encoded.len() as u64));
            (open.bytes.len() >= self.target).then(|| std::mem::take(&mut *open))
        };
        match full {
            Some(pack) => self.store(pack).await,
            None => Ok(()),
        }
    }

    /// Stores what is left open and returns where every added block is. The packs still need
    /// a [`pgdbre_storage::Storage::sync`] before anything names them (`put_manifest` does it).
    pub async fn finish(self) -> Result<HashMap<String, BlockLocation>, BackupError> {
        let last = std::mem::take(&mut *self.open.lock().expect("open pack lock"));
        if !last.blocks.is_empty() {
            self.store(last).await?;
        }
        Ok(self.stored.into_inner().expect("pack locations lock"))
    }

    async fn store(&self, pack: OpenPack) -> Result<(), BackupError> {
        let id = new_pack_id();
        let key = keys::pack_key(&id);
        let outcome = self
            .repository
            .storage()
            .put_if_absent_deferred(&key, Bytes::from(pack.bytes))
            .await?;
        if outcome == PutOutcome::AlreadyExists {
            // 128 random bits do not collide; a storage that says so is not doing create-only.
            return Err(BackupError::Server(format!(
                "new pack {key} already exists in the repository; is another tool writing there?"
            )));
        }
        let mut stored = self.stored.lock().expect("pack locations lock");
        for (hash, offset, length) in pack.blocks {
            stored.insert(
                hash,
                BlockLocation {
                    pack: id.clone(),
                    offset,
                    length,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_ids_are_random_hex() {
        let (a, b) = (new_pack_id(), new_pack_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
