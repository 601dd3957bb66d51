//! Deadlocks per database since its statistics were last reset.
//!
//! Each deadlock is a transaction PostgreSQL aborted after `deadlock_timeout` to break a lock
//! cycle; the application saw an error (SQLSTATE 40P01) and, at best, retried. The counter in
//! `pg_stat_database` only grows, so the finding states the period it covers; a few over months
//! are worth knowing (Info), many mean a lock-ordering bug that costs latency and errors.

use super::tiers::Tiers;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct Deadlocks;

static META: CheckMeta = CheckMeta {
    id: "deadlocks",
    category: Category::Locks,
    title: "Deadlocks",
    measures: "Per database, pg_stat_database.deadlocks since stats_reset: any is Info, from `warning` \
               on Warning.",
    params: &[
        Param { name: "warning", default: 10.0, unit: "count", help: "deadlocks since the stats reset that warn" },
        Param {
            name: "critical",
            default: 100.0,
            unit: "count",
            help: "deadlocks since the stats reset that are critical",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Every deadlock aborts a transaction after deadlock_timeout of waiting: the application gets \
              an error, retries (or loses the work) and the sessions involved held their locks the \
              whole time, stalling others. A growing count points at code that takes the same locks \
              in different orders.",
        action: "With log_lock_waits on, the server log shows each deadlock with both statements \
                 (search for 'deadlock detected'); make the application lock rows in a consistent order \
                 (e.g. ORDER BY id ... FOR UPDATE), keep transactions short, and retry on SQLSTATE \
                 40P01. Reset the counter after the fix to see whether it recurs.",
        next: "SELECT datname, deadlocks, stats_reset FROM pg_stat_database WHERE deadlocks > 0; \
               -- server log: grep -A5 'deadlock detected' <log>; after the fix: SELECT pg_stat_reset();",
    },
};

const SQL: &str = "\
SELECT datname::text AS datname,
       deadlocks::int8 AS deadlocks,
       stats_reset::text AS stats_reset,
       EXTRACT(EPOCH FROM now() - stats_reset)::float8 AS since_reset_seconds
FROM pg_stat_database
WHERE datname IS NOT NULL AND deadlocks > 0
ORDER BY deadlocks DESC";

#[async_trait::async_trait]
impl Check for Deadlocks {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        // The query returns only databases with deadlocks, so every row is at least Info.
        let tiers = Tiers {
            info: Some(1.0),
            ..Tiers::warning_critical(ctx)
        };
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let count = row.get::<_, i64>("deadlocks");
            let Some(tier) = tiers.classify(count as f64) else {
                continue;
            };
            let database: String = row.get("datname");
            let stats_reset: Option<String> = row.get("stats_reset");
            let since = match &stats_reset {
                Some(reset) => format!("since the stats reset at {reset}"),
                None => "since the statistics were created (never reset)".to_string(),
            };
            let threshold = match tier.severity {
                Severity::Info => String::new(),
                _ => format!(" (threshold {})", tier.threshold),
            };
            findings.push(
                Finding::new(
                    tier.severity,
                    format!("database \"{database}\""),
                    format!("{count} deadlock(s) {since}{threshold}"),
                )
                .with("database", database)
                .with("deadlocks", count)
                .with("stats_reset", stats_reset)
                .with(
                    "since_reset_seconds",
                    row.get::<_, Option<f64>>("since_reset_seconds")
                        .map(f64::round),
                ),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{integer, text};
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn counts_a_real_deadlock_in_its_database() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let dsn = primary.dsn();
        let is_ours = |f: &Finding| text(f, "database") == Some(db.as_str());
        let before = testkit::findings(&Deadlocks, &dsn, &[]).await;
        assert!(
            !before.iter().any(is_ours),
            "a fresh database has no deadlocks: {before:?}"
        );

        primary.psql_db(&db, "CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 0), (2, 0);").unwrap();
        let mut first = primary
            .background_session(
                &db,
                "BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 1;",
            )
            .expect("first transaction");
        let mut second = primary
            .background_session(
                &db,
                "BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 2;",
            )
            .expect("second transaction");
        // Each now wants the row the other holds: after deadlock_timeout one of them is aborted.
        first
            .send("UPDATE accounts SET balance = balance + 1 WHERE id = 2;")
            .unwrap();
        second
            .send("UPDATE accounts SET balance = balance + 1 WHERE id = 1;")
            .unwrap();

        let finding = testkit::finding_where(&Deadlocks, &dsn, &[], is_ours).await;
        assert_eq!(finding.severity, Severity::Info);
        assert_eq!(finding.object, format!("database \"{db}\""));
        assert_eq!(integer(&finding, "deadlocks"), Some(1));
        let warned = testkit::findings(&Deadlocks, &dsn, &[("warning", 1.0)]).await;
        assert_eq!(
            warned.into_iter().find(is_ours).map(|f| f.severity),
            Some(Severity::Warning)
        );
        drop((first, second));
    }
}
