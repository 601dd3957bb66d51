//! The repository encryption key: where it comes from, how the AES-256 key is derived from it,
//! and the check value that tells a wrong key from corruption. The key never reaches a log,
//! an error message or a `Debug` output.

use crate::error::BackupError;
use std::path::Path;

/// Environment variable holding the key material when no key file is given.
pub const KEY_ENV: &str = "PGDBRE_REPO_KEY";
/// Shortest accepted key material: the key is derived, not stretched, so it must be random.
const MIN_KEY_BYTES: usize = 16;
/// BLAKE3 key-derivation contexts (globally unique, never change: they define the format).
const ENCRYPTION_CONTEXT: &str = "pgdbre 2026-11-25 repository encryption key v1";
const CHECK_CONTEXT: &str = "pgdbre 2026-11-25 repository key check value v1";

/// A 256-bit AES key derived from the user's key material.
#[derive(Clone)]
pub struct RepoKey {
    aes: [u8; 32],
}

impl std::fmt::Debug for RepoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoKey(<redacted>)")
    }
}

impl RepoKey {
    /// Derives the key from raw material (a trailing newline, as `echo` or an editor leaves it,
    /// is not part of the key).
    pub fn from_material(material: &[u8]) -> Result<RepoKey, BackupError> {
        let material = material.strip_suffix(b"\n").unwrap_or(material);
        let material = material.strip_suffix(b"\r").unwrap_or(material);
        if material.len() < MIN_KEY_BYTES {
            return Err(BackupError::BadKey(format!(
                "{} bytes, fewer than {MIN_KEY_BYTES}",
                material.len()
            )));
        }
        Ok(RepoKey {
            aes: blake3::derive_key(ENCRYPTION_CONTEXT, material),
        })
    }

    /// The key from `file` when given, else from `$PGDBRE_REPO_KEY`, else none.
    pub fn load(file: Option<&Path>) -> Result<Option<RepoKey>, BackupError> {
        if let Some(file) = file {
            let material = std::fs::read(file)
                .map_err(|error| BackupError::io("read the key file", file, error))?;
            return RepoKey::from_material(&material).map(Some);
        }
        match std::env::var_os(KEY_ENV) {
            Some(value) if !value.is_empty() => {
                use std::os::unix::ffi::OsStrExt;
                RepoKey::from_material(value.as_bytes()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The AES-256 key bytes.
    pub(crate) fn aes_key(&self) -> &[u8; 32] {
        &self.aes
    }

    /// The value stored in the repository config to recognise this key (hex). It is derived in
    /// a separate context, so it reveals nothing about the encryption key.
    pub fn check_value(&self) -> String {
        let check = blake3::derive_key(CHECK_CONTEXT, &self.aes);
        hex(&check)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_material_same_key_and_newline_ignored() {
        let a = RepoKey::from_material(b"0123456789abcdef0123").unwrap();
        let b = RepoKey::from_material(b"0123456789abcdef0123\n").unwrap();
        assert_eq!(a.check_value(), b.check_value());
        let other = RepoKey::from_material(b"0123456789abcdef0124").unwrap();
        assert_ne!(a.check_value(), other.check_value());
    }

    #[test]
    fn short_material_is_refused_without_echoing_it() {
        let error = RepoKey::from_material(b"secret").unwrap_err().to_string();
        assert!(error.contains("6 bytes"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn debug_hides_the_key() {
        let key = RepoKey::from_material(b"0123456789abcdef0123").unwrap();
        assert_eq!(format!("{key:?}"), "RepoKey(<redacted>)");
    }
}
