//! Connections to PostgreSQL exactly as libpq reads them.
//!
//! Every capability crate connects through this crate so that a DSN, a `PG*` variable, a
//! `.pgpass` entry or a service file means the same thing to pgdbre as to `psql`. It also owns
//! secret redaction (a password never reaches a log, an error or a report) and detects what the
//! server can do once per connection ([`ServerInfo`]), so checks and collectors never re-probe.

mod config;
mod error;
mod server;
mod session;

pub use config::ConnConfig;
pub use error::PgError;
pub use server::{ServerInfo, ServerVersion};
pub use session::Session;
