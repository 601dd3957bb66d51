//! Test helpers shared by this folder's integration tests: ways to age a lab server quickly,
//! and short accessors for the evidence the tests assert on.

use crate::Finding;
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

/// The text evidence `key` of `finding`, if present and a string.
pub fn text<'f>(finding: &'f Finding, key: &str) -> Option<&'f str> {
    finding.evidence(key).and_then(|v| v.as_str())
}

/// The numeric evidence `key` of `finding`, if present and a number.
pub fn number(finding: &Finding, key: &str) -> Option<f64> {
    finding.evidence(key).and_then(|v| v.as_f64())
}

/// The integer evidence `key` of `finding`, if present and an integer.
pub fn integer(finding: &Finding, key: &str) -> Option<i64> {
    finding.evidence(key).and_then(|v| v.as_i64())
}

/// Matches findings whose integer evidence `key` is `value` (a pid, a root pid).
pub fn evidence_is(key: &'static str, value: impl Into<i64>) -> impl Fn(&Finding) -> bool {
    let value = value.into();
    move |finding| integer(finding, key) == Some(value)
}
