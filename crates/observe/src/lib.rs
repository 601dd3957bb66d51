//! Observability: metric collectors over PostgreSQL's statistics views and the Prometheus
//! exposition served by `pgdbre serve`.
//!
//! Flow: [`http`] answers a scrape → [`Target::scrape`] reuses (or re-opens) one session per
//! server and runs every collector of the registry in `collectors/mod.rs` concurrently on it,
//! each under its own timeout → the families are merged across targets and written by our own
//! encoder in [`exposition`]. The health-check catalog of `pgdbre-check` runs on its own,
//! slower interval in [`catalog`]; a scrape only reads its last result. The HTML dashboard at
//! `/` ([`dashboard`]) shows SLOs from the state store, the catalog's findings and replica lag.

mod catalog;
pub mod collectors;
pub mod dashboard;
pub mod exposition;
pub mod http;
mod options;
pub mod probes;
mod target;

pub use catalog::CheckCatalog;
pub use dashboard::{Dashboard, DashboardConfig};
pub use exposition::{encode, merge, Family, Histogram, MetricType, Sample};
pub use http::{serve, ServeConfig};
pub use options::{parse_duration, ScrapeOptions};
pub use probes::{ProbeOptions, Prober};
pub use target::Target;
