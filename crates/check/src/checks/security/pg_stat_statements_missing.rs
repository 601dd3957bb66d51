//! Query-level statistics: whether `pg_stat_statements` is loaded at server start and installed in
//! the connected database.
//!
//! During an incident the first question is "which queries?"; without the extension there is no
//! answer for anything that already happened. It must be in `shared_preload_libraries` (a
//! restart) and created in the database (`CREATE EXTENSION`), or the view errors or is missing.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct PgStatStatementsMissing;

static META: CheckMeta = CheckMeta {
    id: "pg-stat-statements-missing",
    category: Category::Configuration,
    title: "pg_stat_statements missing",
    measures: "Whether pg_stat_statements is in shared_preload_libraries and installed in the connected database.",
    params: &[],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without pg_stat_statements there is no record of which queries used the time, I/O and WAL: \
              incident response and capacity work start blind, and regressions after a deploy go unseen.",
        action: "Add pg_stat_statements to shared_preload_libraries (keeping the libraries already listed) and \
                 restart in a maintenance window; then CREATE EXTENSION pg_stat_statements in each database \
                 you monitor (or template1 for new ones).",
        next: "SHOW shared_preload_libraries; -- then: ALTER SYSTEM SET shared_preload_libraries = \
               '<existing>,pg_stat_statements'; -- restart, then in the database: \
               CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
    },
};

// shared_preload_libraries needs pg_read_all_settings; through pg_settings it is NULL instead of
// an error for other roles, and only the installed part is judged.
const SQL: &str = "\
SELECT (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS shared_preload_libraries,
       (SELECT extversion::text FROM pg_extension WHERE extname = 'pg_stat_statements') AS extension_version,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
       current_database()::text AS database";

/// Whether a `shared_preload_libraries` value loads pg_stat_statements (entries may be quoted,
/// carry a path such as `$libdir/pg_stat_statements`, or a `.so` suffix).
fn preloads_pg_stat_statements(shared_preload_libraries: &str) -> bool {
    shared_preload_libraries.split(',').any(|entry| {
        let entry = entry.trim().trim_matches('"');
        let name = entry.rsplit('/').next().unwrap_or(entry);
        name.strip_suffix(".so").unwrap_or(name) == "pg_stat_statements"
    })
}

#[async_trait::async_trait]
impl Check for PgStatStatementsMissing {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let libraries: Option<String> = row.get("shared_preload_libraries");
        let version: Option<String> = row.get("extension_version");
        let database: String = row.get("database");
        let preloaded = libraries.as_deref().map(preloads_pg_stat_statements);
        let installed = version.is_some();
        let (object, summary) = match (preloaded, installed) {
            (Some(false), false) => (
                "cluster".to_string(),
                format!("pg_stat_statements is not in shared_preload_libraries and not installed in database {database}"),
            ),
            (Some(false), true) => (
                "cluster".to_string(),
                format!("pg_stat_statements is installed in database {database} but not in shared_preload_libraries: its view errors"),
            ),
            (_, false) => (
                format!("database \"{database}\""),
                format!("pg_stat_statements is not installed in database {database}"),
            ),
            (_, true) => return Ok(Vec::new()),
        };
        Ok(vec![Finding::new(Severity::Warning, object, summary)
            .with("database", database)
            .with("shared_preload_libraries", libraries)
            .with("preloaded", preloaded)
            .with("installed", installed)
            .with("extension_version", version)
            .with("available", row.get::<_, bool>("available"))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{testing, Cluster, LabOptions, PgInstall};

    #[test]
    fn preload_list_parsing() {
        assert!(preloads_pg_stat_statements("pg_stat_statements"));
        assert!(preloads_pg_stat_statements(
            "auto_explain, \"pg_stat_statements\""
        ));
        assert!(preloads_pg_stat_statements("$libdir/pg_stat_statements.so"));
        assert!(!preloads_pg_stat_statements(""));
        assert!(!preloads_pg_stat_statements(
            "pg_stat_statements_extra,auto_explain"
        ));
    }

    #[tokio::test]
    async fn reports_a_database_without_the_extension() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let dsn = cluster.primary().dsn_for(&db);
        let findings = testkit::findings(&PgStatStatementsMissing, &dsn, &[]).await;
        assert!(
            findings.is_empty(),
            "lab databases have the extension: {findings:?}"
        );

        cluster
            .primary()
            .psql_db(&db, "DROP EXTENSION pg_stat_statements;")
            .expect("drop extension");
        let findings = testkit::findings(&PgStatStatementsMissing, &dsn, &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("database \"{db}\""));
        assert!(
            finding
                .summary
                .contains(&format!("not installed in database {db}")),
            "{finding:?}"
        );
        assert_eq!(
            finding.evidence("installed").and_then(|v| v.as_bool()),
            Some(false)
        );
        assert_eq!(
            finding.evidence("preloaded").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert_eq!(
            finding.evidence("extension_version"),
            Some(&serde_json::Value::Null)
        );
        let libraries = finding
            .evidence("shared_preload_libraries")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        assert!(libraries.contains("pg_stat_statements"), "{finding:?}");
    }

    #[tokio::test]
    async fn reports_an_extension_that_is_not_preloaded() {
        let options = LabOptions::new(PgInstall::for_tests())
            .name("pgdbre-pgss")
            .setting("shared_preload_libraries", "");
        let cluster = Cluster::start(options).expect("start a private cluster");
        let findings =
            testkit::findings(&PgStatStatementsMissing, &cluster.primary().dsn(), &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].object, "cluster");
        assert_eq!(
            findings[0].evidence("preloaded").and_then(|v| v.as_bool()),
            Some(false)
        );
        assert_eq!(
            findings[0].evidence("installed").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert!(findings[0]
            .evidence("extension_version")
            .and_then(|v| v.as_str())
            .is_some());
    }
}
