//! Object keys of the repository layout (see `docs/backup-format.md`). Every key is built here,
//! so the layout has one definition that `backup`, `restore`, `verify` and the WAL archive share.

use crate::wal::{SegmentName, TimelineId};

/// Version of the repository format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// The repository config object.
pub const CONFIG_KEY: &str = "config";
/// Prefix of every pack (the objects that hold the content-addressed blocks).
pub const PACKS_PREFIX: &str = "packs/";
/// Prefix of every backup directory.
pub const BACKUPS_PREFIX: &str = "backups/";
/// Prefix of the WAL archive.
pub const WAL_PREFIX: &str = "wal/";
/// Name of the manifest object inside a backup directory.
const MANIFEST_NAME: &str = "manifest";
/// Name of the marker a running backup writes into its directory.
const IN_PROGRESS_NAME: &str = "in-progress";

/// The name a block goes by inside the codec (authenticated with it when encrypted) and in
/// messages: `blocks/<hash>`. Blocks are not objects of their own; they live in packs.
pub fn block_name(hex: &str) -> String {
    format!("blocks/{hex}")
}

/// `packs/ab/ab12…`: pack `id` (32 hex digits); the two-character fan-out keeps local
/// directories small.
pub fn pack_key(id: &str) -> String {
    format!("{PACKS_PREFIX}{}/{id}", &id[..2])
}

/// The pack id in a pack key, if `key` is one.
pub fn pack_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PACKS_PREFIX)?;
    let (fan, id) = rest.split_once('/')?;
    (fan.len() == 2 && id.len() == 32 && id.starts_with(fan)).then_some(id)
}

/// `backups/<label>/manifest`: the object whose presence alone makes a backup valid.
pub fn manifest_key(label: &str) -> String {
    format!("{BACKUPS_PREFIX}{label}/{MANIFEST_NAME}")
}

/// The label in a manifest key, if `key` is one.
pub fn label_of_manifest(key: &str) -> Option<&str> {
    key.strip_prefix(BACKUPS_PREFIX)?
        .strip_suffix(MANIFEST_NAME)?
        .strip_suffix('/')
        .filter(|label| !label.is_empty() && !label.contains('/'))
}

/// `backups/<label>/in-progress`: written when a backup starts, re-put every minute while it
/// runs, removed when it ends. It never makes a backup valid; it tells `expire` that a backup
/// may still reference any block (until stale: see `expire.rs`).
pub fn in_progress_key(label: &str) -> String {
    format!("{BACKUPS_PREFIX}{label}/{IN_PROGRESS_NAME}")
}

/// Prefix of the locks `expire` holds while it deletes blocks (one per running expire,
/// refreshed every batch); a starting backup waits while a fresh one exists, so it never
/// deduplicates against a block being deleted (see `expire.rs`).
pub const EXPIRE_LOCKS_PREFIX: &str = "expire-running/";

/// `expire-running/<id>`: the lock of one running expire.
pub fn expire_lock_key(id: &str) -> String {
    format!("{EXPIRE_LOCKS_PREFIX}{id}")
}

/// `wal/<timeline>/<segment>`: one WAL segment (or `<timeline>.history` file) in the archive,
/// e.g. `wal/00000001/000000010000000000000003`. `wal push` writes the same objects.
pub fn wal_key(timeline: TimelineId, file_name: &str) -> String {
    format!("{WAL_PREFIX}{timeline}/{file_name}")
}

/// The archive key of a WAL segment.
pub fn wal_segment_key(segment: &SegmentName) -> String {
    wal_key(segment.timeline(), &segment.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_keys_round_trip() {
        let id = "ab".repeat(16);
        let key = pack_key(&id);
        assert_eq!(key, format!("packs/ab/{id}"));
        assert_eq!(pack_id_of(&key), Some(id.as_str()));
        assert_eq!(pack_id_of("packs/ab/short"), None);
        assert_eq!(pack_id_of("backups/x/manifest"), None);
        assert_eq!(block_name("cd"), "blocks/cd");
    }

    #[test]
    fn manifest_keys_round_trip() {
        let key = manifest_key("20261125-181500F");
        assert_eq!(key, "backups/20261125-181500F/manifest");
        assert_eq!(label_of_manifest(&key), Some("20261125-181500F"));
        assert_eq!(
            label_of_manifest("backups/20261125-181500F/in-progress"),
            None
        );
        assert_eq!(label_of_manifest("backups//manifest"), None);
    }

    #[test]
    fn wal_keys() {
        let segment: SegmentName = "000000010000000000000003".parse().unwrap();
        assert_eq!(
            wal_segment_key(&segment),
            "wal/00000001/000000010000000000000003"
        );
        assert_eq!(
            wal_key(TimelineId(2), "00000002.history"),
            "wal/00000002/00000002.history"
        );
    }
}
