//! Helpers for integration tests: one shared cluster per test binary, and a fresh database per
//! test so tests running in parallel on it never see each other's objects.
//!
//! Use the shared cluster for tests that only read, or that keep to their own database; start a
//! private [`Cluster`] for anything that stops servers, changes settings or fills the disk.

use crate::cluster::{Cluster, LabOptions};
use crate::install::PgInstall;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SHARED: OnceLock<Cluster> = OnceLock::new();

/// The test binary's shared cluster: a primary and one streaming replica of
/// [`PgInstall::for_tests`], started on first use and stopped and removed at process exit.
///
/// # Panics
/// When the cluster cannot start; the message carries the server log.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(|| {
        let options = LabOptions::new(PgInstall::for_tests())
            .replicas(1)
            .name("pgdbre-test");
        let cluster = Cluster::start(options)
            .unwrap_or_else(|error| panic!("starting the shared test cluster: {error}"));
        // Statics are never dropped: stop the servers when the test binary exits instead.
        // SAFETY: registering a plain `extern "C"` function that takes no arguments.
        unsafe {
            libc::atexit(teardown_shared);
        }
        cluster
    })
}

extern "C" fn teardown_shared() {
    if let Some(cluster) = SHARED.get() {
        cluster.teardown();
    }
}

/// Creates an empty database with a name no other test (or test process) uses and returns the
/// name. It has `pg_stat_statements` like every lab database.
///
/// # Panics
/// When `CREATE DATABASE` fails.
pub fn fresh_database(cluster: &Cluster) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    cluster
        .primary()
        .psql(&format!("CREATE DATABASE {name};"))
        .unwrap_or_else(|error| panic!("creating database {name}: {error}"));
    name
}
