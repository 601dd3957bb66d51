//! WAL archiving not set up: `archive_mode` off, or on without anything to archive with.
//!
//! Without a WAL archive a base backup can only be restored to the moment it ended: no
//! point-in-time recovery, no undo for a bad `DELETE`, and no archive to re-seed standbys from.
//! With `archive_mode` on but neither `archive_command` nor `archive_library` set, nothing is
//! archived and every completed segment waits in `pg_wal`, which then grows without bound.
//! `archiver-failing` covers a configured archiver that does not succeed.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct ArchiveModeOff;

static META: CheckMeta = CheckMeta {
    id: "archive-mode-off",
    category: Category::Archiving,
    title: "WAL archiving not configured",
    measures: "Whether archive_mode is off, or on with both archive_command and archive_library empty.",
    params: &[],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without WAL archiving there is no point-in-time recovery: a restore loses everything after the last \
              base backup. With archive_mode on but no archive_command or archive_library, WAL is kept for an \
              archiver that never runs, and pg_wal grows until the disk is full.",
        action: "Configure archiving to durable storage (for example `pgdbre wal push %p` or pgBackRest's \
                 archive-push as archive_command), then set archive_mode = on (needs a restart) and verify \
                 that segments arrive with pg_switch_wal(). If archiving is deliberately absent, disable this \
                 check in the thresholds file and document how the data is recovered instead.",
        next: "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_library'); \
               -- then: ALTER SYSTEM SET archive_command = '...'; ALTER SYSTEM SET archive_mode = on; -- and restart",
    },
};

/// Settings come from `pg_settings` so that a setting the server lacks (`archive_library` before
/// PostgreSQL 15) or hides from this role (`archive_command` is superuser-only unless the role
/// has `pg_read_all_settings`) reads as NULL instead of failing the query.
const SQL: &str = "\
SELECT current_setting('archive_mode') AS archive_mode,
       (SELECT setting FROM pg_settings WHERE name = 'archive_command') AS archive_command,
       (SELECT setting FROM pg_settings WHERE name = 'archive_library') AS archive_library,
       current_setting('wal_level') AS wal_level";

#[async_trait::async_trait]
impl Check for ArchiveModeOff {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let mode: String = row.get("archive_mode");
        let command: Option<String> = row.get("archive_command");
        let library: Option<String> = row.get("archive_library");
        let wal_level: String = row.get("wal_level");
        let standby = ctx.info().in_recovery;

        let finding = if mode == "off" {
            // A standby with archive_mode off is common; it matters once the standby is promoted.
            let (severity, summary) = if standby {
                (
                    Severity::Info,
                    "archive_mode is off: after a promotion this server would archive no WAL",
                )
            } else {
                (
                    Severity::Warning,
                    "archive_mode is off: no WAL archive, so no point-in-time recovery",
                )
            };
            Finding::new(severity, "setting archive_mode", summary)
        } else if command.as_deref() == Some("") && library.as_deref().unwrap_or("").is_empty() {
            // With archive_mode = on a standby archives nothing anyway; 'always' archives there too.
            let (severity, summary) = if !standby || mode == "always" {
                (
                    Severity::Critical,
                    "archive_mode is on but archive_command and archive_library are empty: nothing is archived \
                     and WAL accumulates in pg_wal",
                )
            } else {
                (
                    Severity::Info,
                    "archive_mode is on but archive_command and archive_library are empty: after a promotion \
                     WAL would accumulate in pg_wal",
                )
            };
            Finding::new(severity, "setting archive_command", summary)
        } else {
            return Ok(Vec::new());
        };
        Ok(vec![finding
            .with("archive_mode", mode)
            .with("archive_command", command)
            .with("archive_library", library)
            .with("wal_level", wal_level)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::replication::test_support::own_cluster;
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_an_empty_archive_command_then_archive_mode_off() {
        let cluster = own_cluster(0, &[("archive_command", "")]);
        let primary = cluster.primary();
        let dsn = primary.dsn();

        let findings = testkit::findings(&ArchiveModeOff, &dsn, &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Critical);
        assert_eq!(findings[0].object, "setting archive_command");
        assert_eq!(
            findings[0]
                .evidence("archive_mode")
                .and_then(|v| v.as_str()),
            Some("on")
        );
        assert_eq!(
            findings[0]
                .evidence("archive_command")
                .and_then(|v| v.as_str()),
            Some("")
        );

        primary
            .set_settings(&[("archive_mode", "off")])
            .expect("set archive_mode");
        primary.restart().expect("restart for archive_mode");
        let findings = testkit::findings(&ArchiveModeOff, &dsn, &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(findings[0].object, "setting archive_mode");
        assert_eq!(
            findings[0]
                .evidence("archive_mode")
                .and_then(|v| v.as_str()),
            Some("off")
        );
    }

    #[tokio::test]
    async fn quiet_on_the_lab_which_archives() {
        let cluster = testing::shared();
        let findings = testkit::findings(&ArchiveModeOff, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
