//! The repository config object (`config`): what every reader must know before reading anything
//! else — format version, the cluster the repository belongs to, compression, and whether
//! objects are encrypted (with the check value that recognises the right key). It is stored
//! checksummed but neither compressed nor encrypted, so a wrong key is told apart from damage.

use crate::codec::Codec;
use crate::error::BackupError;
use crate::keys::{CONFIG_KEY, FORMAT_VERSION};
use serde::{Deserialize, Serialize};

/// Contents of the `config` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Repository format version ([`FORMAT_VERSION`] when created by this build).
    pub format_version: u32,
    /// `system_identifier` of the one PostgreSQL cluster this repository holds.
    pub system_identifier: u64,
    /// Compression algorithm of stored objects: `zstd`.
    pub compression: String,
    /// Default zstd level for new objects (readers do not need it).
    pub compress_level: i32,
    /// Whether objects are AES-256-GCM encrypted.
    pub encrypted: bool,
    /// [`crate::RepoKey::check_value`] of the key, when encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_check: Option<String>,
    /// When the repository was created, Unix nanoseconds.
    pub created_unix_ns: i64,
}

impl RepoConfig {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec_pretty(self).expect("config serialises");
        Codec::encode_plain(&json)
    }

    /// Parses a stored config, refusing formats other than this build's.
    pub fn decode(stored: &[u8]) -> Result<RepoConfig, BackupError> {
        let json = Codec::new(0, None).decode(CONFIG_KEY, stored)?;
        let config: RepoConfig = serde_json::from_slice(&json)
            .map_err(|error| BackupError::corrupt(CONFIG_KEY, format!("invalid JSON: {error}")))?;
        if config.format_version > FORMAT_VERSION {
            return Err(BackupError::UnsupportedFormat {
                found: config.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if config.format_version < FORMAT_VERSION {
            return Err(BackupError::OldFormat {
                found: config.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RepoConfig {
        RepoConfig {
            format_version: FORMAT_VERSION,
            system_identifier: 7_441_234_567_890_123_456,
            compression: "zstd".into(),
            compress_level: 3,
            encrypted: false,
            key_check: None,
            created_unix_ns: 1,
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let stored = sample().encode();
        assert_eq!(RepoConfig::decode(&stored).unwrap(), sample());
        let mut damaged = stored.clone();
        damaged[20] ^= 1;
        assert!(matches!(
            RepoConfig::decode(&damaged),
            Err(BackupError::Corrupt { .. })
        ));
    }

    #[test]
    fn newer_format_is_refused() {
        let mut newer = sample();
        newer.format_version = FORMAT_VERSION + 1;
        let error = RepoConfig::decode(&newer.encode()).unwrap_err();
        assert!(
            matches!(error, BackupError::UnsupportedFormat { .. }),
            "{error}"
        );
    }

    #[test]
    fn older_format_is_refused_with_what_to_do() {
        let mut older = sample();
        older.format_version = 1;
        let error = RepoConfig::decode(&older.encode()).unwrap_err();
        assert!(matches!(error, BackupError::OldFormat { .. }), "{error}");
        assert!(error.to_string().contains("new repository"), "{error}");
    }
}
