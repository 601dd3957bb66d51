//! `pgdbre expire`: drop backups the retention policy no longer needs, then garbage-collect the
//! packs no remaining backup references and the WAL older than the oldest remaining backup.
//!
//! The choice of what to expire ([`choose_expired`]) is pure and unit-tested below; the rest
//! is I/O with one overriding rule, documented in `docs/backup-format.md` ("Expiry and garbage
//! collection"): nothing a retained or running backup may need is deleted. A running backup
//! has no manifest yet, and it may reference any stored block, however old, so while any live
//! `in-progress` marker exists no unreferenced pack is deleted at all; packs younger than a
//! grace period are never deleted (a backup that started after the markers were listed);
//! and markers and manifests are listed again before every batch of deletions.
//!
//! A running backup re-puts its marker every minute (`MARKER_REFRESH_INTERVAL` in backup.rs),
//! so a marker not modified for [`MARKER_STALE`] was left by a killed backup (or a crashed
//! host): it no longer blocks collection and is deleted ([`marker_is_stale`]). The age is
//! measured on the storage's own clock at both ends: the marker's modification time is stamped
//! by the storage (the mtime the repository's file system gives the written file; the
//! `LastModified` S3 sets on a PUT), and "now" is the modification time of this expire's lock,
//! re-put just before the markers are listed ([`CollectionLock::refresh`]). So no host's clock
//! enters the decision, and a fresh marker always blocks whatever the skew between hosts. A
//! backup that cannot refresh for half of [`MARKER_STALE`] (paused, repository unreachable)
//! fails before writing its manifest, so a backup taken for killed never completes.

use crate::archive::WalFileName;
use crate::error::BackupError;
use crate::keys;
use crate::manifest::{BackupType, Manifest};
use crate::repository::{now_ns, Repository};
use crate::wal::SegmentName;
use futures::StreamExt;
use pgdbre_storage::ObjectInfo;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Blocks deleted between two re-checks of the in-progress markers.
const DELETE_BATCH: usize = 256;
/// Default age below which an unreferenced pack is kept.
pub const DEFAULT_PACK_GRACE: Duration = Duration::from_secs(3600);
const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// A pack-collection lock not refreshed for this long was left by a killed `expire`.
const EXPIRE_LOCK_STALE: Duration = Duration::from_secs(600);
/// A backup's `in-progress` marker not refreshed for this long was left by a killed backup.
/// Ten refresh intervals: a live backup's marker is never this old, and one that could not
/// refresh for half of it gives up before writing its manifest.
pub(crate) const MARKER_STALE: Duration = Duration::from_secs(600);

/// Which backups to keep. A backup set (a full backup and the incrementals after it) is expired
/// only when every given rule allows it; with no rule, no backup is expired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N full backups with their incrementals (N ≥ 1).
    pub full: Option<usize>,
    /// Keep what is needed to restore to any moment of the last D days: every set that ended
    /// within them, and the newest set that ended before them.
    pub days: Option<u64>,
}

/// How to expire.
#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// The retention policy.
    pub retention: Retention,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Unreferenced packs younger than this are kept.
    pub pack_grace: Duration,
    /// Deletions in flight.
    pub jobs: usize,
}

impl ExpireOptions {
    /// `retention`, deleting for real, default grace, 4 deletions in flight.
    pub fn new(retention: Retention) -> ExpireOptions {
        ExpireOptions {
            retention,
            dry_run: false,
            pack_grace: DEFAULT_PACK_GRACE,
            jobs: 4,
        }
    }
}

/// What `expire` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExpireReport {
    /// Backups expired, oldest first.
    pub expired: Vec<String>,
    /// Backups kept.
    pub retained: Vec<String>,
    /// Labels of backups found running (a live `in-progress` marker), at the last check.
    pub running: Vec<String>,
    /// Labels whose marker was stale, left by a killed backup, and was removed (with
    /// `dry_run`, would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_markers_removed: Vec<String>,
    /// Unreferenced packs deleted.
    pub packs_deleted: u64,
    /// Their stored size in bytes.
    pub pack_bytes_deleted: u64,
    /// Unreferenced packs kept: younger than the grace period, or a backup was running.
    pub packs_kept: u64,
    /// WAL objects deleted.
    pub wal_deleted: Vec<String>,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// Why pack collection stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packs_skipped_because: Option<String>,
}

/// The facts retention decides on, one per valid backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    /// Label (labels sort by start time).
    pub label: String,
    /// Full or incremental.
    pub backup_type: BackupType,
    /// When the backup finished, Unix nanoseconds.
    pub stop_unix_ns: i64,
}

/// The labels `retention` expires among `backups` at `now_ns`. Backups are grouped in sets —
/// a full backup and the incrementals that follow it — and a set goes as a whole. The newest
/// set is never expired.
pub fn choose_expired(
    backups: &[BackupFacts],
    retention: Retention,
    now_ns: i64,
) -> BTreeSet<String> {
    if retention.full.is_none() && retention.days.is_none() {
        return BTreeSet::new();
    }
    let mut ordered: Vec<&BackupFacts> = backups.iter().collect();
    ordered.sort_by(|a, b| a.label.cmp(&b.label));
    let mut sets: Vec<Vec<&BackupFacts>> = Vec::new();
    for backup in ordered {
        match sets.last_mut() {
            Some(set) if backup.backup_type == BackupType::Incremental => set.push(backup),
            _ => sets.push(vec![backup]),
        }
    }
    let count = sets.len();
    let mut expired = BTreeSet::new();
    for (index, set) in sets.iter().enumerate() {
        let newer_sets = count - 1 - index;
        let by_count = retention.full.is_none_or(|keep| newer_sets >= keep.max(1));
        // The next set's full backup ended before the window: this set is not needed to
        // restore to any moment inside it.
        let by_age = retention.days.is_none_or(|days| {
            let cutoff = now_ns.saturating_sub((days as i64).saturating_mul(NS_PER_DAY));
            sets.get(index + 1)
                .is_some_and(|next| next[0].stop_unix_ns <= cutoff)
        });
        if newer_sets > 0 && by_count && by_age {
            expired.extend(set.iter().map(|backup| backup.label.clone()));
        }
    }
    expired
}

/// Applies `options` to `repository`.
pub async fn expire(
    repository: &Repository,
    options: &ExpireOptions,
) -> Result<ExpireReport, BackupError> {
    let now = SystemTime::now();
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i64);
    let labels = repository.labels().await?;
    let mut manifests = Vec::with_capacity(labels.len());
    for label in &labels {
        // An unreadable manifest hides which blocks it needs: stop rather than guess.
        manifests.push(repository.manifest(label).await?);
    }
    let facts: Vec<BackupFacts> = manifests
        .iter()
        .map(|manifest| BackupFacts {
            label: manifest.label.clone(),
            backup_type: manifest.backup_type,
            stop_unix_ns: manifest.stop_unix_ns,
        })
        .collect();
    let expired = choose_expired(&facts, options.retention, now_ns);
    // Judged by this host's clock, only to report and to decide whether a stale-looking marker
    // needs a check; markers are deleted or ignored only by the storage's clock (see the top).
    let (live, stale): (Vec<Marker>, Vec<Marker>) = list_markers(repository)
        .await?
        .into_iter()
        .partition(|marker| !marker_is_stale(marker.modified, now));
    let (gone, kept): (Vec<&Manifest>, Vec<&Manifest>) = manifests
        .iter()
        .partition(|manifest| expired.contains(&manifest.label));
    let mut report = ExpireReport {
        expired: gone.iter().map(|manifest| manifest.label.clone()).collect(),
        retained: kept.iter().map(|manifest| manifest.label.clone()).collect(),
        running: live.into_iter().map(|marker| marker.label).collect(),
        dry_run: options.dry_run,
        ..ExpireReport::default()
    };

    // 1. Expired backups: the manifest first, so a half-done expire leaves no half backup.
    if !options.dry_run {
        for manifest in &gone {
            repository
                .storage()
                .delete(&keys::manifest_key(&manifest.label))
                .await?;
            let directory = format!("{}{}/", keys::BACKUPS_PREFIX, manifest.label);
            for object in repository.storage().list(&directory).await? {
                repository.storage().delete(&object.key).await?;
            }
            tracing::info!(label = %manifest.label, "expired backup");
        }
    }

    // 2. Packs no retained backup references. A pack some retained backup still uses is kept
    //    whole, with any blocks in it that only expired backups used.
    let referenced: HashSet<&str> = kept
        .iter()
        .flat_map(|manifest| manifest.blocks.values())
        .map(|location| location.pack.as_str())
        .collect();
    let grace_start = now.checked_sub(options.pack_grace).unwrap_or(UNIX_EPOCH);
    let mut garbage = Vec::new();
    for object in repository.storage().list(keys::PACKS_PREFIX).await? {
        let Some(pack) = keys::pack_id_of(&object.key) else {
            continue;
        };
        if referenced.contains(pack) {
            continue;
        }
        if object.modified >= grace_start {
            report.packs_kept += 1;
        } else {
            garbage.push(object);
        }
    }
    let expected_labels = if options.dry_run {
        labels.clone()
    } else {
        report.retained.clone()
    };
    if !garbage.is_empty() || !stale.is_empty() {
        // The lock is written before markers are checked: see `wait_for_pack_collection`.
        let lock = match options.dry_run {
            true => None,
            false => Some(CollectionLock::take(repository).await?),
        };
        let collected = collect_packs(
            repository,
            &garbage,
            &expected_labels,
            lock.as_ref(),
            options,
            &mut report,
        )
        .await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        collected?;
    }

    // 3. WAL before the oldest retained backup's start segment, on every timeline; timeline
    //    history files are always kept (small, and needed to follow any timeline switch).
    if let Some(oldest) = kept.iter().map(|manifest| start_position(manifest)).min() {
        let mut doomed = Vec::new();
        for object in repository.storage().list(keys::WAL_PREFIX).await? {
            let Some(file) = object
                .key
                .rsplit('/')
                .next()
                .and_then(|name| name.parse::<WalFileName>().ok())
            else {
                continue;
            };
            if file
                .segment()
                .is_some_and(|segment| position(&segment) < oldest)
            {
                doomed.push(object.key);
            }
        }
        if !options.dry_run {
            delete_all(repository, doomed.iter().map(String::as_str), options.jobs).await?;
        }
        report.wal_deleted = doomed;
    }
    Ok(report)
}

/// Deletes `garbage` in batches, re-checking before each one that it is still safe (and
/// refreshing the lock, so waiting backups know this expire is alive, and to read the storage's
/// clock). With no garbage, the check still runs once, to remove stale markers.
async fn collect_packs(
    repository: &Repository,
    garbage: &[ObjectInfo],
    expected_labels: &[String],
    lock: Option<&CollectionLock<'_>>,
    options: &ExpireOptions,
    report: &mut ExpireReport,
) -> Result<(), BackupError> {
    let batches: Vec<&[ObjectInfo]> = match garbage.is_empty() {
        true => vec![&[]],
        false => garbage.chunks(DELETE_BATCH).collect(),
    };
    for batch in batches {
        // A dry run holds no lock and deletes nothing, so this host's clock will do.
        let storage_now = match lock {
            Some(lock) => lock.refresh().await?,
            None => SystemTime::now(),
        };
        let check = unsafe_to_collect(repository, expected_labels, storage_now, options, report);
        if let Some(reason) = check.await? {
            if !garbage.is_empty() {
                report.packs_kept += garbage.len() as u64 - report.packs_deleted;
                report.packs_skipped_because = Some(reason);
            }
            return Ok(());
        }
        if !options.dry_run {
            delete_all(
                repository,
                batch.iter().map(|object| object.key.as_str()),
                options.jobs,
            )
            .await?;
        }
        report.packs_deleted += batch.len() as u64;
        report.pack_bytes_deleted += batch.iter().map(|object| object.size).sum::<u64>();
    }
    Ok(())
}

/// This expire's entry under [`keys::EXPIRE_LOCKS_PREFIX`], present while it deletes packs.
struct CollectionLock<'a> {
    repository: &'a Repository,
    key: String,
}

impl<'a> CollectionLock<'a> {
    async fn take(repository: &'a Repository) -> Result<CollectionLock<'a>, BackupError> {
        let lock = CollectionLock {
            repository,
            key: keys::expire_lock_key(&format!("{}-{}", std::process::id(), now_ns())),
        };
        lock.refresh().await?;
        Ok(lock)
    }

    /// Re-puts the lock and returns its modification time as the storage lists it: the
    /// storage's clock a moment ago, against which markers' ages are measured. (Earlier than
    /// the marker listing that follows, so ages come out short, never long.)
    async fn refresh(&self) -> Result<SystemTime, BackupError> {
        let body = format!(
            "{{\"pid\":{},\"refreshed_unix_ns\":{}}}",
            std::process::id(),
            now_ns()
        );
        let storage = self.repository.storage();
        storage.put(&self.key, bytes::Bytes::from(body)).await?;
        storage
            .list(&self.key)
            .await?
            .into_iter()
            .find(|object| object.key == self.key)
            .map(|object| object.modified)
            .ok_or_else(|| BackupError::MissingObject {
                key: self.key.clone(),
            })
    }

    async fn release(self) {
        if let Err(error) = self.repository.storage().delete(&self.key).await {
            tracing::warn!(
                "could not remove {}: {error}; backups wait for it to go stale",
                self.key
            );
        }
    }
}

/// Waits while an `expire` is deleting packs; `backup` calls it right after writing its
/// in-progress marker. Expire writes its lock *before* it looks for markers and a backup writes
/// its marker *before* it looks for locks, so (storage being read-after-write consistent) at
/// least one sees the other: either expire deletes no pack, or the backup reads and
/// deduplicates only after the deletions. A lock not refreshed for [`EXPIRE_LOCK_STALE`] was
/// left by a killed expire and is ignored.
pub(crate) async fn wait_for_pack_collection(repository: &Repository) -> Result<(), BackupError> {
    let mut interval = Duration::from_millis(20);
    let mut announced = false;
    loop {
        let locks = repository.storage().list(keys::EXPIRE_LOCKS_PREFIX).await?;
        let now = SystemTime::now();
        let fresh = locks.iter().filter(|lock| {
            now.duration_since(lock.modified).unwrap_or_default() < EXPIRE_LOCK_STALE
        });
        if fresh.count() == 0 {
            return Ok(());
        }
        if !announced {
            tracing::info!("waiting for a running expire to finish deleting packs");
            announced = true;
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

/// A backup's `in-progress` marker, as listed.
#[derive(Debug)]
struct Marker {
    label: String,
    /// When the backup last wrote it, by the storage's clock.
    modified: SystemTime,
}

/// Every `in-progress` marker in the repository.
async fn list_markers(repository: &Repository) -> Result<Vec<Marker>, BackupError> {
    Ok(repository
        .storage()
        .list(keys::BACKUPS_PREFIX)
        .await?
        .into_iter()
        .filter_map(|object| {
            let label = object
                .key
                .strip_prefix(keys::BACKUPS_PREFIX)?
                .split('/')
                .next()?;
            (keys::in_progress_key(label) == object.key).then(|| Marker {
                label: label.to_string(),
                modified: object.modified,
            })
        })
        .collect())
}

/// Whether a marker last written at `modified` was left by a killed backup, judged at `now`;
/// both must be times of the storage's clock (see the top of this file). A live backup re-puts
/// its marker every minute and gives up before its manifest if it could not for half of
/// [`MARKER_STALE`], so a marker of any age below [`MARKER_STALE`], or newer than `now`, counts
/// as running.
pub(crate) fn marker_is_stale(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified)
        .is_ok_and(|age| age >= MARKER_STALE)
}

/// Why deleting unreferenced packs is not safe right now, if it is not: a backup is running
/// (it may be about to reference any block), or the list of valid backups is no longer
/// `expected` (one finished since the manifests were read). Markers stale at `storage_now` are
/// a killed backup's: they do not count, and are deleted unless this is a dry run. Records the
/// live and the stale markers in `report`.
async fn unsafe_to_collect(
    repository: &Repository,
    expected: &[String],
    storage_now: SystemTime,
    options: &ExpireOptions,
    report: &mut ExpireReport,
) -> Result<Option<String>, BackupError> {
    let mut running = Vec::new();
    for marker in list_markers(repository).await? {
        if !marker_is_stale(marker.modified, storage_now) {
            running.push(marker.label);
            continue;
        }
        if !options.dry_run {
            let key = keys::in_progress_key(&marker.label);
            repository.storage().delete(&key).await?;
            tracing::warn!(
                label = %marker.label,
                "removed the in-progress marker of a killed backup (not refreshed for {} minutes)",
                MARKER_STALE.as_secs() / 60
            );
        }
        if !report.stale_markers_removed.contains(&marker.label) {
            report.stale_markers_removed.push(marker.label);
        }
    }
    report.running.clone_from(&running);
    if !running.is_empty() {
        return Ok(Some(format!(
            "backup {} is running and may reference any stored block; run expire again after it \
             ends (a killed backup's marker stops counting {} minutes after its last refresh)",
            running.join(", "),
            MARKER_STALE.as_secs() / 60
        )));
    }
    if repository.labels().await? != expected {
        return Ok(Some(
            "a backup finished while expire ran; run expire again".into(),
        ));
    }
    Ok(None)
}

async fn delete_all<'a>(
    repository: &Repository,
    keys: impl Iterator<Item = &'a str>,
    jobs: usize,
) -> Result<(), BackupError> {
    let results: Vec<Result<(), pgdbre_storage::StorageError>> = futures::stream::iter(keys)
        .map(|key| repository.storage().delete(key))
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(())
}

/// The position (segment number, timeline aside) of the segment a backup starts in.
fn start_position(manifest: &Manifest) -> String {
    position(&SegmentName::containing(
        manifest.timeline,
        manifest.start_lsn,
        manifest.wal_segment_size,
    ))
}

/// A segment's number as the fixed-width hex of its name (log and seg), which orders like the
/// number for any segment size.
fn position(segment: &SegmentName) -> String {
    segment.to_string()[8..24].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = NS_PER_DAY;

    fn backup(label: &str, backup_type: BackupType, stop_day: i64) -> BackupFacts {
        BackupFacts {
            label: label.into(),
            backup_type,
            stop_unix_ns: stop_day * DAY,
        }
    }

    fn history() -> Vec<BackupFacts> {
        use BackupType::{Full, Incremental};
        vec![
            backup("20261101-000000F", Full, 1),
            backup("20261102-000000I", Incremental, 2),
            backup("20261108-000000F", Full, 8),
            backup("20261109-000000I", Incremental, 9),
            backup("20261110-000000I", Incremental, 10),
            backup("20261115-000000F", Full, 15),
        ]
    }

    fn expired(retention: Retention, now_day: i64) -> Vec<String> {
        choose_expired(&history(), retention, now_day * DAY)
            .into_iter()
            .collect()
    }

    #[test]
    fn count_keeps_newest_full_backups_with_their_incrementals() {
        let two = Retention {
            full: Some(2),
            days: None,
        };
        assert_eq!(expired(two, 16), ["20261101-000000F", "20261102-000000I"]);
        let one = Retention {
            full: Some(1),
            days: None,
        };
        assert_eq!(expired(one, 16).len(), 5);
        let many = Retention {
            full: Some(10),
            days: None,
        };
        assert!(expired(many, 16).is_empty());
    }

    #[test]
    fn age_keeps_the_newest_set_older_than_the_window() {
        // Window of 5 days at day 16 starts on day 11: the set of day 8 is needed to restore
        // to day 11..15, the set of day 1 is not.
        let five = Retention {
            full: None,
            days: Some(5),
        };
        assert_eq!(expired(five, 16), ["20261101-000000F", "20261102-000000I"]);
        // Window starting on day 7: the full of day 8 ended after it, keep everything.
        assert!(expired(
            Retention {
                full: None,
                days: Some(9)
            },
            16
        )
        .is_empty());
        // Far in the future only the newest set is left.
        assert_eq!(
            expired(
                Retention {
                    full: None,
                    days: Some(1)
                },
                100
            )
            .len(),
            5
        );
    }

    #[test]
    fn both_rules_must_allow_expiry_and_no_rule_expires_nothing() {
        let both = Retention {
            full: Some(1),
            days: Some(9),
        };
        assert!(expired(both, 16).is_empty());
        assert!(expired(Retention::default(), 1000).is_empty());
        // N = 0 is treated as 1: the newest set always stays.
        assert_eq!(
            expired(
                Retention {
                    full: Some(0),
                    days: None
                },
                16
            )
            .len(),
            5
        );
    }

    #[tokio::test]
    async fn backups_wait_only_for_a_fresh_expire_lock() {
        use crate::repository::OpenMode;
        let dir = tempfile::tempdir().unwrap();
        let mode = OpenMode::ForCluster {
            system_identifier: 1,
            compress_level: 3,
        };
        let repository = Repository::open(dir.path().to_str().unwrap(), None, mode)
            .await
            .unwrap();
        wait_for_pack_collection(&repository).await.unwrap();

        let lock = CollectionLock::take(&repository).await.unwrap();
        let waiting = tokio::spawn({
            let repository = repository.clone();
            async move { wait_for_pack_collection(&repository).await }
        });
        let blocked = tokio::time::timeout(Duration::from_millis(300), async {
            while !waiting.is_finished() {
                tokio::task::yield_now().await;
            }
        });
        assert!(
            blocked.await.is_err(),
            "a backup went ahead while expire held its lock"
        );
        lock.release().await;
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();

        // A lock a killed expire left behind stops blocking once stale.
        let stale = CollectionLock::take(&repository).await.unwrap();
        let path = dir.path().join(&stale.key);
        let old = SystemTime::now() - EXPIRE_LOCK_STALE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            wait_for_pack_collection(&repository),
        )
        .await
        .unwrap()
        .unwrap();
    }

    #[test]
    fn only_markers_older_than_the_stale_limit_are_a_killed_backups() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(!marker_is_stale(now, now));
        assert!(!marker_is_stale(
            now - MARKER_STALE + Duration::from_secs(1),
            now
        ));
        assert!(marker_is_stale(now - MARKER_STALE, now));
        assert!(marker_is_stale(now - MARKER_STALE * 100, now));
        // Modified after "now" (the listing raced a refresh): running.
        assert!(!marker_is_stale(now + MARKER_STALE * 2, now));
        // A live backup refreshes many times within the limit.
        assert!(MARKER_STALE >= crate::marker::MARKER_REFRESH_INTERVAL * 10);
    }

    #[tokio::test]
    async fn the_lock_reads_the_storage_clock() {
        use crate::repository::OpenMode;
        let dir = tempfile::tempdir().unwrap();
        let mode = OpenMode::ForCluster {
            system_identifier: 1,
            compress_level: 3,
        };
        let repository = Repository::open(dir.path().to_str().unwrap(), None, mode)
            .await
            .unwrap();
        let lock = CollectionLock::take(&repository).await.unwrap();
        let first = lock.refresh().await.unwrap();
        let mtime = std::fs::metadata(dir.path().join(&lock.key))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            first, mtime,
            "a local repository's clock is its files' mtime"
        );
        assert!(lock.refresh().await.unwrap() >= first);
        lock.release().await;
    }

    #[test]
    fn positions_order_segments_across_timelines() {
        let a: SegmentName = "0000000200000000000000FF".parse().unwrap();
        let b: SegmentName = "000000010000000100000000".parse().unwrap();
        assert!(position(&a) < position(&b));
    }
}
