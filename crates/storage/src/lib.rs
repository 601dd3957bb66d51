//! The storage layer of the backup repository: whole objects under `/`-separated keys, on a local
//! directory (the default) or an S3-compatible bucket, through the `object_store` crate.
//!
//! The repository format (`crates/backup`) builds on four guarantees from here: a `put` is atomic
//! (the whole object or nothing is visible, also after a crash), `put_if_absent` is create-only
//! (so a content-addressed block or a WAL segment is written once), every operation is safe from
//! many tasks at once, and every failure is a [`StorageError`] whose kind says what to do (a full
//! disk, an unreachable endpoint, refused credentials) and whose message never holds a secret.
//!
//! [`Location`] is parsed once from the `--repo` text and the environment; [`Storage`] opens it.

mod error;
mod location;
mod storage;

pub use error::StorageError;
pub use location::{Location, S3Credentials, DEFAULT_REGION};
pub use storage::{ObjectInfo, PutOutcome, Storage, CHECK_KEY};
