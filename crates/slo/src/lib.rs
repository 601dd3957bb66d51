//! SLOs as code: parse and validate the SLO spec, compute error budgets and burn rates, and
//! generate Prometheus recording and alerting rules (and `promtool` tests for them).
//!
//! Pure: no I/O beyond reading the spec file. `pgdbre serve` produces the metrics named in
//! [`metrics`]; Prometheus evaluates the rules from [`rules`]; `pgdbre slo status`, `pgdbre gate`
//! and the dashboard evaluate SLOs with [`status`] on counts from an [`EventSource`]: the state
//! store (through its `Store` trait) or Prometheus (`pgdbre-prometheus`).
//! The spec format and every definition are documented in `docs/slo.md`.

pub mod budget;
pub mod duration;
mod locate;
pub mod metrics;
pub mod profile;
pub mod promtool_tests;
pub mod rules;
pub mod sli;
pub mod spec;
pub mod status;
mod store_source;

pub use budget::{evaluate, evaluate_slices, Evaluation, EventCounts, Objective, SliceCounts};
pub use duration::Span;
pub use profile::{Profile, Severity, WindowPair};
pub use sli::{DrillOutcome, SliKind, Target};
pub use spec::{Action, BurnPolicy, Slo, Spec, SpecError};
pub use status::{EventSource, SliCounts};
