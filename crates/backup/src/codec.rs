//! How every repository object is stored: a small header, the zstd-compressed (and optionally
//! AES-256-GCM-encrypted) payload, and a BLAKE3 checksum of all stored bytes as a trailer.
//!
//! ```text
//! "PGDB" | version u8 | flags u8 | reserved u16 | [nonce 12 bytes if encrypted] | payload | blake3(all before) 32 bytes
//! ```
//! The checksum is verified on every read, before anything else, so damage at rest is reported
//! as corruption of a named object. Encryption authenticates the header and the object key as
//! associated data, so an encrypted object cannot be moved to another key unnoticed.

use crate::error::BackupError;
use crate::key::RepoKey;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::borrow::Cow;
use std::cell::RefCell;

const MAGIC: &[u8; 4] = b"PGDB";
const OBJECT_VERSION: u8 = 1;
const FLAG_ZSTD: u8 = 1;
const FLAG_AES_GCM: u8 = 2;
const HEADER_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const CHECKSUM_LEN: usize = 32;
/// Frames claiming more content than this are decoded by streaming, so a header cannot make the
/// reader allocate an arbitrary amount up front (blocks are ≤ 512 KiB, WAL segments ≤ 1 GiB).
const MAX_BULK_DECODE: u64 = 64 * 1024 * 1024;
/// zstd level when none is configured: pgBackRest's default for zstd too, a good speed/size point.
pub const DEFAULT_LEVEL: i32 = 3;

thread_local! {
    /// zstd contexts reused by every object a thread encodes or decodes: a fresh context per
    /// block costs allocating and initialising its tables, a sizeable part of the work.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `plaintext` as one zstd frame at `level`, with this thread's reused context.
fn compress(plaintext: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(cached, _)| *cached != level) {
            *cell = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = cell.as_mut().expect("compressor just set");
        compressor.compress(plaintext)
    })
}

/// The content of the zstd frame `compressed`, with this thread's reused context when the frame
/// records its size (every frame [`compress`] writes does); by streaming otherwise.
fn decompress(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    let size = match zstd::zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(size)) if size <= MAX_BULK_DECODE => usize::try_from(size).ok(),
        _ => None,
    };
    let Some(size) = size else {
        return zstd::stream::decode_all(compressed);
    };
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Decompressor::new()?);
        }
        let decompressor = cell.as_mut().expect("decompressor just set");
        let plaintext = decompressor.decompress(compressed, size)?;
        if plaintext.len() != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "frame content size does not match its header",
            ));
        }
        Ok(plaintext)
    })
}

/// Encodes and decodes stored objects with one compression level and optional key.
#[derive(Debug, Clone)]
pub struct Codec {
    level: i32,
    key: Option<RepoKey>,
}

impl Codec {
    /// A codec that compresses at `level` and encrypts when `key` is given.
    pub fn new(level: i32, key: Option<RepoKey>) -> Codec {
        Codec { level, key }
    }

    /// Whether objects are encrypted.
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// The key objects are encrypted with.
    pub(crate) fn key(&self) -> Option<&RepoKey> {
        self.key.as_ref()
    }

    /// The stored form of `plaintext` under object `key`.
    pub fn encode(&self, object_key: &str, plaintext: &[u8]) -> Result<Vec<u8>, BackupError> {
        let compressed = compress(plaintext, self.level).map_err(|error| {
            BackupError::corrupt(object_key, format!("zstd compression failed: {error}"))
        })?;
        let mut flags = FLAG_ZSTD;
        if self.key.is_some() {
            flags |= FLAG_AES_GCM;
        }
        let mut out =
            Vec::with_capacity(compressed.len() + HEADER_LEN + NONCE_LEN + 16 + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[OBJECT_VERSION, flags, 0, 0]);
        match &self.key {
            Some(key) => {
                let cipher = Aes256Gcm::new(key.aes_key().into());
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let aad = associated_data(&out, object_key);
                let sealed = cipher
                    .encrypt(
                        &nonce,
                        Payload {
                            msg: &compressed,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| BackupError::corrupt(object_key, "encryption failed"))?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
            None => out.extend_from_slice(&compressed),
        }
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        Ok(out)
    }

    /// Checks the stored checksum of `stored` without decoding it (what `verify` does first).
    pub fn check(object_key: &str, stored: &[u8]) -> Result<(), BackupError> {
        if stored.len() < HEADER_LEN + CHECKSUM_LEN || &stored[..4] != MAGIC {
            return Err(BackupError::corrupt(
                object_key,
                "not a pgdbre object (bad header)",
            ));
        }
        let (body, checksum) = stored.split_at(stored.len() - CHECKSUM_LEN);
        if blake3::hash(body).as_bytes() != checksum {
            return Err(BackupError::corrupt(object_key, "checksum mismatch"));
        }
        Ok(())
    }

    /// The plaintext of stored object `object_key`, after verifying its checksum.
    pub fn decode(&self, object_key: &str, stored: &[u8]) -> Result<Vec<u8>, BackupError> {
        Codec::check(object_key, stored)?;
        let body = &stored[..stored.len() - CHECKSUM_LEN];
        let (header, rest) = body.split_at(HEADER_LEN);
        if header[4] != OBJECT_VERSION {
            return Err(BackupError::corrupt(
                object_key,
                format!("unknown object version {}", header[4]),
            ));
        }
        let flags = header[5];
        let compressed: Cow<[u8]> = if flags & FLAG_AES_GCM != 0 {
            let key = self.key.as_ref().ok_or(BackupError::KeyRequired)?;
            if rest.len() < NONCE_LEN {
                return Err(BackupError::corrupt(object_key, "truncated nonce"));
            }
            let (nonce, sealed) = rest.split_at(NONCE_LEN);
            let cipher = Aes256Gcm::new(key.aes_key().into());
            let aad = associated_data(header, object_key);
            cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| {
                    BackupError::corrupt(
                        object_key,
                        "decryption failed (wrong key or tampered object)",
                    )
                })?
                .into()
        } else {
            rest.into()
        };
        if flags & FLAG_ZSTD == 0 {
            return Ok(compressed.into_owned());
        }
        decompress(&compressed).map_err(|error| {
            BackupError::corrupt(object_key, format!("zstd data is invalid: {error}"))
        })
    }

    /// An unencrypted, uncompressed but checksummed object (the repository config, which must
    /// be readable before the key is known).
    pub fn encode_plain(plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + HEADER_LEN + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[OBJECT_VERSION, 0, 0, 0]);
        out.extend_from_slice(plaintext);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }
}

fn associated_data(header: &[u8], object_key: &str) -> Vec<u8> {
    let mut aad = header[..HEADER_LEN].to_vec();
    aad.extend_from_slice(object_key.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(material: &[u8]) -> RepoKey {
        RepoKey::from_material(material).unwrap()
    }

    #[test]
    fn round_trip_plain_and_encrypted() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect();
        for codec in [
            Codec::new(3, None),
            Codec::new(1, Some(key(b"0123456789abcdef!"))),
        ] {
            let stored = codec.encode("blocks/aa/x", &data).unwrap();
            assert!(
                stored.len() < data.len() / 4,
                "compressible data must shrink"
            );
            assert_eq!(codec.decode("blocks/aa/x", &stored).unwrap(), data);
        }
        let plain = Codec::encode_plain(b"{}");
        assert_eq!(Codec::new(3, None).decode("config", &plain).unwrap(), b"{}");
    }

    #[test]
    fn any_flipped_byte_is_reported_as_corruption() {
        let codec = Codec::new(3, Some(key(b"0123456789abcdef!")));
        let stored = codec.encode("k", b"hello world, hello world").unwrap();
        for index in 0..stored.len() {
            let mut damaged = stored.clone();
            damaged[index] ^= 0x01;
            let error = codec.decode("k", &damaged).unwrap_err();
            assert!(
                matches!(error, BackupError::Corrupt { ref key, .. } if key == "k"),
                "byte {index}: {error}"
            );
        }
    }

    #[test]
    fn wrong_key_or_moved_object_fails_to_decrypt() {
        let stored = Codec::new(3, Some(key(b"0123456789abcdef!")))
            .encode("a", b"data")
            .unwrap();
        let wrong = Codec::new(3, Some(key(b"0123456789abcdef?")));
        assert!(matches!(
            wrong.decode("a", &stored),
            Err(BackupError::Corrupt { .. })
        ));
        let right = Codec::new(3, Some(key(b"0123456789abcdef!")));
        assert!(matches!(
            right.decode("b", &stored),
            Err(BackupError::Corrupt { .. })
        ));
        assert!(matches!(
            Codec::new(3, None).decode("a", &stored),
            Err(BackupError::KeyRequired)
        ));
    }
}
