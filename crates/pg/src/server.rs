//! What the server is and can do, detected once per connection.
//!
//! [`crate::Session::connect`] runs [`DETECT_QUERY`] once and keeps the answer, so checks and
//! collectors branch on [`ServerInfo`] instead of re-probing the catalog. The query uses only
//! functions and settings present in PostgreSQL 12–18.

/// A PostgreSQL server version as `server_version_num` (e.g. 150018, 180006).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32);

impl ServerVersion {
    /// The major version (15, 18, ...).
    pub fn major(self) -> u32 {
        self.0 / 10000
    }
    /// The minor version (the `18` in 15.18).
    pub fn minor(self) -> u32 {
        self.0 % 10000
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

/// Facts about the connected server and role that checks and collectors branch on.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `server_version_num`.
    pub version: ServerVersion,
    /// `pg_is_in_recovery()`: a standby (or a server replaying WAL).
    pub in_recovery: bool,
    /// The role is a superuser.
    pub is_superuser: bool,
    /// Member of `pg_monitor` (or superuser): can read other sessions' queries and stats.
    pub has_pg_monitor: bool,
    /// `current_database()`.
    pub database: String,
    /// `current_user`.
    pub user: String,
    /// `server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    pub version_string: String,
    /// Data checksums are enabled (`data_checksums`).
    pub data_checksums: bool,
    /// `transaction_read_only` of the new session (what `target_session_attrs` tests).
    pub read_only: bool,
    /// The role may start replication connections (`rolreplication`, or superuser).
    pub can_replicate: bool,
    /// `wal_level` (`minimal`, `replica` or `logical`).
    pub wal_level: String,
    /// The backend process id serving this session.
    pub backend_pid: i32,
}

/// The one query that fills [`ServerInfo`]; column order matches [`ServerInfo::from_row`].
pub(crate) const DETECT_QUERY: &str = "\
SELECT current_setting('server_version_num')::int4, \
       pg_catalog.pg_is_in_recovery(), \
       r.rolsuper, \
       r.rolsuper OR pg_catalog.pg_has_role(r.oid, 'pg_monitor', 'USAGE'), \
       pg_catalog.current_database()::text, \
       current_user::text, \
       current_setting('server_version'), \
       current_setting('data_checksums')::bool, \
       current_setting('transaction_read_only')::bool, \
       r.rolsuper OR r.rolreplication, \
       current_setting('wal_level'), \
       pg_catalog.pg_backend_pid() \
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user";

impl ServerInfo {
    /// Reads the row returned by [`DETECT_QUERY`].
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(ServerInfo {
            version: ServerVersion(row.try_get::<_, i32>(0)?.unsigned_abs()),
            in_recovery: row.try_get(1)?,
            is_superuser: row.try_get(2)?,
            has_pg_monitor: row.try_get(3)?,
            database: row.try_get(4)?,
            user: row.try_get(5)?,
            version_string: row.try_get(6)?,
            data_checksums: row.try_get(7)?,
            read_only: row.try_get(8)?,
            can_replicate: row.try_get(9)?,
            wal_level: row.try_get(10)?,
            backend_pid: row.try_get(11)?,
        })
    }

    /// `pg_stat_io` exists (PostgreSQL 16+).
    pub fn has_pg_stat_io(&self) -> bool {
        self.version.major() >= 16
    }
    /// Checkpoint statistics live in `pg_stat_checkpointer` (PostgreSQL 17+).
    pub fn has_pg_stat_checkpointer(&self) -> bool {
        self.version.major() >= 17
    }
    /// `pg_backup_start`/`pg_backup_stop` (15+) rather than `pg_start_backup`/`pg_stop_backup`.
    pub fn has_pg_backup_start(&self) -> bool {
        self.version.major() >= 15
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parts() {
        let version = ServerVersion(150018);
        assert_eq!(version.major(), 15);
        assert_eq!(version.minor(), 18);
        assert_eq!(version.to_string(), "15.18");
        assert!(ServerVersion(120000) < ServerVersion(180006));
    }
}
