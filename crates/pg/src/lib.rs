//! Connections to PostgreSQL exactly as libpq reads them.
//!
//! Every capability crate connects through this crate so that a DSN, a `PG*` variable, a
//! `.pgpass` entry or a service file means the same thing to pgdbre as to `psql`. It also owns
//! secret redaction (a password never reaches a log, an error or a report) and detects what the
//! server can do once per connection ([`ServerInfo`]), so checks and collectors never re-probe.
//!
//! Flow: [`conninfo`] parses the DSN (pure) → [`config`] applies the service file, the
//! environment, the defaults and `.pgpass` into a [`ConnConfig`] → [`Session::connect`] builds
//! one `tokio_postgres::Config` per host attempt with a rustls connector from [`tls`].

mod config;
mod conninfo;
mod error;
mod pgpass;
mod redact;
mod server;
mod service;
mod session;
mod tls;

pub use config::{
    quote_value, ConnConfig, HostSpec, RootCert, SslMode, TargetSessionAttrs,
    DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT,
};
pub use error::{PgError, INSUFFICIENT_PRIVILEGE};
pub use redact::{redact, MASK};
pub use server::{ServerInfo, ServerVersion};
pub use session::{connect_without_detection, Session};
