//! Backup from a standby: what differs from a backup of the primary, kept out of `backup.rs`,
//! which calls in at two moments (after copying the files, after `pg_backup_stop()`).
//!
//! PostgreSQL runs a non-exclusive backup on a hot standby (`pg_backup_start()`, or
//! `pg_start_backup(label, fast, false)` before 15) exactly as on a primary, with three
//! differences this module handles:
//!
//! - **The end of the backup is the copied `pg_control`.** A standby writes no end-of-backup WAL
//!   record: recovery of a standby backup is consistent at the `minRecoveryPoint` of the
//!   `pg_control` in the backup. A standby advances `minRecoveryPoint` before it writes any page,
//!   so `pg_control` copied after every other file covers every page read
//!   ([`copy_control_file_last`]; `pg_basebackup` sends it last for the same reason). It is
//!   copied *before* `pg_backup_stop()`, whose stop LSN is the `minRecoveryPoint` of that moment
//!   and so is at or past the copy's: WAL stored up to the stop LSN covers the backup's end.
//! - **The stop LSN can trail what was replayed.** `minRecoveryPoint` only moves when the
//!   standby writes pages, so changes it had replayed (in shared buffers) before
//!   `pg_backup_stop()` may lie past the stop LSN. A primary's backup holds everything committed
//!   before it stopped; to give a standby's the same, its WAL is stored up to the replay LSN
//!   after the stop when that is further ([`wal_end`]). Recovery to the latest point replays it.
//! - **No segment switch.** `pg_backup_stop()` cannot switch WAL segments on a standby, so the
//!   last LSN needed lies inside a segment the primary may still be writing. The repository
//!   holds whole segments only (a partial one would later conflict with the complete segment
//!   `wal push` archives under the same name), so the backup waits until the standby has
//!   received past the end of that segment; on an idle primary that needs `archive_timeout` or a
//!   `pg_switch_wal()` there. The segments are then read from the standby's `pg_wal` like a
//!   primary's, held by the same temporary replication slot.
//!
//! The system identifier check is unchanged: a standby has its primary's identifier.

use crate::chunk::content_address;
use crate::error::BackupError;
use crate::keys;
use crate::manifest::{BlockLocation, Entry, EntryKind};
use crate::pack::PackWriter;
use crate::pgdata;
use crate::wal::{segments_between, Lsn, TimelineId};
use pgdbre_pg::Session;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// `pg_control`, relative to PGDATA.
const CONTROL_FILE: &str = "global/pg_control";

/// Reads `global/pg_control` again, stores its block unless `known` (stored before this backup)
/// has it, and puts the new entry in place of the one the parallel copy made. Returns the
/// stored bytes it added.
pub(crate) async fn copy_control_file_last(
    packs: &PackWriter<'_>,
    known: &HashMap<String, BlockLocation>,
    pgdata: &Path,
    entries: &mut Vec<Entry>,
) -> Result<u64, BackupError> {
    let path = pgdata.join(CONTROL_FILE);
    let read_path = path.clone();
    let (bytes, metadata) = tokio::task::spawn_blocking(move || {
        // Stat before reading, as for every other file.
        let metadata = std::fs::metadata(&read_path)?;
        Ok::<_, std::io::Error>((std::fs::read(&read_path)?, metadata))
    })
    .await
    .map_err(|error| BackupError::Server(format!("file reader task failed: {error}")))?
    .map_err(|error| BackupError::io("read", &path, error))?;
    let hash = content_address(&bytes);
    let size = bytes.len() as u64;
    let mut stored = 0;
    if !known.contains_key(&hash) {
        // Added again if the parallel copy read the same bytes: both copies are valid.
        let encoded = packs
            .repository()
            .codec()
            .encode(&keys::block_name(&hash), &bytes)?;
        stored = encoded.len() as u64;
        packs.add(hash.clone(), &encoded).await?;
    }
    let entry = Entry {
        path: CONTROL_FILE.to_string(),
        kind: EntryKind::File,
        mode: metadata.mode() & 0o7777,
        size,
        mtime_ns: pgdata::mtime_ns(&metadata),
        // pg_control is one 8 KiB file, far below a chunk.
        blocks: vec![hash],
        target: None,
    };
    match entries.iter_mut().find(|found| found.path == CONTROL_FILE) {
        Some(found) => *found = entry,
        None => {
            entries.push(entry);
            entries.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    Ok(stored)
}

/// Where the backup's WAL ends: the stop LSN, or the standby's replay LSN if that is further.
/// Returns once the standby has received (or, without streaming, replayed) WAL past the end of
/// the segment holding it, so that segment is complete in its `pg_wal`.
pub(crate) async fn wal_end(
    session: &Session,
    timeline: TimelineId,
    start: Lsn,
    stop: Lsn,
    segment_size: u64,
    timeout: Duration,
) -> Result<Lsn, BackupError> {
    let position = standby_position(session).await?;
    let wal_end = stop.max(position.replayed);
    let last = *segments_between(timeline, start, wal_end, segment_size)
        .last()
        .expect("segments_between returns at least one segment");
    let segment_end = Lsn(last.start(segment_size).0 + segment_size);
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(20);
    let mut received = position.received;
    if received < segment_end {
        tracing::info!(
            segment = %last,
            "waiting for the primary to finish the WAL segment holding the backup's end"
        );
    }
    loop {
        if received >= segment_end {
            return Ok(wal_end);
        }
        if Instant::now() >= deadline {
            return Err(BackupError::StandbyWalTimeout {
                segment: last.to_string(),
                received: received.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(500));
        received = standby_position(session).await?.received;
    }
}

/// How far a standby has WAL.
struct StandbyPosition {
    /// Replayed.
    replayed: Lsn,
    /// On disk: received by streaming, or replayed (WAL restored from an archive is not
    /// "received").
    received: Lsn,
}

async fn standby_position(session: &Session) -> Result<StandbyPosition, BackupError> {
    let row = session
        .client()
        .query_one(
            "SELECT coalesce(pg_catalog.pg_last_wal_replay_lsn(), '0/0')::text, \
                    coalesce(greatest(pg_catalog.pg_last_wal_receive_lsn(), \
                    pg_catalog.pg_last_wal_replay_lsn()), '0/0')::text, \
                    pg_catalog.pg_is_in_recovery()",
            &[],
        )
        .await
        .map_err(|error| BackupError::Pg(session.query_error(&error)))?;
    if !row.get::<_, bool>(2) {
        return Err(BackupError::Server(format!(
            "{} was promoted during the backup; take a new backup",
            session.target()
        )));
    }
    let lsn = |index: usize| {
        row.get::<_, String>(index)
            .parse()
            .map_err(BackupError::Server)
    };
    Ok(StandbyPosition {
        replayed: lsn(0)?,
        received: lsn(1)?,
    })
}
