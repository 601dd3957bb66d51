//! Long-running transactions: sessions whose current transaction has been open too long.
//!
//! An open transaction holds back the xmin horizon (vacuum cannot remove rows it might still
//! see), keeps its locks, and on a busy table turns into bloat and lock queues.

use super::activity::{self, AgedSession};
use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct LongRunningTransactions;

static META: CheckMeta = CheckMeta {
    id: "long-running-transactions",
    category: Category::Transactions,
    title: "Long-running transactions",
    measures: "Age of each open transaction (now() - xact_start), excluding autovacuum workers.",
    params: &[
        Param {
            name: "info",
            default: 60.0,
            unit: "seconds",
            help: "transaction age that is reported as Info: OLTP transactions last milliseconds, so \
                   a minute is worth seeing, while reports, dumps and migrations legitimately run \
                   that long, hence no warning yet",
        },
        Param { name: "warning", default: 300.0, unit: "seconds", help: "transaction age that warns" },
        Param { name: "critical", default: 3600.0, unit: "seconds", help: "transaction age that is critical" },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "An open transaction pins the xmin horizon, so vacuum cannot clean dead rows anywhere in \
              the cluster; it also keeps its locks, which queue DDL and then everything behind it.",
        action: "Find the application and query from the evidence; ask the owner to commit or roll back. \
                 If it is abandoned, cancel or terminate the backend. Set idle_in_transaction_session_timeout \
                 and a statement_timeout for the application role to prevent recurrences.",
        next: "SELECT pid, usename, application_name, client_addr, now() - xact_start AS age, state, query \
               FROM pg_stat_activity WHERE xact_start IS NOT NULL ORDER BY xact_start; \
               -- then: SELECT pg_terminate_backend(<pid>);",
    },
};

/// `{session_columns}` is [`activity::SESSION_COLUMNS`].
const SQL_TEMPLATE: &str = "\
SELECT {session_columns},
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age_seconds
FROM pg_stat_activity
WHERE xact_start IS NOT NULL
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
ORDER BY xact_start";

#[async_trait::async_trait]
impl Check for LongRunningTransactions {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let sessions = activity::aged_sessions(ctx, SQL_TEMPLATE, "age_seconds").await?;
        Ok(sessions.into_iter().map(finding).collect())
    }
}

fn finding(AgedSession { row, seconds, tier }: AgedSession) -> Finding {
    let state = activity::text(&row, "state");
    let finding = Finding::new(
        tier.severity,
        activity::session_label(&row),
        format!(
            "transaction open for {} by {} ({}, threshold {})",
            human_duration(seconds),
            activity::text(&row, "usename").as_deref().unwrap_or("?"),
            state.as_deref().unwrap_or("unknown state"),
            human_duration(tier.threshold)
        ),
    )
    .with("pid", row.get::<_, i32>("pid"))
    .with("age_seconds", seconds.round());
    activity::with_client(finding, &row)
        .with("state", state)
        .with("query", activity::text(&row, "query"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{evidence_is, number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_an_open_transaction_with_its_pid() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let session = cluster
            .primary()
            .background_session(&db, "BEGIN; SELECT txid_current();")
            .expect("hold a transaction");
        let dsn = cluster.primary().dsn();
        let finding = testkit::finding_where(
            &LongRunningTransactions,
            &dsn,
            &[("warning", 1.0)],
            evidence_is("pid", session.pid()),
        )
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert!(number(&finding, "age_seconds").unwrap() >= 1.0);
        drop(session);
    }

    /// With the default thresholds a transaction open for a minute is Info, not yet Warning.
    /// The Info tier is longer than `finding_where`'s patience, so this polls for longer.
    #[tokio::test]
    async fn default_thresholds_report_a_minute_old_transaction_as_info() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let session = cluster
            .primary()
            .background_session(&db, "BEGIN; SELECT txid_current();")
            .expect("hold a transaction");
        let dsn = cluster.primary().dsn();
        let is_ours = evidence_is("pid", session.pid());
        let finding = testkit::eventually(
            std::time::Duration::from_secs(120),
            "a minute-old transaction reported with default thresholds",
            || async {
                testkit::findings(&LongRunningTransactions, &dsn, &[])
                    .await
                    .into_iter()
                    .find(&is_ours)
            },
        )
        .await;
        assert_eq!(finding.severity, Severity::Info, "{finding:?}");
        assert_eq!(finding.object, format!("pid {}", session.pid()));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert_eq!(text(&finding, "state"), Some("idle in transaction"));
        assert!(number(&finding, "age_seconds").unwrap() >= 60.0);
        assert!(finding.summary.contains("threshold 1m 0s"), "{finding:?}");
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let findings = testkit::findings(
            &LongRunningTransactions,
            &cluster.primary().dsn(),
            &[
                ("info", 86400.0),
                ("warning", 86400.0),
                ("critical", 86400.0),
            ],
        )
        .await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
