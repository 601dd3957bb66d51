//! A fixed pool of `--jobs` OS threads for the CPU work of a backup (page checks, hashing,
//! compression). Jobs queue up and each thread takes the next one the moment it finishes the
//! last, so the cores never wait on the async runtime: with a semaphore of `--jobs` permits
//! around `spawn_blocking`, every chunk paid a few thread hand-offs between one compression
//! and the next, and two cores were busy only ~80 % of a backup.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

/// The pool; dropping it lets queued jobs finish and joins the threads.
pub struct CpuPool {
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl CpuPool {
    /// A pool of `threads` threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<CpuPool> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..threads.max(1))
            .map(|index| {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("pgdbre-cpu-{index}"))
                    .spawn(move || work(&receiver))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(CpuPool {
            sender: Some(sender),
            threads,
        })
    }

    /// Runs `job` on a pool thread and returns its result; `None` if the job panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver is gone only when the caller stopped waiting.
            let _ = done.send(job());
        });
        self.sender.as_ref()?.send(job).ok()?;
        result.await.ok()
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, not while running it.
        let next = receiver.lock().map(|receiver| receiver.recv());
        match next {
            Ok(Ok(job)) => {
                // A panicking job drops its result sender: the caller sees `None`.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            _ => return,
        }
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        self.sender.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_and_return_their_results() {
        let pool = CpuPool::new(2).unwrap();
        let results = futures::future::join_all((0..16u64).map(|n| pool.run(move || n * n))).await;
        let squares: Vec<u64> = results.into_iter().map(Option::unwrap).collect();
        assert_eq!(squares, (0..16u64).map(|n| n * n).collect::<Vec<_>>());
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("pgdbre-cpu-"));
    }

    #[tokio::test]
    async fn a_panicking_job_yields_none_and_the_pool_goes_on() {
        let pool = CpuPool::new(1).unwrap();
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }
}
