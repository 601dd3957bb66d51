//! Real PostgreSQL clusters on free ports in temp (or given) directories.
//!
//! One harness for `pgdbre lab`, every integration test and the benchmarks: a [`Cluster`] is a
//! primary plus N streaming replicas started from an installed PostgreSQL ([`PgInstall`]), set up
//! like a healthy production server (data checksums, SCRAM authentication, TLS, WAL archiving,
//! physical replication slots, `pg_stat_statements`) so that the health-check catalog stays quiet
//! against it. Everything here is blocking; tests need no async runtime.
//!
//! PostgreSQL refuses to run as root, so when this process is root every server-side program
//! (`initdb`, `pg_ctl`, `pg_basebackup`) runs as the `postgres` OS user via `runuser`, while
//! clients (`psql`) run as the caller and authenticate with the generated password file.
//!
//! Tests that only read, or isolate themselves in their own database, share one cluster per test
//! binary through [`testing::shared`]; tests that break things start their own [`Cluster`], which
//! stops its servers and removes its directory when dropped, also while unwinding from a panic.

mod cluster;
mod error;
mod install;
mod node;
mod pgbouncer;
mod process;
pub mod restored;
mod s3;
mod session;
pub mod testing;
mod tls;

pub use cluster::{Cluster, LabOptions, ReplicaStatus};
pub use error::LabError;
pub use install::PgInstall;
pub use node::{Node, Role, StopMode};
pub use pgbouncer::Pgbouncer;
pub use s3::S3Server;
pub use session::BackgroundSession;

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, or fails after `timeout` with an error naming `what`.
///
/// The interval starts at 5 ms and grows to 100 ms, so fast conditions are seen quickly without
/// spinning on slow ones. Use this instead of sleeping: a sleep is either too short on a loaded
/// machine or wastes time on an idle one.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, LabError> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(value) = f() {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LabError::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}
