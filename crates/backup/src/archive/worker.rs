//! The background worker of `wal push`: one process per spool that stores every `.ready` file
//! not yet acknowledged, `jobs` at a time and in archive order, while PostgreSQL's own calls
//! only wait for their acknowledgement. That keeps every compressor busy through a backlog,
//! where storing a batch per call leaves them idle between batches (pgBackRest's archive-async
//! does the same with its own background process).
//!
//! A call whose file is not acknowledged starts a worker unless one holds the spool's lock, then
//! waits for the file's `.ok` (stored) or `.error` (the worker could not) entry. When the worker
//! fails on it, exits without it or takes too long, the call stores the file itself, so errors
//! are still reported by the call PostgreSQL made and nothing is acknowledged that is not
//! durably stored. The worker exits when nothing is left to store.

use super::error::ArchiveError;
use super::name::{WalFileKind, WalFileName};
use super::push::{
    ack_name, acknowledged, error_name, open_repository, open_spool, push_ahead, PushOptions,
};
use super::ready::ready_files;
use super::spool::Spool;
use futures::StreamExt;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The spool entry a running worker holds locked (names starting with `.` are not entries).
const LOCK_ENTRY: &str = ".worker.lock";
/// How often a call waiting for the worker looks at the spool.
const POLL: Duration = Duration::from_millis(5);
/// How long a call waits for a live worker to store its file before storing it itself.
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// Files the worker takes per listing of `archive_status`: it lists again after each pass, so
/// files that became `.ready` meanwhile join in.
const PASS: usize = 64;

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Files stored and acknowledged.
    pub stored: usize,
    /// Files it could not store (left with an `.error` entry for their own call).
    pub failed: usize,
}

/// Runs the background worker for the spool of the WAL file at `path` (PostgreSQL's `%p` of the
/// call that started it): stores every `.ready` file of its `pg_wal` that is not acknowledged
/// yet, until none is left. Returns at once, having done nothing, when another worker holds the
/// spool.
pub async fn run_worker(path: &Path, options: &PushOptions) -> Result<WorkerSummary, ArchiveError> {
    let file = super::push::file_name_of(path)?;
    let (pg_wal, spool) = open_spool(path, options)?;
    let Some(_lock) = try_lock(&spool)? else {
        return Ok(WorkerSummary::default());
    };
    let repository = open_repository(path, &file, options).await?;
    let jobs = options.jobs.max(1);
    let slots = Semaphore::new(jobs);
    // A file stays `.ready` for a moment after its call consumed the acknowledgement: never
    // store a file twice in one worker's life.
    let mut tried: HashSet<String> = HashSet::new();
    let mut summary = WorkerSummary::default();
    loop {
        let pass: Vec<WalFileName> = ready_files(&pg_wal)
            .into_iter()
            .filter(|ready| {
                ready.kind() != WalFileKind::BackupHistory
                    && !tried.contains(ready.as_str())
                    && !spool.contains(&ack_name(ready.as_str()))
                    && !spool.contains(&error_name(ready.as_str()))
            })
            .take(PASS)
            .collect();
        if pass.is_empty() {
            break;
        }
        tried.extend(pass.iter().map(ToString::to_string));
        // Up to twice `jobs` files in flight: a file waiting for the storage has given its
        // slot to the next one.
        let stored: Vec<bool> = futures::stream::iter(pass)
            .map(|ready| push_ahead(&repository, &spool, &pg_wal, &slots, ready))
            .buffered(2 * jobs)
            .collect()
            .await;
        let ok = stored.iter().filter(|stored| **stored).count();
        summary.stored += ok;
        summary.failed += stored.len() - ok;
    }
    tracing::debug!(?summary, "wal push worker done");
    Ok(summary)
}

/// Has a background worker store `file` (at `path`): starts one with `command` unless one holds
/// the spool, then waits for it to acknowledge the file. `false` when it did not (it failed on
/// the file, exited without it, could not start, or took longer than [`WAIT_LIMIT`]): the
/// caller stores the file itself.
pub(super) async fn stored_in_background(
    command: &[OsString],
    spool: &Spool,
    file: &WalFileName,
    path: &Path,
) -> Result<bool, ArchiveError> {
    let mut started = match try_lock(spool)? {
        // No worker: start one (the lock is released first, for the worker to take).
        Some(lock) => {
            drop(lock);
            match spawn(command) {
                Ok(child) => Some(child),
                Err(error) => {
                    tracing::debug!(%error, "could not start the wal push worker");
                    return Ok(false);
                }
            }
        }
        None => None,
    };
    let ack = ack_name(file.as_str());
    let error = error_name(file.as_str());
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if spool.contains(&ack) {
            return acknowledged(spool, &ack, path).await;
        }
        if let Some(reason) = spool.read(&error) {
            spool.remove(&error);
            tracing::debug!(file = %file, reason = %String::from_utf8_lossy(&reason), "the wal push worker could not store it");
            return Ok(false);
        }
        // Our own worker counts as running until it exits, even before it takes the lock.
        let ours_running = started
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if !ours_running && try_lock(spool)?.is_some() {
            // Gone: it may have acknowledged the file just before exiting.
            return acknowledged(spool, &ack, path).await;
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The worker lock of `spool` if no worker holds it.
fn try_lock(spool: &Spool) -> Result<Option<File>, ArchiveError> {
    let path = spool.path(LOCK_ENTRY);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| ArchiveError::io("open", &path, error))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(ArchiveError::io("lock", &path, error)),
    }
}

/// Starts `command` (program, then arguments) detached from our standard streams: PostgreSQL
/// waits for the call, not for the worker, and must not get its output.
fn spawn(command: &[OsString]) -> std::io::Result<Child> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty worker command"))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_holds_the_spool_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "/repo").unwrap();
        let held = try_lock(&spool).unwrap().expect("free at first");
        assert!(
            try_lock(&spool).unwrap().is_none(),
            "a second worker got the lock"
        );
        drop(held);
        assert!(
            try_lock(&spool).unwrap().is_some(),
            "the lock outlived its worker"
        );
        assert!(
            spool.names().unwrap().is_empty(),
            "the lock shows as an entry"
        );
    }
}
