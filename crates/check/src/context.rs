//! What a check sees while it runs: the session, the server's facts and its resolved thresholds.

use crate::{CheckError, CheckMeta, Severity};
use pgdbre_pg::{ServerInfo, Session};
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// The per-check view of a target: its connection and its thresholds (defaults + overrides).
pub struct Context<'a> {
    session: &'a Session,
    meta: &'static CheckMeta,
    overrides: Option<&'a BTreeMap<String, f64>>,
}

impl<'a> Context<'a> {
    /// A context for `meta` on `session`, with threshold overrides for this check (if any).
    pub fn new(
        session: &'a Session,
        meta: &'static CheckMeta,
        overrides: Option<&'a BTreeMap<String, f64>>,
    ) -> Self {
        Self {
            session,
            meta,
            overrides,
        }
    }

    /// Server version, recovery state and the role's privileges, detected once per connection.
    pub fn info(&self) -> &ServerInfo {
        self.session.info()
    }

    /// Runs a query; a permission error becomes [`CheckError::InsufficientPrivilege`].
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, CheckError> {
        Ok(self.session.client().query(sql, params).await?)
    }

    /// Runs a query expected to return exactly one row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, CheckError> {
        Ok(self.session.client().query_one(sql, params).await?)
    }

    /// The value of the check's parameter `name`: the override if given, else the default.
    ///
    /// # Panics
    /// If the check did not declare `name` in its metadata (a programming error caught by tests).
    pub fn param(&self, name: &str) -> f64 {
        if let Some(v) = self.overrides.and_then(|o| o.get(name)) {
            return *v;
        }
        match self.meta.param(name) {
            Some(p) => p.default,
            None => panic!("check {} reads undeclared parameter {name}", self.meta.id),
        }
    }

    /// Severity of a value where higher is worse, against the `warning` and `critical` params.
    pub fn severity_above(&self, value: f64) -> Option<Severity> {
        self.severity_above_params(value, "warning", "critical")
    }

    /// Severity of a duration in seconds where longer is worse, against the `warning_seconds` and
    /// `critical_seconds` params (for checks that also threshold on bytes with `warning`/`critical`).
    pub fn severity_above_seconds(&self, seconds: f64) -> Option<Severity> {
        self.severity_above_params(seconds, "warning_seconds", "critical_seconds")
    }

    /// Severity of a value where higher is worse, against the params named `warning` and `critical`.
    fn severity_above_params(&self, value: f64, warning: &str, critical: &str) -> Option<Severity> {
        if value >= self.param(critical) {
            Some(Severity::Critical)
        } else if value >= self.param(warning) {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    /// Severity of a value where lower is worse (e.g. cache-hit ratio).
    pub fn severity_below(&self, value: f64) -> Option<Severity> {
        if value <= self.param("critical") {
            Some(Severity::Critical)
        } else if value <= self.param("warning") {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}
