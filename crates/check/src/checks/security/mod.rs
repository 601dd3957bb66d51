//! Security posture and configuration checks: authentication rules, passwords, TLS, privileges,
//! durability settings, and the observability settings (query statistics, logging) that incident
//! response depends on.

mod data_checksums_off;
mod hba_insecure_auth;
mod logging_settings;
mod password_encryption_md5;
mod pg_stat_statements_missing;
mod public_schema_create;
mod ssl_off;
mod superuser_sprawl;
mod unsafe_durability_settings;

use crate::Check;

/// The checks of this group, in display order.
pub fn checks() -> Vec<&'static dyn Check> {
    vec![
        &data_checksums_off::DataChecksumsOff,
        &unsafe_durability_settings::UnsafeDurabilitySettings,
        &hba_insecure_auth::HbaInsecureAuth,
        &password_encryption_md5::PasswordEncryptionMd5,
        &ssl_off::SslOff,
        &superuser_sprawl::SuperuserSprawl,
        &public_schema_create::PublicSchemaCreate,
        &pg_stat_statements_missing::PgStatStatementsMissing,
        &logging_settings::LoggingSettings,
    ]
}
