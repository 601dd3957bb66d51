//! An open connection plus the server facts detected on it.

use crate::{ConnConfig, PgError, ServerInfo, ServerVersion};

/// An open connection and what it is connected to.
pub struct Session {
    client: tokio_postgres::Client,
    info: ServerInfo,
    target: String,
}

impl Session {
    /// Opens a connection and detects the server's capabilities.
    pub async fn connect(config: &ConnConfig) -> Result<Self, PgError> {
        let target = config.target();
        let (client, connection) = config
            .inner
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| PgError::Connect { target: target.clone(), message: e.to_string() })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int4, pg_is_in_recovery(), \
                 r.rolsuper, pg_has_role('pg_monitor', 'USAGE'), current_database(), current_user \
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| PgError::Query { target: target.clone(), message: e.to_string() })?;
        let info = ServerInfo {
            version: ServerVersion(row.get::<_, i32>(0) as u32),
            in_recovery: row.get(1),
            is_superuser: row.get(2),
            has_pg_monitor: row.get::<_, bool>(2) || row.get::<_, bool>(3),
            database: row.get(4),
            user: row.get(5),
        };
        Ok(Self { client, info, target })
    }

    /// The underlying client.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
    /// What the server is and can do.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }
    /// A secret-free name for the target.
    pub fn target(&self) -> &str {
        &self.target
    }
}
