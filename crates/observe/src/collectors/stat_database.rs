//! `pg_stat_database_*` and `pg_stat_database_conflicts_*`, labelled `datid`, `datname`, with
//! postgres_exporter 0.11's names, help and types.

use super::{counter, families_from_rows, gauge, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatDatabase;

const COLUMNS: &[Column] = &[
    gauge("numbackends", "pg_stat_database_numbackends", "Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset."),
    counter("xact_commit", "pg_stat_database_xact_commit", "Number of transactions in this database that have been committed"),
    counter("xact_rollback", "pg_stat_database_xact_rollback", "Number of transactions in this database that have been rolled back"),
    counter("blks_read", "pg_stat_database_blks_read", "Number of disk blocks read in this database"),
    counter("blks_hit", "pg_stat_database_blks_hit", "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)"),
    counter("tup_returned", "pg_stat_database_tup_returned", "Number of rows returned by queries in this database"),
    counter("tup_fetched", "pg_stat_database_tup_fetched", "Number of rows fetched by queries in this database"),
    counter("tup_inserted", "pg_stat_database_tup_inserted", "Number of rows inserted by queries in this database"),
    counter("tup_updated", "pg_stat_database_tup_updated", "Number of rows updated by queries in this database"),
    counter("tup_deleted", "pg_stat_database_tup_deleted", "Number of rows deleted by queries in this database"),
    counter("conflicts", "pg_stat_database_conflicts", "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)"),
    counter("temp_files", "pg_stat_database_temp_files", "Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting."),
    counter("temp_bytes", "pg_stat_database_temp_bytes", "Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting."),
    counter("deadlocks", "pg_stat_database_deadlocks", "Number of deadlocks detected in this database"),
    counter("checksum_failures", "pg_stat_database_checksum_failures", "Number of data page checksum failures detected in this database"),
    counter("blk_read_time", "pg_stat_database_blk_read_time", "Time spent reading data file blocks by backends in this database, in milliseconds"),
    counter("blk_write_time", "pg_stat_database_blk_write_time", "Time spent writing data file blocks by backends in this database, in milliseconds"),
    counter("session_time", "pg_stat_database_session_time", "Time spent by database sessions in this database, in milliseconds"),
    counter("active_time", "pg_stat_database_active_time", "Time spent executing SQL statements in this database, in milliseconds"),
    counter("idle_in_transaction_time", "pg_stat_database_idle_in_transaction_time", "Time spent idling while in a transaction in this database, in milliseconds"),
    counter("sessions", "pg_stat_database_sessions", "Total number of sessions established to this database"),
    counter("sessions_abandoned", "pg_stat_database_sessions_abandoned", "Number of database sessions to this database that were terminated because connection to the client was lost"),
    counter("sessions_fatal", "pg_stat_database_sessions_fatal", "Number of database sessions to this database that were terminated by fatal errors"),
    counter("sessions_killed", "pg_stat_database_sessions_killed", "Number of database sessions to this database that were terminated by operator intervention"),
    counter("stats_reset", "pg_stat_database_stats_reset", "Time at which these statistics were last reset"),
];

const CONFLICT_COLUMNS: &[Column] = &[
    counter(
        "confl_tablespace",
        "pg_stat_database_conflicts_confl_tablespace",
        "Number of queries in this database that have been canceled due to dropped tablespaces",
    ),
    counter(
        "confl_lock",
        "pg_stat_database_conflicts_confl_lock",
        "Number of queries in this database that have been canceled due to lock timeouts",
    ),
    counter(
        "confl_snapshot",
        "pg_stat_database_conflicts_confl_snapshot",
        "Number of queries in this database that have been canceled due to old snapshots",
    ),
    counter(
        "confl_bufferpin",
        "pg_stat_database_conflicts_confl_bufferpin",
        "Number of queries in this database that have been canceled due to pinned buffers",
    ),
    counter(
        "confl_deadlock",
        "pg_stat_database_conflicts_confl_deadlock",
        "Number of queries in this database that have been canceled due to deadlocks",
    ),
];

/// Common to 12–18.
const BASE: &str = "datid::text AS datid, coalesce(datname, '')::text AS datname, \
    numbackends::float8 AS numbackends, xact_commit::float8 AS xact_commit, \
    xact_rollback::float8 AS xact_rollback, blks_read::float8 AS blks_read, \
    blks_hit::float8 AS blks_hit, tup_returned::float8 AS tup_returned, \
    tup_fetched::float8 AS tup_fetched, tup_inserted::float8 AS tup_inserted, \
    tup_updated::float8 AS tup_updated, tup_deleted::float8 AS tup_deleted, \
    conflicts::float8 AS conflicts, temp_files::float8 AS temp_files, \
    temp_bytes::float8 AS temp_bytes, deadlocks::float8 AS deadlocks, \
    checksum_failures::float8 AS checksum_failures, blk_read_time::float8 AS blk_read_time, \
    blk_write_time::float8 AS blk_write_time, \
    extract(epoch FROM stats_reset)::float8 AS stats_reset";

/// Session accounting arrived in PostgreSQL 14.
const SESSIONS: &str = ", session_time::float8 AS session_time, \
    active_time::float8 AS active_time, \
    idle_in_transaction_time::float8 AS idle_in_transaction_time, \
    sessions::float8 AS sessions, sessions_abandoned::float8 AS sessions_abandoned, \
    sessions_fatal::float8 AS sessions_fatal, sessions_killed::float8 AS sessions_killed";

const CONFLICTS_SQL: &str = "SELECT datid::text AS datid, datname::text AS datname, \
    confl_tablespace::float8 AS confl_tablespace, confl_lock::float8 AS confl_lock, \
    confl_snapshot::float8 AS confl_snapshot, confl_bufferpin::float8 AS confl_bufferpin, \
    confl_deadlock::float8 AS confl_deadlock \
    FROM pg_catalog.pg_stat_database_conflicts";

fn sql(major: u32) -> String {
    let sessions = if major >= 14 { SESSIONS } else { "" };
    format!("SELECT {BASE}{sessions} FROM pg_catalog.pg_stat_database")
}

#[async_trait]
impl Collector for StatDatabase {
    fn id(&self) -> &'static str {
        "stat-database"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_database`, `pg_stat_database_conflicts`: pg_stat_database_*, pg_stat_database_conflicts_confl_*"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let client = scrape.session.client();
        let main_sql = sql(scrape.major());
        let (rows, conflicts) = futures::try_join!(
            client.query(main_sql.as_str(), &[]),
            client.query(CONFLICTS_SQL, &[])
        )?;
        let mut families = families_from_rows(&rows, &["datid", "datname"], COLUMNS)?;
        families.extend(families_from_rows(
            &conflicts,
            &["datid", "datname"],
            CONFLICT_COLUMNS,
        )?);
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, label_values, major, seeded_database, value};

    #[tokio::test]
    async fn counts_commits_per_database() {
        let (database, dsn) = seeded_database(
            "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
            "write",
        );
        let families = collect(&StatDatabase, &dsn).await;
        let labels = [("datname", database.as_str())];
        assert!(value(&families, "pg_stat_database_xact_commit", &labels).unwrap() >= 1.0);
        assert!(value(&families, "pg_stat_database_numbackends", &labels).unwrap() >= 1.0);
        assert!(value(&families, "pg_stat_database_blks_hit", &labels).unwrap() > 0.0);
        assert_eq!(
            value(&families, "pg_stat_database_deadlocks", &labels),
            Some(0.0)
        );
        assert!(label_values(
            &families,
            "pg_stat_database_conflicts_confl_lock",
            "datname"
        )
        .contains(&database));
        let datids = label_values(&families, "pg_stat_database_tup_inserted", "datid");
        assert!(
            datids.iter().all(|d| d.parse::<u32>().is_ok()),
            "{datids:?}"
        );
        if major(&dsn).await >= 14 {
            assert!(value(&families, "pg_stat_database_sessions", &labels).is_some());
        }
    }
}
