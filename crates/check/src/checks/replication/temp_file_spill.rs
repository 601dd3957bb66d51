//! Temp-file spill: queries whose sorts, hashes and materialisations did not fit in `work_mem`
//! and were written to temporary files, per database since its statistics were reset.
//!
//! Spilling turns an in-memory operation into disk I/O: the queries slow down by an order of
//! magnitude, and a large spill can fill the disk that holds `base/pgsql_tmp` (or
//! `temp_tablespaces`). The per-query culprits are in `pg_stat_statements.temp_blks_written`.

use crate::finding::{human_bytes, human_duration};
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct TempFileSpill;

static META: CheckMeta = CheckMeta {
    id: "temp-file-spill",
    category: Category::Performance,
    title: "Queries spilling to temporary files",
    measures: "Temporary files and bytes written per database since its statistics reset (pg_stat_database).",
    params: &[
        Param {
            name: "warning",
            default: 10_737_418_240.0,
            unit: "bytes",
            help: "temporary bytes written in a database that warn (any spill is reported as info)",
        },
        Param {
            name: "critical",
            default: 107_374_182_400.0,
            unit: "bytes",
            help: "temporary bytes written in a database that are critical",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many databases, largest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Sorts and hashes that exceed work_mem are written to disk and read back: those queries run many \
              times slower, compete for I/O with everything else, and a large spill can fill the temporary \
              file space and fail the query or the server.",
        action: "Find the spilling queries in pg_stat_statements (temp_blks_written) or with log_temp_files. Fix \
                 the query or its indexes first (a missing index often means a big sort); then raise work_mem \
                 for that role or session rather than globally (each sort or hash node of each connection may \
                 use work_mem). Cap runaway queries with temp_file_limit.",
        next: "SELECT queryid, calls, temp_blks_written, left(query, 100) FROM pg_stat_statements \
               ORDER BY temp_blks_written DESC LIMIT 10; \
               -- then: ALTER ROLE <app_role> SET work_mem = '64MB'; ALTER SYSTEM SET log_temp_files = '10MB';",
    },
};

const SQL: &str = "\
SELECT datname::text AS database, temp_files::int8 AS temp_files, temp_bytes::int8 AS temp_bytes,
       stats_reset::text AS stats_reset,
       EXTRACT(EPOCH FROM now() - stats_reset)::float8 AS stats_age_seconds,
       current_setting('work_mem') AS work_mem
FROM pg_stat_database
WHERE datname IS NOT NULL AND temp_bytes > 0
ORDER BY temp_bytes DESC
LIMIT $1";

#[async_trait::async_trait]
impl Check for TempFileSpill {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&limit]).await? {
            let database: String = row.get("database");
            let bytes: i64 = row.get("temp_bytes");
            let files: i64 = row.get("temp_files");
            let age: Option<f64> = row.get("stats_age_seconds");
            let severity = ctx.severity_above(bytes as f64).unwrap_or(Severity::Info);
            let since = age.map_or_else(
                || "since the statistics were created".to_string(),
                |a| format!("in the {} since the statistics reset", human_duration(a)),
            );
            findings.push(
                Finding::new(
                    severity,
                    format!("database \"{database}\""),
                    format!(
                        "{} written to {files} temporary file(s) {since} (warning at {})",
                        human_bytes(bytes as f64),
                        human_bytes(ctx.param("warning"))
                    ),
                )
                .with("database", database)
                .with("temp_files", files)
                .with("temp_bytes", bytes)
                .with("work_mem", row.get::<_, String>("work_mem"))
                .with("stats_reset", row.get::<_, Option<String>>("stats_reset"))
                .with("stats_age_seconds", age.map(f64::round)),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_database_whose_sort_spilled() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let dsn = primary.dsn();
        let ours =
            |f: &Finding| f.evidence("database").and_then(|v| v.as_str()) == Some(db.as_str());
        let all = [("max_findings", 100_000.0)];

        // Nothing spilled yet in the new database.
        let quiet = testkit::findings(&TempFileSpill, &dsn, &all).await;
        assert!(!quiet.iter().any(ours), "{quiet:?}");

        // A sort of 200k rows in 64 kB of work_mem must go to disk.
        primary
            .psql_db(
                &db,
                "SET work_mem = '64kB';
                 SELECT sum(g) FROM (SELECT g FROM generate_series(1, 200000) AS g ORDER BY g DESC OFFSET 0) AS sorted;",
            )
            .expect("run a spilling sort");

        let info = testkit::finding_where(&TempFileSpill, &dsn, &all, ours).await;
        assert_eq!(
            info.severity,
            Severity::Info,
            "below the default warning it is only worth knowing"
        );
        assert!(info
            .evidence("temp_files")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n >= 1));
        let bytes = info
            .evidence("temp_bytes")
            .and_then(|v| v.as_i64())
            .unwrap();
        assert!(bytes > 0);
        assert!(info.evidence("work_mem").and_then(|v| v.as_str()).is_some());

        let warned = testkit::findings(
            &TempFileSpill,
            &dsn,
            &[
                ("max_findings", 100_000.0),
                ("warning", 1.0),
                ("critical", 1e18),
            ],
        )
        .await;
        let warned = warned
            .into_iter()
            .find(ours)
            .expect("our database is reported");
        assert_eq!(warned.severity, Severity::Warning);
        assert!(warned
            .evidence("temp_bytes")
            .and_then(|v| v.as_i64())
            .is_some_and(|b| b >= bytes));
    }
}
