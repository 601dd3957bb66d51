//! Test helpers shared by this folder's integration tests: ways to age a lab server quickly.

use pgdbre_lab::Node;

/// Consumes `count` transaction ids in database `db`, each in its own committed transaction,
/// so ages measured against `datfrozenxid`, `relfrozenxid` or a held xmin grow by `count`.
pub fn burn_xids(node: &Node, db: &str, count: u32) {
    let sql = format!(
        "SET synchronous_commit = off;\n\
         DO $$ BEGIN FOR i IN 1..{count} LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;"
    );
    node.psql_db(db, &sql)
        .unwrap_or_else(|error| panic!("burning {count} xids in {db}: {error}"));
}

/// Rolls back a prepared transaction when dropped, also while a failed assertion unwinds, so
/// it neither holds back the xmin horizon nor blocks dropping its database.
pub struct PreparedTransaction<'a> {
    pub node: &'a Node,
    pub db: String,
    pub gid: String,
}

impl<'a> PreparedTransaction<'a> {
    /// Prepares a transaction called `gid` in `db` that has an xid (it creates a table).
    pub fn prepare(node: &'a Node, db: &str, gid: &str) -> Self {
        node.psql_db(
            db,
            &format!("BEGIN; CREATE TABLE {gid}_table (id int); PREPARE TRANSACTION '{gid}';"),
        )
        .unwrap_or_else(|error| panic!("preparing transaction {gid}: {error}"));
        PreparedTransaction {
            node,
            db: db.to_string(),
            gid: gid.to_string(),
        }
    }
}

impl Drop for PreparedTransaction<'_> {
    fn drop(&mut self) {
        let _ = self
            .node
            .psql_db(&self.db, &format!("ROLLBACK PREPARED '{}';", self.gid));
    }
}
