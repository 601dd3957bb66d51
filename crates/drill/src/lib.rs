//! `pgdbre drill`: a disaster-recovery drill that proves a backup restores, and measures how long
//! it takes (RTO) and how much data it would lose (RPO).
//!
//! A drill restores a backup ([`pgdbre_backup::restore`]) into a fresh scratch directory, starts
//! PostgreSQL on it with the lab's [`pgdbre_lab::restored::RestoredServer`] (the same code as the
//! test harness: server OS user, free port, private socket, no archiving, no TCP), waits for
//! recovery to reach its target and end, runs smoke SQL, reads what was replayed, then stops the
//! server and removes the directory. [`DrillReport`] is the result, passed or failed; the
//! caller stores it with [`record`] so `pgdbre drill --history` and `restore_time` SLOs see it.
//!
//! Layering: this crate sits beside `pgdbre-backup` rather than inside it because it needs the
//! lab (to run a server) and the state store, neither of which the repository code should know.
//!
//! Files: `run.rs` orchestrates the phases, `scratch.rs` owns the scratch directory and server,
//! `smoke.rs` runs the smoke SQL, `measure.rs` holds the pure decisions (RPO, verdict),
//! `report.rs` the result and its text rendering, `evidence.rs` the store record.

mod error;
mod evidence;
mod measure;
mod options;
mod report;
mod run;
mod scratch;
mod smoke;

pub use error::DrillError;
pub use evidence::{record, to_record};
pub use measure::{format_seconds, judge, recovery_point, RpoReference};
pub use options::{parse_duration, DrillOptions, Smoke};
pub use report::{DrillReport, Phases, Rpo, SmokeResult, Verdict};
pub use run::drill;
