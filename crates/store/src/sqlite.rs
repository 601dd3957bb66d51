//! The embedded store: one SQLite file in WAL mode.

use crate::drills;
use crate::{
    bound_micros, Batch, DrillRecord, Minute, ProbeTotals, Range, Store, StoreError,
    DEFAULT_RETENTION_DAYS,
};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS probe_minute (
  server TEXT NOT NULL,
  probe TEXT NOT NULL,
  minute INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  PRIMARY KEY (server, probe, minute)
);
CREATE INDEX IF NOT EXISTS probe_minute_by_minute ON probe_minute (minute);
CREATE TABLE IF NOT EXISTS probe_bucket (
  server TEXT NOT NULL,
  probe TEXT NOT NULL,
  minute INTEGER NOT NULL,
  le_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (server, probe, minute, le_us)
);
CREATE INDEX IF NOT EXISTS probe_bucket_by_minute ON probe_bucket (minute);
CREATE TABLE IF NOT EXISTS lag_minute (
  server TEXT NOT NULL,
  standby TEXT NOT NULL,
  minute INTEGER NOT NULL,
  max_lag REAL NOT NULL,
  PRIMARY KEY (server, standby, minute)
);
CREATE INDEX IF NOT EXISTS lag_minute_by_minute ON lag_minute (minute);
";

/// How long a write waits for another writer before the store reports it locked.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite state store.
pub struct SqliteStore {
    path: PathBuf,
    connection: Connection,
    retention_minutes: i64,
}

impl SqliteStore {
    /// Opens (creating the file and its directory when missing) a store for writing.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let connection = Connection::open(path).map_err(|e| classify(path, e))?;
        // SQLite silently opens a file this user may not write read-only; say so now rather
        // than at the first write, minutes into `serve`.
        if connection
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| classify(path, e))?
        {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        let store = SqliteStore::with(path, connection)?;
        store
            .connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| classify(path, e))?;
        store
            .connection
            .execute_batch(SCHEMA)
            .map_err(|e| classify(path, e))?;
        store
            .connection
            .execute_batch(drills::SCHEMA)
            .map_err(|e| classify(path, e))?;
        Ok(store)
    }

    /// Opens an existing store for reading only; a missing file is [`StoreError::Missing`].
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        let store = SqliteStore::with(path, connection)?;
        // Fails clearly now, not at the first query, when the file is not a store.
        store
            .connection
            .query_row("SELECT count(*) FROM probe_minute", [], |_| Ok(()))
            .map_err(|e| classify(path, e))?;
        Ok(store)
    }

    fn with(path: &Path, connection: Connection) -> Result<SqliteStore, StoreError> {
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| classify(path, e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            connection,
            retention_minutes: i64::from(DEFAULT_RETENTION_DAYS) * 1440,
        })
    }

    /// Keeps `days` of samples instead of the default.
    pub fn with_retention_days(mut self, days: u32) -> SqliteStore {
        self.retention_minutes = i64::from(days.max(1)) * 1440;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, error: rusqlite::Error) -> StoreError {
        classify(&self.path, error)
    }
}

/// Maps SQLite errors to messages that say what to do.
fn classify(path: &Path, error: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path }
        }
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => StoreError::Open {
            path,
            message: error.to_string(),
        },
        Some(ErrorCode::NotADatabase) => StoreError::Open {
            path,
            message: "not a pgdbre state store (not an SQLite database)".into(),
        },
        _ => StoreError::Other {
            path,
            message: error.to_string(),
        },
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn record(&mut self, batch: &Batch, now: Minute) -> Result<(), StoreError> {
        let cutoff = now - self.retention_minutes;
        let path = self.path.clone();
        let tx = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&path, e))?;
        {
            let mut minute = tx
                .prepare_cached(
                    "INSERT INTO probe_minute (server, probe, minute, attempts, errors) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (server, probe, minute) DO UPDATE SET \
                     attempts = attempts + excluded.attempts, errors = errors + excluded.errors",
                )
                .map_err(|e| classify(&path, e))?;
            let mut bucket = tx
                .prepare_cached(
                    "INSERT INTO probe_bucket (server, probe, minute, le_us, count) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (server, probe, minute, le_us) DO UPDATE SET \
                     count = count + excluded.count",
                )
                .map_err(|e| classify(&path, e))?;
            let mut lag = tx
                .prepare_cached(
                    "INSERT INTO lag_minute (server, standby, minute, max_lag) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (server, standby, minute) DO UPDATE SET \
                     max_lag = max(max_lag, excluded.max_lag)",
                )
                .map_err(|e| classify(&path, e))?;
            for p in batch.probes.iter().filter(|p| p.minute >= cutoff) {
                minute
                    .execute(params![
                        p.server,
                        p.probe,
                        p.minute,
                        to_i64(p.attempts),
                        to_i64(p.errors)
                    ])
                    .map_err(|e| classify(&path, e))?;
                for (bound, count) in &p.within {
                    bucket
                        .execute(params![
                            p.server,
                            p.probe,
                            p.minute,
                            bound_micros(*bound),
                            to_i64(*count)
                        ])
                        .map_err(|e| classify(&path, e))?;
                }
            }
            for l in batch.lags.iter().filter(|l| l.minute >= cutoff) {
                lag.execute(params![l.server, l.standby, l.minute, l.max_lag_seconds])
                    .map_err(|e| classify(&path, e))?;
            }
            for table in ["probe_minute", "probe_bucket", "lag_minute"] {
                tx.execute(&format!("DELETE FROM {table} WHERE minute < ?1"), [cutoff])
                    .map_err(|e| classify(&path, e))?;
            }
        }
        tx.commit().map_err(|e| classify(&path, e))
    }

    fn probe_totals(
        &self,
        range: &Range<'_>,
        probe: &str,
        bound: Option<f64>,
    ) -> Result<ProbeTotals, StoreError> {
        let (attempts, errors): (i64, i64) = self
            .connection
            .query_row(
                "SELECT coalesce(sum(attempts), 0), coalesce(sum(errors), 0) FROM probe_minute \
                 WHERE probe = ?1 AND minute BETWEEN ?2 AND ?3 AND (?4 IS NULL OR server = ?4)",
                params![probe, range.from, range.to, range.server],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let within: i64 = match bound {
            None => 0,
            Some(bound) => self
                .connection
                .query_row(
                    "SELECT coalesce(sum(count), 0) FROM probe_bucket \
                     WHERE probe = ?1 AND minute BETWEEN ?2 AND ?3 \
                     AND (?4 IS NULL OR server = ?4) AND le_us = ?5",
                    params![
                        probe,
                        range.from,
                        range.to,
                        range.server,
                        bound_micros(bound)
                    ],
                    |row| row.get(0),
                )
                .map_err(|e| self.err(e))?,
        };
        Ok(ProbeTotals {
            attempts: attempts.max(0) as u64,
            errors: errors.max(0) as u64,
            within: within.max(0) as u64,
        })
    }

    fn lag_minutes(&self, range: &Range<'_>) -> Result<Vec<(Minute, f64)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT minute, max(max_lag) FROM lag_minute \
                 WHERE minute BETWEEN ?1 AND ?2 AND (?3 IS NULL OR server = ?3) \
                 GROUP BY minute ORDER BY minute",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![range.from, range.to, range.server], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn latest_minute(&self) -> Result<Option<Minute>, StoreError> {
        self.connection
            .query_row(
                "SELECT max(m) FROM (SELECT max(minute) AS m FROM probe_minute \
                 UNION ALL SELECT max(minute) FROM lag_minute)",
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    fn record_drill(&mut self, drill: &DrillRecord) -> Result<i64, StoreError> {
        drills::insert(&self.connection, drill).map_err(|e| self.err(e))
    }

    fn drills(&self, from: i64, to: i64) -> Result<Vec<DrillRecord>, StoreError> {
        drills::finished_between(&self.connection, from, to).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LagMinute, ProbeMinute};

    fn probe(minute: Minute, attempts: u64, errors: u64, within_40ms: u64) -> ProbeMinute {
        ProbeMinute {
            server: "db1:5432/app".into(),
            probe: "read".into(),
            minute,
            attempts,
            errors,
            within: vec![(0.04, within_40ms), (0.1, attempts - errors)],
        }
    }

    fn all(from: Minute, to: Minute) -> Range<'static> {
        Range {
            from,
            to,
            server: None,
        }
    }

    #[test]
    fn aggregates_per_minute_and_sums_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let batch = Batch {
            probes: vec![probe(100, 10, 1, 8), probe(101, 5, 0, 5)],
            lags: vec![LagMinute {
                server: "s".into(),
                standby: "s".into(),
                minute: 100,
                max_lag_seconds: 0.5,
            }],
        };
        store.record(&batch, 101).unwrap();
        // The same minute again adds to the counts; the lag keeps the maximum.
        let again = Batch {
            probes: vec![probe(101, 5, 2, 1)],
            lags: vec![
                LagMinute {
                    server: "s".into(),
                    standby: "s".into(),
                    minute: 100,
                    max_lag_seconds: 0.2,
                },
                LagMinute {
                    server: "t".into(),
                    standby: "t".into(),
                    minute: 101,
                    max_lag_seconds: 3.0,
                },
            ],
        };
        store.record(&again, 101).unwrap();
        let totals = store
            .probe_totals(&all(100, 101), "read", Some(0.04))
            .unwrap();
        assert_eq!(
            totals,
            ProbeTotals {
                attempts: 20,
                errors: 3,
                within: 14
            }
        );
        let only_101 = store
            .probe_totals(&all(101, 101), "read", Some(0.1))
            .unwrap();
        assert_eq!(only_101.within, 8);
        assert_eq!(
            store.probe_totals(&all(100, 101), "commit", None).unwrap(),
            ProbeTotals::default()
        );
        let other = Range {
            from: 0,
            to: 200,
            server: Some("elsewhere"),
        };
        assert_eq!(
            store.probe_totals(&other, "read", None).unwrap().attempts,
            0
        );
        assert_eq!(
            store.lag_minutes(&all(0, 200)).unwrap(),
            vec![(100, 0.5), (101, 3.0)]
        );
        assert_eq!(store.latest_minute().unwrap(), Some(101));
        drop(store);
        // Written samples survive reopening, also read-only.
        let reader = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(
            reader
                .probe_totals(&all(0, 200), "read", None)
                .unwrap()
                .attempts,
            20
        );
    }

    #[test]
    fn prunes_beyond_retention_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap().with_retention_days(1);
        let day = 1440;
        store
            .record(
                &Batch {
                    probes: vec![probe(10, 1, 0, 1), probe(10 + day, 2, 0, 2)],
                    lags: vec![],
                },
                10 + day,
            )
            .unwrap();
        assert_eq!(
            store
                .probe_totals(&all(0, 5 * day), "read", None)
                .unwrap()
                .attempts,
            3
        );
        // A day later the first minute is out of the retention and gone.
        store.record(&Batch::default(), 11 + day).unwrap();
        assert_eq!(
            store
                .probe_totals(&all(0, 5 * day), "read", Some(0.04))
                .unwrap(),
            ProbeTotals {
                attempts: 2,
                errors: 0,
                within: 2
            }
        );
        // Samples already older than the retention are not written at all.
        store
            .record(
                &Batch {
                    probes: vec![probe(5, 7, 0, 7)],
                    lags: vec![],
                },
                11 + day,
            )
            .unwrap();
        assert_eq!(
            store
                .probe_totals(&all(0, 5 * day), "read", None)
                .unwrap()
                .attempts,
            2
        );
    }

    #[test]
    fn read_only_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store
            .record(
                &Batch {
                    probes: vec![probe(1, 1, 0, 1)],
                    lags: vec![],
                },
                1,
            )
            .unwrap();
        drop(store);
        // Opening with a read-only connection, then writing: what a read-only file gives even
        // as root (who ignores file modes).
        let connection =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut store = SqliteStore::with(&path, connection).unwrap();
        let error = store
            .record(
                &Batch {
                    probes: vec![probe(2, 1, 0, 1)],
                    lags: vec![],
                },
                2,
            )
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, StoreError::ReadOnly { .. }), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("hint:"), "{message}");
        // The earlier sample is still there.
        assert_eq!(
            store
                .probe_totals(&all(0, 10), "read", None)
                .unwrap()
                .attempts,
            1
        );
    }

    #[test]
    fn missing_or_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.db");
        let error = SqliteStore::open_read_only(&missing).err().unwrap();
        assert!(matches!(error, StoreError::Missing { .. }), "{error}");
        assert!(!missing.exists(), "reading must not create the store");
        let junk = dir.path().join("junk.db");
        std::fs::write(
            &junk,
            "this is not sqlite at all, not even close...........",
        )
        .unwrap();
        let error = SqliteStore::open_read_only(&junk).err().unwrap();
        assert!(error.to_string().contains("junk.db"), "{error}");
        let error = SqliteStore::open(&junk).err().unwrap();
        assert!(error.to_string().contains("junk.db"), "{error}");
    }

    #[test]
    fn a_second_writer_waits_then_reports_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut first = SqliteStore::open(&path).unwrap();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        first
            .connection
            .busy_timeout(Duration::from_millis(50))
            .unwrap();
        let error = first
            .record(
                &Batch {
                    probes: vec![probe(1, 1, 0, 1)],
                    lags: vec![],
                },
                1,
            )
            .unwrap_err();
        assert!(matches!(error, StoreError::Locked { .. }), "{error}");
        holder.execute_batch("ROLLBACK").unwrap();
    }
}
