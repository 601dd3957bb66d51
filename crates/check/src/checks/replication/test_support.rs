//! Helpers the replication group's tests share: unique object names, a lab cluster of the test's
//! own (for tests that change server-wide settings, stop nodes or need replicas), and cleanup of
//! replication slots a test creates on a shared server.

use pgdbre_lab::{Cluster, LabOptions, Node, PgInstall};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test (in this or another test process) uses: `<prefix>_<pid>_<n>_<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Starts a cluster of the test's own with `replicas` streaming replicas and extra `settings`;
/// it stops and is removed when dropped.
pub fn own_cluster(replicas: usize, settings: &[(&str, &str)]) -> Cluster {
    let mut options = LabOptions::new(PgInstall::for_tests())
        .replicas(replicas)
        .name("pgdbre-replication-test");
    for (name, value) in settings {
        options = options.setting(name, value);
    }
    Cluster::start(options).expect("start a lab cluster of the test's own")
}

/// Writes about `rows` rows of WAL-logged data in a new table `table` on `node`.
pub fn write_wal(node: &Node, table: &str, rows: u32) {
    node.psql(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (id int8, payload text);
         INSERT INTO {table} SELECT g, repeat('x', 100) FROM generate_series(1, {rows}) g;"
    ))
    .expect("write WAL on the primary");
}

/// A replication slot that is dropped again when this value is.
pub struct SlotGuard<'a> {
    pub node: &'a Node,
    pub name: String,
}

impl<'a> SlotGuard<'a> {
    /// Creates a physical slot that reserves WAL at once (`immediately_reserve`).
    pub fn physical(node: &'a Node, name: &str) -> SlotGuard<'a> {
        node.psql(&format!(
            "SELECT pg_create_physical_replication_slot('{name}', true);"
        ))
        .expect("create a physical replication slot");
        SlotGuard {
            node,
            name: name.to_string(),
        }
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        // Best effort: the slot may already be gone with its cluster.
        let _ = self.node.psql(&format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{}';",
            self.name
        ));
    }
}
