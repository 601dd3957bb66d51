//! Test helpers shared by this group's tests: seeding a fresh database on the shared lab server
//! and reading a finding's evidence.

use crate::Finding;
use pgdbre_lab::testing;

/// Runs `sql` in a fresh database of the shared lab server (failing the test with `what` if it
/// fails) and returns that database's DSN.
pub fn seeded_database(sql: &str, what: &str) -> String {
    let cluster = testing::shared();
    let db = testing::fresh_database(cluster);
    cluster
        .primary()
        .psql_db(&db, sql)
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    cluster.primary().dsn_for(&db)
}

/// The finding whose evidence `key` is the string `value`, if any.
pub fn finding_about(findings: &[Finding], key: &str, value: &str) -> Option<Finding> {
    findings
        .iter()
        .find(|f| text(f, key) == Some(value))
        .cloned()
}

/// Evidence `key` as a string.
pub fn text<'f>(finding: &'f Finding, key: &str) -> Option<&'f str> {
    finding.evidence(key).and_then(|v| v.as_str())
}

/// Evidence `key` as an integer.
pub fn integer(finding: &Finding, key: &str) -> Option<i64> {
    finding.evidence(key).and_then(|v| v.as_i64())
}

/// Evidence `key` as a number.
pub fn number(finding: &Finding, key: &str) -> Option<f64> {
    finding.evidence(key).and_then(|v| v.as_f64())
}
