//! What holds back the xmin horizon, and how far: the oldest transaction id that some session,
//! replication slot, prepared transaction or standby still needs to see.
//!
//! VACUUM may only remove a dead row version once no one can see it any more, i.e. when it was
//! deleted before the oldest xmin of the cluster. Each holder below keeps that horizon at its
//! own xmin; the check lists each one whose xmin is too many transactions old, so the DBRE sees
//! which pid to end, which slot to drop, which prepared transaction to resolve. The age is
//! counted in transactions (not seconds) because that is what decides how much vacuum cannot
//! clean and how close freezing comes to being blocked.

use super::tiers::Tiers;
use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct XminHorizon;

static META: CheckMeta = CheckMeta {
    id: "xmin-horizon",
    category: Category::Transactions,
    title: "Xmin horizon held back",
    measures: "Age in transactions of the xmin held by each session, replication slot (xmin and \
               catalog_xmin), prepared transaction and hot_standby_feedback standby.",
    params: &[
        Param {
            name: "warning",
            default: 10_000_000.0,
            unit: "transactions",
            help: "xmin age that warns",
        },
        Param {
            name: "critical",
            default: 100_000_000.0,
            unit: "transactions",
            help: "xmin age that is critical (half the default autovacuum_freeze_max_age)",
        },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "While the horizon is held, VACUUM cannot remove any row deleted or updated after it, in any \
              table of any database: tables and indexes bloat, index-only scans stop being index-only, \
              and anti-wraparound vacuums run without advancing relfrozenxid until writes stop. The \
              defaults: 10 million transactions is roughly an hour of a busy OLTP primary (3,000 \
              xid/s), enough dead rows to hurt hot tables; 100 million is half the default \
              autovacuum_freeze_max_age (200 million), leaving half a freeze cycle before \
              anti-wraparound vacuum can no longer make progress.",
        action: "Release the holder in the evidence: for a session, ask the owner to commit or terminate \
                 the pid (and set idle_in_transaction_session_timeout); for a replication slot, bring \
                 its consumer back or drop the slot if it is abandoned; for a prepared transaction, \
                 COMMIT PREPARED or ROLLBACK PREPARED it; for a standby with hot_standby_feedback, end \
                 the long query on the standby or cap it with max_standby_streaming_delay. Then VACUUM \
                 the most-updated tables.",
        next: "SELECT pid, usename, application_name, backend_xmin, age(backend_xmin), state, query FROM \
               pg_stat_activity WHERE backend_xmin IS NOT NULL ORDER BY age(backend_xmin) DESC; \
               SELECT slot_name, xmin, catalog_xmin, active FROM pg_replication_slots; \
               -- then: SELECT pg_terminate_backend(<pid>); or SELECT pg_drop_replication_slot('<slot>');",
    },
};

/// Every holder, one row each, with the same columns. A session with an xid but no snapshot
/// (idle in a read-committed transaction after a write) holds the horizon with its xid, so a
/// session's xmin is the older of `backend_xid` and `backend_xmin`. Walsenders are reported as
/// standbys, and autovacuum and parallel workers are left out: vacuum's own xmin is ignored by
/// other vacuums and a parallel worker shares its leader's.
const SQL: &str = "\
WITH holders AS (
    SELECT 'session' AS holder_type, pid, NULL::text AS slot_name, NULL::text AS gid,
           usename::text AS user_name, application_name, datname::text AS database,
           client_addr::text AS client_addr, state,
           CASE WHEN age(backend_xid) >= coalesce(age(backend_xmin), 0)
                THEN backend_xid ELSE backend_xmin END::text AS xmin,
           greatest(age(backend_xid), age(backend_xmin))::int8 AS xmin_age,
           EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age_seconds,
           left(query, 200) AS query
    FROM pg_stat_activity
    WHERE (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
      AND pid <> pg_backend_pid()
      AND backend_type NOT IN ('walsender', 'autovacuum worker', 'parallel worker')
  UNION ALL
    SELECT 'replication_slot', active_pid, slot_name::text, NULL, NULL, NULL, database::text, NULL,
           CASE WHEN active THEN 'active' ELSE 'inactive' END || ' ' || slot_type,
           CASE WHEN age(xmin) >= coalesce(age(catalog_xmin), 0)
                THEN xmin ELSE catalog_xmin END::text,
           greatest(age(xmin), age(catalog_xmin))::int8,
           NULL, NULL
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
  UNION ALL
    SELECT 'prepared_transaction', NULL, NULL, gid, owner::text, NULL, database::text, NULL,
           'prepared', transaction::text, age(transaction)::int8,
           EXTRACT(EPOCH FROM now() - prepared)::float8, NULL
    FROM pg_prepared_xacts
  UNION ALL
    SELECT 'standby', pid, NULL, NULL, usename::text, application_name, NULL, client_addr::text, state,
           backend_xmin::text, age(backend_xmin)::int8, NULL, NULL
    FROM pg_stat_replication
    WHERE backend_xmin IS NOT NULL
)
SELECT holder_type, pid, slot_name, gid, user_name, application_name, database, client_addr, state,
       xmin, xmin_age, age_seconds, query
FROM holders
WHERE xmin_age >= $1::int8
ORDER BY xmin_age DESC";

#[async_trait::async_trait]
impl Check for XminHorizon {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let tiers = Tiers::warning_critical(ctx);
        let warning = tiers.warning.min(tiers.critical).max(0.0).ceil() as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&warning]).await? {
            let age = row.get::<_, i64>("xmin_age") as f64;
            let Some(tier) = tiers.classify(age) else {
                continue;
            };
            let holder_type: String = row.get("holder_type");
            let pid: Option<i32> = row.get("pid");
            let slot_name: Option<String> = row.get("slot_name");
            let gid: Option<String> = row.get("gid");
            let application_name: Option<String> = row.get("application_name");
            let object = match holder_type.as_str() {
                "replication_slot" => format!("slot \"{}\"", slot_name.as_deref().unwrap_or("?")),
                "prepared_transaction" => {
                    format!("prepared transaction '{}'", gid.as_deref().unwrap_or("?"))
                }
                "standby" => {
                    format!(
                        "standby \"{}\" (pid {})",
                        application_name.as_deref().unwrap_or("?"),
                        pid.unwrap_or(0)
                    )
                }
                _ => format!("pid {}", pid.unwrap_or(0)),
            };
            let age_seconds: Option<f64> = row.get("age_seconds");
            let held_for = age_seconds
                .map(|s| format!(", open for {}", human_duration(s)))
                .unwrap_or_default();
            let summary = format!(
                "{} holds the xmin horizon {age:.0} transactions back (threshold {:.0}){held_for}",
                holder_type.replace('_', " "),
                tier.threshold
            );
            findings.push(
                Finding::new(tier.severity, object, summary)
                    .with("holder_type", holder_type)
                    .with("pid", pid)
                    .with("slot_name", slot_name)
                    .with("gid", gid)
                    .with("user", row.get::<_, Option<String>>("user_name"))
                    .with("application_name", application_name)
                    .with("database", row.get::<_, Option<String>>("database"))
                    .with("client_addr", row.get::<_, Option<String>>("client_addr"))
                    .with("state", row.get::<_, Option<String>>("state"))
                    .with("xmin", row.get::<_, Option<String>>("xmin"))
                    .with("xmin_age", age)
                    .with("age_seconds", age_seconds.map(f64::round))
                    .with("query", row.get::<_, Option<String>>("query")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{
        burn_xids, integer, number, text, PreparedTransaction,
    };
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::{testing, Cluster, LabOptions, PgInstall};

    /// Tiny thresholds: any holder at least 100 transactions old warns.
    const OVERRIDES: [(&str, f64); 2] = [("warning", 100.0), ("critical", 1e12)];

    #[tokio::test]
    async fn reports_a_session_holding_a_snapshot() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let session = primary
            .background_session(
                &db,
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;",
            )
            .expect("hold a snapshot");
        burn_xids(primary, &db, 200);
        let pid = i64::from(session.pid());
        let finding = testkit::finding_where(&XminHorizon, &primary.dsn(), &OVERRIDES, |f| {
            text(f, "holder_type") == Some("session") && integer(f, "pid") == Some(pid)
        })
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("pid {pid}"));
        assert!(
            number(&finding, "xmin_age").unwrap() >= 200.0,
            "{finding:?}"
        );
        assert!(text(&finding, "xmin").is_some(), "{finding:?}");
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert_eq!(
            text(&finding, "application_name"),
            Some("pgdbre-lab-background")
        );
    }

    #[tokio::test]
    async fn reports_a_prepared_transaction_holding_its_xid() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_xmin_{db}");
        let _prepared = PreparedTransaction::prepare(primary, &db, &gid);
        burn_xids(primary, &db, 200);
        let finding = testkit::finding_where(&XminHorizon, &primary.dsn(), &OVERRIDES, |f| {
            text(f, "gid") == Some(gid.as_str())
        })
        .await;
        assert_eq!(text(&finding, "holder_type"), Some("prepared_transaction"));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert!(
            number(&finding, "xmin_age").unwrap() >= 200.0,
            "{finding:?}"
        );
    }

    /// A logical slot keeps catalog_xmin; it needs wal_level = logical, hence its own cluster.
    #[tokio::test]
    async fn reports_a_logical_slot_holding_catalog_xmin() {
        let cluster =
            Cluster::start(LabOptions::new(PgInstall::for_tests()).setting("wal_level", "logical"))
                .expect("start a cluster with wal_level = logical");
        let primary = cluster.primary();
        primary
            .psql("SELECT pg_create_logical_replication_slot('pgdbre_test_slot', 'test_decoding');")
            .expect("create a logical slot");
        burn_xids(primary, "postgres", 200);
        let finding = testkit::finding_where(&XminHorizon, &primary.dsn(), &OVERRIDES, |f| {
            text(f, "slot_name") == Some("pgdbre_test_slot")
        })
        .await;
        assert_eq!(finding.object, "slot \"pgdbre_test_slot\"");
        assert_eq!(text(&finding, "holder_type"), Some("replication_slot"));
        assert_eq!(text(&finding, "state"), Some("inactive logical"));
        assert_eq!(text(&finding, "database"), Some("postgres"));
        assert!(
            number(&finding, "xmin_age").unwrap() >= 200.0,
            "{finding:?}"
        );
        primary
            .psql("SELECT pg_drop_replication_slot('pgdbre_test_slot');")
            .expect("drop the slot");
    }

    /// A standby with hot_standby_feedback reports its oldest snapshot to the primary; with a
    /// replication slot (as the lab's replicas have) that becomes the slot's xmin.
    #[tokio::test]
    async fn reports_a_standby_snapshot_through_its_slot() {
        let options = LabOptions::new(PgInstall::for_tests())
            .replicas(1)
            .setting("hot_standby_feedback", "on")
            .setting("wal_receiver_status_interval", "1s");
        let cluster = Cluster::start(options).expect("start a primary with a feedback standby");
        let primary = cluster.primary();
        let replica = &cluster.replicas()[0];
        let _snapshot = replica
            .background_session(
                "postgres",
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;",
            )
            .expect("hold a snapshot on the standby");
        burn_xids(primary, "postgres", 200);
        let finding = testkit::finding_where(&XminHorizon, &primary.dsn(), &OVERRIDES, |f| {
            text(f, "holder_type") == Some("replication_slot")
        })
        .await;
        assert_eq!(text(&finding, "slot_name"), Some("replica1_slot"));
        assert_eq!(text(&finding, "state"), Some("active physical"));
        assert!(
            integer(&finding, "pid").is_some(),
            "the walsender pid: {finding:?}"
        );
        assert!(
            number(&finding, "xmin_age").unwrap() >= 200.0,
            "{finding:?}"
        );
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let session = primary
            .background_session(&db, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;")
            .expect("hold a snapshot");
        let pid = i64::from(session.pid());
        let findings = testkit::findings(&XminHorizon, &primary.dsn(), &[]).await;
        assert!(
            !findings.iter().any(|f| integer(f, "pid") == Some(pid)),
            "{findings:?}"
        );
    }
}
