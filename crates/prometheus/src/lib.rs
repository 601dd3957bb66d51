//! SLI counts from a Prometheus that scrapes `pgdbre serve`: the other [`EventSource`] beside the
//! state store, behind `pgdbre slo status --prometheus URL` and `pgdbre gate --prometheus URL`.
//!
//! `client.rs` speaks the HTTP query API (`/api/v1/query`, instant queries) and turns every failure
//! into one sentence that never shows credentials from the URL; `source.rs` asks it the count
//! queries that `pgdbre_slo::rules::count_exprs` builds — the same selectors as the generated
//! recording rules, so `slo status` and the alerts read the same series.
//!
//! [`EventSource`]: pgdbre_slo::EventSource

mod client;
mod source;

pub use client::{Prometheus, PrometheusError};
