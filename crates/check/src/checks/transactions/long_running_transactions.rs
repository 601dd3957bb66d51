//! Long-running transactions: sessions whose current transaction has been open too long.
//!
//! An open transaction holds back the xmin horizon (vacuum cannot remove rows it might still
//! see), keeps its locks, and on a busy table turns into bloat and lock queues.

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

const SQL: &str = "\
SELECT pid, usename::text, application_name, client_addr::text, state,
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age_seconds,
       left(query, 200) AS query, datname::text
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
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let age: f64 = row.get("age_seconds");
            let Some(severity) = ctx.severity_above(age) else {
                continue;
            };
            let pid: i32 = row.get("pid");
            let user: Option<String> = row.get("usename");
            let state: Option<String> = row.get("state");
            findings.push(
                Finding::new(
                    severity,
                    format!("pid {pid}"),
                    format!(
                        "transaction open for {} by {} ({})",
                        human_duration(age),
                        user.as_deref().unwrap_or("?"),
                        state.as_deref().unwrap_or("unknown state")
                    ),
                )
                .with("pid", pid)
                .with("age_seconds", age.round())
                .with("user", user)
                .with("database", row.get::<_, Option<String>>("datname"))
                .with(
                    "application_name",
                    row.get::<_, Option<String>>("application_name"),
                )
                .with("client_addr", row.get::<_, Option<String>>("client_addr"))
                .with("state", state)
                .with("query", row.get::<_, Option<String>>("query")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let pid = i64::from(session.pid());
        let dsn = cluster.primary().dsn();
        let finding =
            testkit::finding_where(&LongRunningTransactions, &dsn, &[("warning", 1.0)], |f| {
                f.evidence("pid").and_then(|v| v.as_i64()) == Some(pid)
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding.evidence("database").and_then(|v| v.as_str()),
            Some(db.as_str())
        );
        assert!(
            finding
                .evidence("age_seconds")
                .and_then(|v| v.as_f64())
                .unwrap()
                >= 1.0
        );
        drop(session);
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let findings = testkit::findings(
            &LongRunningTransactions,
            &cluster.primary().dsn(),
            &[("warning", 86400.0), ("critical", 86400.0)],
        )
        .await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
