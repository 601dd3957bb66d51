//! Rendering reports for people (text) and machines (JSON, Nagios, Prometheus).
//!
//! Renderers only format: they never decide severity. The process exit code for every format
//! is [`exit_code`], the Nagios convention (0 ok, 1 warning, 2 critical, 3 unknown).

pub mod catalog;
mod json;
mod nagios;
mod prometheus;
mod text;

pub use json::{json, JSON_SCHEMA_VERSION};
pub use nagios::nagios;
pub use prometheus::prometheus;
pub use text::text;

use crate::{Severity, TargetReport};

/// The worst severity over all targets.
pub fn worst(reports: &[TargetReport]) -> Severity {
    reports
        .iter()
        .map(TargetReport::severity)
        .max()
        .unwrap_or(Severity::Ok)
}

/// Exit code for a run: 0 ok/info, 1 warning, 2 critical, 3 unknown (a target or check failed).
pub fn exit_code(reports: &[TargetReport]) -> u8 {
    worst(reports).nagios_code()
}
