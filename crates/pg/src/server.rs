//! What the server is and can do, detected once per connection.

/// A PostgreSQL server version as `server_version_num` (e.g. 150018, 180006).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32);

impl ServerVersion {
    /// The major version (15, 18, ...).
    pub fn major(self) -> u32 {
        self.0 / 10000
    }
}

/// Facts about the connected server and role that checks and collectors branch on.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: ServerVersion,
    pub in_recovery: bool,
    pub is_superuser: bool,
    /// Member of `pg_monitor` (or superuser): can read other sessions' queries and stats.
    pub has_pg_monitor: bool,
    pub database: String,
    pub user: String,
}

impl ServerInfo {
    /// `pg_stat_io` exists (PostgreSQL 16+).
    pub fn has_pg_stat_io(&self) -> bool {
        self.version.major() >= 16
    }
    /// Checkpoint statistics live in `pg_stat_checkpointer` (PostgreSQL 17+).
    pub fn has_pg_stat_checkpointer(&self) -> bool {
        self.version.major() >= 17
    }
}
