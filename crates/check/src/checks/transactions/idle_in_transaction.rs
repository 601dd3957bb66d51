//! Sessions idle in a transaction: the client opened a transaction and went quiet.
//!
//! Unlike a long-running query (see `long-running-transactions`), nothing is happening: the
//! application forgot to commit, or waits on something else while holding the transaction. Its
//! locks stay taken and, once it has an xid or a snapshot, it holds back the xmin horizon.

use super::activity::{self, AgedSession};
use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct IdleInTransaction;

static META: CheckMeta = CheckMeta {
    id: "idle-in-transaction",
    category: Category::Transactions,
    title: "Sessions idle in transaction",
    measures: "How long each session has been 'idle in transaction' or 'idle in transaction (aborted)' \
               (now() - state_change).",
    params: &[
        Param {
            name: "info",
            default: 5.0,
            unit: "seconds",
            help: "idle-in-transaction time that is reported as Info: well-behaved applications send \
                   the next statement within milliseconds, so 5 s idle already means someone is \
                   waiting on something outside the database (or forgot to commit)",
        },
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

/// `{session_columns}` is [`activity::SESSION_COLUMNS`].
const SQL_TEMPLATE: &str = "\
SELECT {session_columns},
       EXTRACT(EPOCH FROM now() - state_change)::float8 AS idle_seconds,
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_age_seconds,
       backend_xid::text AS backend_xid, backend_xmin::text AS backend_xmin
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
        let sessions = activity::aged_sessions(ctx, SQL_TEMPLATE, "idle_seconds").await?;
        Ok(sessions.into_iter().map(finding).collect())
    }
}

fn finding(AgedSession { row, seconds, tier }: AgedSession) -> Finding {
    let state: String = row.get("state");
    let finding = Finding::new(
        tier.severity,
        activity::session_label(&row),
        format!(
            "{state} for {} by {} (threshold {})",
            human_duration(seconds),
            activity::text(&row, "usename").as_deref().unwrap_or("?"),
            human_duration(tier.threshold)
        ),
    )
    .with("pid", row.get::<_, i32>("pid"))
    .with("state", state)
    .with("idle_seconds", seconds.round())
    .with(
        "xact_age_seconds",
        activity::rounded_seconds(&row, "xact_age_seconds"),
    );
    activity::with_client(finding, &row)
        .with("backend_xid", activity::text(&row, "backend_xid"))
        .with("backend_xmin", activity::text(&row, "backend_xmin"))
        .with("query", activity::text(&row, "query"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{evidence_is, number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    fn pid_is(pid: i32) -> impl Fn(&Finding) -> bool {
        evidence_is("pid", pid)
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
        assert_eq!(text(&finding, "state"), Some("idle in transaction"));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert_eq!(text(&finding, "user"), Some("postgres"));
        assert_eq!(
            text(&finding, "application_name"),
            Some("pgdbre-lab-background")
        );
        assert_eq!(text(&finding, "query"), Some("SELECT txid_current();"));
        assert!(number(&finding, "idle_seconds").unwrap() >= 1.0);
        assert!(text(&finding, "backend_xid").is_some(), "{finding:?}");

        let finding =
            testkit::finding_where(&IdleInTransaction, &dsn, &overrides, pid_is(aborted.pid()))
                .await;
        assert_eq!(
            text(&finding, "state"),
            Some("idle in transaction (aborted)")
        );
    }

    /// With the default thresholds a session left idle in a transaction shows up as Info within
    /// seconds, long before it warns.
    #[tokio::test]
    async fn default_thresholds_report_a_fresh_idle_transaction_as_info() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let session = primary
            .background_session(&db, "BEGIN; SELECT 1;")
            .expect("idle session");
        let finding = testkit::finding_where(
            &IdleInTransaction,
            &primary.dsn(),
            &[],
            pid_is(session.pid()),
        )
        .await;
        assert_eq!(finding.severity, Severity::Info, "{finding:?}");
        assert_eq!(finding.object, format!("pid {}", session.pid()));
        assert_eq!(text(&finding, "state"), Some("idle in transaction"));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert!(number(&finding, "idle_seconds").unwrap() >= 5.0);
        assert!(finding.summary.contains("(threshold 5s)"), "{finding:?}");
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let session = primary
            .background_session(&db, "BEGIN; SELECT 1;")
            .expect("idle session");
        // The Info tier starts within seconds; raise it so only "below every threshold" is tested.
        let findings =
            testkit::findings(&IdleInTransaction, &primary.dsn(), &[("info", 3600.0)]).await;
        assert!(!findings.iter().any(pid_is(session.pid())), "{findings:?}");
    }
}
