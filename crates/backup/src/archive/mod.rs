//! The WAL archive: `pgdbre wal push` (PostgreSQL's `archive_command`) and `pgdbre wal fetch`
//! (its `restore_command`), on the same `wal/<timeline>/<file>` objects `backup` stores.
//!
//! Both commands are short-lived processes that PostgreSQL runs once per file, so the speed
//! comes from doing more per call, with a local spool directory carrying state between calls:
//! the next files PostgreSQL has marked `.ready` are stored ahead (in parallel, by a background
//! worker or by the call) and recorded as acknowledged in the spool, so their own later calls
//! return at once; a fetch also
//! fetches the next segments into the spool, so recovery does not pay one round trip each.
//! Nothing is acknowledged to PostgreSQL before it is durably in the repository.

mod error;
mod fetch;
mod identity;
mod name;
mod push;
mod ready;
mod spool;
mod worker;

pub use error::ArchiveError;
pub use fetch::{fetch, FetchOptions, FetchOutcome, DEFAULT_PREFETCH};
pub use identity::{control_system_identifier, SegmentHeader};
pub use name::{WalFileKind, WalFileName};
pub use push::{push, PushOptions, PushOutcome, PushSummary, DEFAULT_JOBS};
pub use spool::{Spool, SPOOL_DIR_NAME};
pub use worker::{run_worker, WorkerSummary};
