//! DR drill evidence: one row per `pgdbre drill`, passed or failed, kept as the audit trail that
//! recovery works and as the input of `restore_time` SLOs.
//!
//! Unlike the per-minute probe counts, drills are rare and are evidence, so they are never pruned.
//! The table is created with the rest of the schema (`CREATE TABLE IF NOT EXISTS`, so a store
//! written by an older pgdbre gains it on its next open for writing); a reader of such an older
//! store sees no drills rather than an error.

use rusqlite::{params, Connection, OptionalExtension, Row};

/// Schema of the drill evidence, applied when a store is opened for writing.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drill (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_unix_ms INTEGER NOT NULL,
  finished_unix_ms INTEGER NOT NULL,
  repository TEXT NOT NULL,
  backup_label TEXT,
  target TEXT NOT NULL,
  verdict TEXT NOT NULL,
  reasons TEXT NOT NULL,
  rto_seconds REAL,
  rpo_seconds REAL,
  rto_target_seconds REAL,
  rpo_target_seconds REAL,
  restore_seconds REAL,
  startup_seconds REAL,
  recovery_seconds REAL,
  smoke_seconds REAL,
  backup_stop_lsn TEXT,
  replay_lsn TEXT,
  recovered_to_unix_ms INTEGER,
  log_excerpt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drill_by_finish ON drill (finished_unix_ms);
";

/// One DR drill as stored. Times are Unix milliseconds; durations are seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrillRecord {
    /// Assigned by the store when recorded; ignored on write.
    pub id: i64,
    /// When the drill started.
    pub started_unix_ms: i64,
    /// When it finished (what time windows select on).
    pub finished_unix_ms: i64,
    /// The repository drilled (a location, never a key).
    pub repository: String,
    /// The backup restored, when the drill got as far as choosing one.
    pub backup_label: Option<String>,
    /// The recovery target as the user gave it: `latest`, `time 2026-11-25 18:00:00+00`, ...
    pub target: String,
    /// `pass` or `fail`.
    pub verdict: String,
    /// Why the drill failed, one sentence per line; empty for a pass.
    pub reasons: String,
    /// Recovery time: drill start to the first successful smoke query; `None` when it never got there.
    pub rto_seconds: Option<f64>,
    /// Recovery point: how far the recovered data lies behind the reference point.
    pub rpo_seconds: Option<f64>,
    /// The RTO the drill was judged against.
    pub rto_target_seconds: Option<f64>,
    /// The RPO the drill was judged against.
    pub rpo_target_seconds: Option<f64>,
    /// Phase: restoring the files.
    pub restore_seconds: Option<f64>,
    /// Phase: server start until it accepted connections.
    pub startup_seconds: Option<f64>,
    /// Phase: accepting connections until recovery ended.
    pub recovery_seconds: Option<f64>,
    /// Phase: the smoke queries.
    pub smoke_seconds: Option<f64>,
    /// The backup's stop LSN (the earliest point it can recover to).
    pub backup_stop_lsn: Option<String>,
    /// The last WAL position replayed.
    pub replay_lsn: Option<String>,
    /// The commit time the recovered data reaches.
    pub recovered_to_unix_ms: Option<i64>,
    /// The last lines of the drill server's log, secrets redacted.
    pub log_excerpt: String,
}

/// Inserts `drill` and returns its id.
pub(crate) fn insert(connection: &Connection, drill: &DrillRecord) -> rusqlite::Result<i64> {
    connection.execute(
        "INSERT INTO drill (started_unix_ms, finished_unix_ms, repository, backup_label, target, \
         verdict, reasons, rto_seconds, rpo_seconds, rto_target_seconds, rpo_target_seconds, \
         restore_seconds, startup_seconds, recovery_seconds, smoke_seconds, backup_stop_lsn, \
         replay_lsn, recovered_to_unix_ms, log_excerpt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            drill.started_unix_ms,
            drill.finished_unix_ms,
            drill.repository,
            drill.backup_label,
            drill.target,
            drill.verdict,
            drill.reasons,
            drill.rto_seconds,
            drill.rpo_seconds,
            drill.rto_target_seconds,
            drill.rpo_target_seconds,
            drill.restore_seconds,
            drill.startup_seconds,
            drill.recovery_seconds,
            drill.smoke_seconds,
            drill.backup_stop_lsn,
            drill.replay_lsn,
            drill.recovered_to_unix_ms,
            drill.log_excerpt,
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

/// The drills that finished in `from..=to` (Unix ms), oldest first; none when the store predates
/// the drill table.
pub(crate) fn finished_between(
    connection: &Connection,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<DrillRecord>> {
    let exists: Option<i64> = connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'drill'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut statement = connection.prepare_cached(
        "SELECT id, started_unix_ms, finished_unix_ms, repository, backup_label, target, verdict, \
         reasons, rto_seconds, rpo_seconds, rto_target_seconds, rpo_target_seconds, \
         restore_seconds, startup_seconds, recovery_seconds, smoke_seconds, backup_stop_lsn, \
         replay_lsn, recovered_to_unix_ms, log_excerpt \
         FROM drill WHERE finished_unix_ms BETWEEN ?1 AND ?2 ORDER BY finished_unix_ms, id",
    )?;
    let rows = statement.query_map(params![from, to], from_row)?;
    rows.collect()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<DrillRecord> {
    Ok(DrillRecord {
        id: row.get(0)?,
        started_unix_ms: row.get(1)?,
        finished_unix_ms: row.get(2)?,
        repository: row.get(3)?,
        backup_label: row.get(4)?,
        target: row.get(5)?,
        verdict: row.get(6)?,
        reasons: row.get(7)?,
        rto_seconds: row.get(8)?,
        rpo_seconds: row.get(9)?,
        rto_target_seconds: row.get(10)?,
        rpo_target_seconds: row.get(11)?,
        restore_seconds: row.get(12)?,
        startup_seconds: row.get(13)?,
        recovery_seconds: row.get(14)?,
        smoke_seconds: row.get(15)?,
        backup_stop_lsn: row.get(16)?,
        replay_lsn: row.get(17)?,
        recovered_to_unix_ms: row.get(18)?,
        log_excerpt: row.get(19)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{DrillRecord, SqliteStore, Store};

    fn drill(finished: i64, verdict: &str, rto: Option<f64>) -> DrillRecord {
        DrillRecord {
            started_unix_ms: finished - 10_000,
            finished_unix_ms: finished,
            repository: "/var/lib/pgdbre/repo".into(),
            backup_label: Some("20261125-180000F".into()),
            target: "latest".into(),
            verdict: verdict.into(),
            rto_seconds: rto,
            replay_lsn: Some("0/5000148".into()),
            log_excerpt: "LOG:  database system is ready to accept connections".into(),
            ..DrillRecord::default()
        }
    }

    #[test]
    fn drills_are_recorded_and_selected_by_finish_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let first = store
            .record_drill(&drill(1_000_000, "pass", Some(9.5)))
            .unwrap();
        let second = store.record_drill(&drill(2_000_000, "fail", None)).unwrap();
        assert!(second > first);
        drop(store);
        let reader = SqliteStore::open_read_only(&path).unwrap();
        let all = reader.drills(i64::MIN, i64::MAX).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, first);
        assert_eq!(all[0].rto_seconds, Some(9.5));
        assert_eq!(all[0].replay_lsn.as_deref(), Some("0/5000148"));
        assert_eq!(all[1].verdict, "fail");
        assert_eq!(all[1].rto_seconds, None);
        let later = reader.drills(1_500_000, 3_000_000).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].id, second);
    }

    #[test]
    fn a_store_without_the_drill_table_reads_as_no_drills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let connection = rusqlite::Connection::open(&path).unwrap();
        // What a store written before drills existed has.
        connection
            .execute_batch("CREATE TABLE probe_minute (server TEXT, probe TEXT, minute INTEGER, attempts INTEGER, errors INTEGER);")
            .unwrap();
        drop(connection);
        let reader = SqliteStore::open_read_only(&path).unwrap();
        assert!(reader.drills(i64::MIN, i64::MAX).unwrap().is_empty());
    }
}
