//! Sessions idle in a transaction: the client opened a transaction and went quiet.
//!
//! Unlike a long-running query (see `long-running-transactions`), nothing is happening: the
//! application forgot to commit, or waits on something else while holding the transaction. Its
//! locks stay taken and, once it has an xid or a snapshot, it holds back the xmin horizon.

use crate::finding::human_duration;
use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct IdleInTransaction;

static META: CheckMeta = CheckMeta {
    id: "idle-in-transaction",
    category: Category::Transactions,
    title: "Sessions idle in transaction",
    measures: "How long each session has been 'idle in transaction' or 'idle in transaction (aborted)' \
               (now() - state_change).",
    params: &[
        Param { name: "warning", default: 60.0, unit: "seconds", help: "idle-in-transaction time that warns" },
        Param {
            name: "critical",
            default: 600.0,
            unit: "seconds",
            help: "idle-in-transaction time that is critical",
        },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "A session idle in a transaction keeps every lock it took, so the next ALTER TABLE on those \
              tables queues and everything behind it stalls; with an xid or snapshot it also pins the \
              xmin horizon and dead rows pile up in every table. An aborted one holds its locks until \
              the client notices and rolls back.",
        action: "Identify the application from application_name, client_addr and the last query; fix the \
                 code path that leaves transactions open (missing commit, network calls inside a \
                 transaction). Terminate the session if it is abandoned. Set \
                 idle_in_transaction_session_timeout (e.g. ALTER ROLE app SET \
                 idle_in_transaction_session_timeout = '5min') so the server ends such sessions itself.",
        next: "SELECT pid, usename, application_name, client_addr, now() - state_change AS idle_for, query \
               FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' ORDER BY state_change; \
               -- then: SELECT pg_terminate_backend(<pid>);",
    },
};

const SQL: &str = "\
SELECT pid, usename::text AS usename, datname::text AS datname, application_name,
       client_addr::text AS client_addr, state,
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS idle_seconds,
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_age_seconds,
       backend_xid::text AS backend_xid, backend_xmin::text AS backend_xmin,
       left(query, 200) AS query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND pid <> pg_backend_pid()
ORDER BY state_change";

#[async_trait::async_trait]
impl Check for IdleInTransaction {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let idle: f64 = row.get("idle_seconds");
            let Some(severity) = ctx.severity_above(idle) else {
                continue;
            };
            let pid: i32 = row.get("pid");
            let user: Option<String> = row.get("usename");
            let state: String = row.get("state");
            let threshold = ctx.param(if severity == Severity::Critical {
                "critical"
            } else {
                "warning"
            });
            findings.push(
                Finding::new(
                    severity,
                    format!("pid {pid}"),
                    format!(
                        "{state} for {} by {} (threshold {})",
                        human_duration(idle),
                        user.as_deref().unwrap_or("?"),
                        human_duration(threshold)
                    ),
                )
                .with("pid", pid)
                .with("state", state)
                .with("idle_seconds", idle.round())
                .with(
                    "xact_age_seconds",
                    row.get::<_, Option<f64>>("xact_age_seconds")
                        .map(f64::round),
                )
                .with("user", user)
                .with("database", row.get::<_, Option<String>>("datname"))
                .with(
                    "application_name",
                    row.get::<_, Option<String>>("application_name"),
                )
                .with("client_addr", row.get::<_, Option<String>>("client_addr"))
                .with("backend_xid", row.get::<_, Option<String>>("backend_xid"))
                .with("backend_xmin", row.get::<_, Option<String>>("backend_xmin"))
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
    use pgdbre_lab::testing;

    fn pid_is(pid: i32) -> impl Fn(&Finding) -> bool {
        move |f| f.evidence("pid").and_then(|v| v.as_i64()) == Some(i64::from(pid))
    }

    #[tokio::test]
    async fn reports_idle_and_aborted_transactions_with_their_session() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let idle = primary
            .background_session(&db, "BEGIN; SELECT txid_current();")
            .expect("idle session");
        // psql stops at the first error unless told otherwise; the error is the point here.
        let aborted = primary
            .background_session(&db, "\\set ON_ERROR_STOP off\nBEGIN;\nSELECT 1/0;")
            .expect("aborted session");
        let dsn = primary.dsn();
        let overrides = [("warning", 1.0), ("critical", 86400.0)];

        let finding =
            testkit::finding_where(&IdleInTransaction, &dsn, &overrides, pid_is(idle.pid())).await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding.evidence("state").and_then(|v| v.as_str()),
            Some("idle in transaction")
        );
        assert_eq!(
            finding.evidence("database").and_then(|v| v.as_str()),
            Some(db.as_str())
        );
        assert_eq!(
            finding.evidence("user").and_then(|v| v.as_str()),
            Some("postgres")
        );
        assert_eq!(
            finding
                .evidence("application_name")
                .and_then(|v| v.as_str()),
            Some("pgdbre-lab-background")
        );
        assert_eq!(
            finding.evidence("query").and_then(|v| v.as_str()),
            Some("SELECT txid_current();")
        );
        assert!(
            finding
                .evidence("idle_seconds")
                .and_then(|v| v.as_f64())
                .unwrap()
                >= 1.0
        );
        assert!(
            finding
                .evidence("backend_xid")
                .and_then(|v| v.as_str())
                .is_some(),
            "{finding:?}"
        );

        let finding =
            testkit::finding_where(&IdleInTransaction, &dsn, &overrides, pid_is(aborted.pid()))
                .await;
        assert_eq!(
            finding.evidence("state").and_then(|v| v.as_str()),
            Some("idle in transaction (aborted)")
        );
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let session = primary
            .background_session(&db, "BEGIN; SELECT 1;")
            .expect("idle session");
        let findings = testkit::findings(&IdleInTransaction, &primary.dsn(), &[]).await;
        assert!(!findings.iter().any(pid_is(session.pid())), "{findings:?}");
    }
}
