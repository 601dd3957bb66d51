//! The health-check catalog behind `pgdbre check`.
//!
//! Each check is one file under `checks/<category>/` holding its SQL (version-gated where the
//! catalogs differ), its thresholds with defaults, how it turns rows into [`Finding`]s with
//! evidence, its runbook, and its integration test against a real lab server. The registry in
//! `checks/mod.rs` is the single source of truth: `--list`, `--explain`, threshold-file
//! validation and the runner all derive from it. Rendering (text, JSON, Nagios, Prometheus)
//! lives in `render/` and knows nothing of individual checks.

mod check;
pub mod checks;
mod context;
mod error;
mod finding;
pub mod render;
mod runner;
mod thresholds;

#[cfg(test)]
mod testkit;

pub use check::{Category, Check, CheckMeta, Param, Requires, Role, Runbook};
pub use context::Context;
pub use error::CheckError;
pub use finding::{Finding, Severity};
/// Re-exported so callers can run several targets concurrently without their own futures dependency.
pub use futures::future::join_all;
pub use runner::{
    open_session, run_on_sessions, run_target, CheckResult, RunOptions, Selection, Status,
    TargetReport,
};
pub use thresholds::{ThresholdError, Thresholds};
