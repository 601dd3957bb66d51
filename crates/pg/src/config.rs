//! Resolving a connection configuration (stub: replaced by the full libpq-faithful resolver).

use crate::PgError;
use std::fmt;

/// A resolved connection configuration.
#[derive(Clone)]
pub struct ConnConfig {
    pub(crate) inner: tokio_postgres::Config,
}

impl ConnConfig {
    /// Resolves `dsn` (conninfo or URI, or `None` for the environment's defaults) the way libpq does.
    pub fn resolve(dsn: Option<&str>) -> Result<Self, PgError> {
        let mut inner: tokio_postgres::Config = dsn
            .unwrap_or("")
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::InvalidDsn(e.to_string()))?;
        if inner.get_application_name().is_none() {
            inner.application_name("pgdbre");
        }
        Ok(Self { inner })
    }

    /// A short, secret-free name for the target: `host:port/dbname`.
    pub fn target(&self) -> String {
        let host = match self.inner.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.inner.get_ports().first().copied().unwrap_or(5432);
        let db = self.inner.get_dbname().unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }
}

impl fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnConfig({})", self.target())
    }
}

impl fmt::Display for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target())
    }
}
