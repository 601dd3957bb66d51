//! The `in-progress` marker of a running backup as a heartbeat: re-put every
//! [`MARKER_REFRESH_INTERVAL`], so `expire` can tell a live backup (whose packs it must not
//! collect) from one killed long ago (whose marker is stale after [`MARKER_STALE`]); and a lease,
//! so a backup that could not refresh for too long fails rather than write a manifest naming
//! packs an `expire` may have collected meanwhile.

use crate::error::BackupError;
use crate::expire::MARKER_STALE;
use crate::repository::{now_ns, Repository};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running backup re-puts its `in-progress` marker. `expire` takes a marker not
/// refreshed for [`MARKER_STALE`] (ten intervals) for a killed backup's, so several slow or
/// failed refreshes in a row never make a live backup look dead; one small PUT a minute costs
/// nothing next to a backup's packs.
pub(crate) const MARKER_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// A backup whose marker went this long without a refresh (the process was paused or
/// suspended, or the repository unreachable) fails instead of writing its manifest: had the gap
/// reached [`MARKER_STALE`], an `expire` could have taken it for killed and deleted packs it
/// uses. Half of [`MARKER_STALE`], the other half being margin for the manifest write.
const MARKER_LEASE: Duration = Duration::from_secs(MARKER_STALE.as_secs() / 2);

/// The body of a backup's `in-progress` marker.
pub(crate) fn marker_body(start_ns: i64, refreshed_ns: i64) -> bytes::Bytes {
    bytes::Bytes::from(format!(
        "{{\"pid\":{},\"start_unix_ns\":{start_ns},\"refreshed_unix_ns\":{refreshed_ns}}}",
        std::process::id()
    ))
}

/// A moment on both this host's clocks: the monotonic one does not advance while the machine
/// is suspended, the wall clock may be stepped; elapsed time is the larger of the two.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    monotonic: Instant,
    wall: std::time::SystemTime,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        Stamp {
            monotonic: Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        let wall = self.wall.elapsed().unwrap_or_default();
        self.monotonic.elapsed().max(wall)
    }
}

/// Whether the marker has been refreshed often enough since the backup began.
struct Lease {
    /// When the last successful refresh's put started (the marker's modification time on the
    /// storage is no earlier).
    refreshed: Stamp,
    /// The longest time the marker went without a refresh reached [`MARKER_LEASE`].
    lapsed: bool,
}

/// Re-puts a running backup's marker every [`MARKER_REFRESH_INTERVAL`] from a background task,
/// until [`Heartbeat::stop`] (or until dropped, if the backup's future is); [`Heartbeat::check`]
/// says whether the refreshes kept up.
pub(crate) struct Heartbeat {
    lease: Arc<Mutex<Lease>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts refreshing `marker` every `interval`; it was first written by a put that started
    /// at `written`.
    pub(crate) fn start(
        repository: &Repository,
        marker: &str,
        start_ns: i64,
        written: Stamp,
        interval: Duration,
    ) -> Heartbeat {
        let lease = Arc::new(Mutex::new(Lease {
            refreshed: written,
            lapsed: false,
        }));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (repository, marker, shared) = (repository.clone(), marker.to_string(), lease.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(interval) => {}
                }
                // A put is never cancelled half-way: one landing after the backup's final
                // delete would leave the marker behind.
                let started = Stamp::now();
                let body = marker_body(start_ns, now_ns());
                match repository.storage().put(&marker, body).await {
                    Ok(()) => {
                        let mut lease = shared.lock().expect("lease lock");
                        // Until this put landed the marker was as old as the previous one.
                        if lease.refreshed.elapsed() >= MARKER_LEASE {
                            lease.lapsed = true;
                        }
                        lease.refreshed = started;
                    }
                    Err(error) => tracing::warn!(
                        "could not refresh {marker}: {error}; retrying in {} s",
                        interval.as_secs()
                    ),
                }
            }
        });
        Heartbeat {
            lease,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Fails when the marker went [`MARKER_LEASE`] or longer without a refresh at any time
    /// since the backup began, including until now.
    pub(crate) fn check(&self) -> Result<(), BackupError> {
        let lease = self.lease.lock().expect("lease lock");
        if lease.lapsed || lease.refreshed.elapsed() >= MARKER_LEASE {
            return Err(BackupError::MarkerLapsed {
                seconds: MARKER_LEASE.as_secs(),
            });
        }
        Ok(())
    }

    /// Stops the refreshes; returns once none is in flight.
    pub(crate) async fn stop(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::warn!("the marker refresh task failed: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use crate::repository::OpenMode;

    #[tokio::test]
    async fn the_heartbeat_refreshes_the_marker_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mode = OpenMode::ForCluster {
            system_identifier: 1,
            compress_level: 3,
        };
        let repository = Repository::open(dir.path().to_str().unwrap(), None, mode)
            .await
            .unwrap();
        let marker = keys::in_progress_key("20261125-181500F");
        let storage = repository.storage().clone();
        storage.put(&marker, marker_body(1, 1)).await.unwrap();
        let heartbeat = Heartbeat::start(
            &repository,
            &marker,
            1,
            Stamp::now(),
            Duration::from_millis(20),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = storage.get(&marker).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["start_unix_ns"], 1);
            if body["refreshed_unix_ns"].as_i64().unwrap() > 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the marker was never refreshed");
            tokio::task::yield_now().await;
        }
        heartbeat.check().unwrap();
        // Once stopped, no refresh is in flight: a deleted marker stays deleted.
        heartbeat.stop().await;
        storage.delete(&marker).await.unwrap();
        assert_eq!(storage.size(&marker).await.unwrap(), None);
    }

    #[test]
    fn a_backup_fails_once_its_marker_could_have_gone_stale() {
        let lease = |refreshed_ago: Duration, lapsed: bool| Heartbeat {
            lease: Arc::new(Mutex::new(Lease {
                refreshed: Stamp {
                    monotonic: Instant::now(),
                    wall: std::time::SystemTime::now() - refreshed_ago,
                },
                lapsed,
            })),
            stop: None,
            task: None,
        };
        assert!(lease(MARKER_REFRESH_INTERVAL, false).check().is_ok());
        // The wall clock counts time suspended, which the monotonic one misses.
        assert!(matches!(
            lease(MARKER_LEASE, false).check(),
            Err(BackupError::MarkerLapsed { .. })
        ));
        // A gap earlier on fails the backup even after refreshes resumed.
        assert!(lease(Duration::ZERO, true).check().is_err());
        // The lease leaves margin before expire would take the marker for stale.
        assert!(MARKER_LEASE * 2 <= MARKER_STALE && MARKER_REFRESH_INTERVAL * 5 <= MARKER_LEASE);
    }
}
