//! Orphaned prepared transactions: two-phase commits that were prepared and never finished.
//!
//! A prepared transaction survives disconnects and restarts. Left behind by a crashed
//! transaction manager it keeps its locks and its xid forever, holding back the xmin horizon
//! (see `xmin-horizon`) and, eventually, transaction id wraparound (see `txid-wraparound`).

use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct PreparedTransactions;

static META: CheckMeta = CheckMeta {
    id: "prepared-transactions",
    category: Category::Transactions,
    title: "Orphaned prepared transactions",
    measures: "Age of each prepared transaction in pg_prepared_xacts (now() - prepared).",
    params: &[
        Param { name: "warning", default: 300.0, unit: "seconds", help: "prepared transaction age that warns" },
        Param {
            name: "critical",
            default: 3600.0,
            unit: "seconds",
            help: "prepared transaction age that is critical",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "A prepared transaction normally lives milliseconds between PREPARE and COMMIT PREPARED. An \
              orphaned one keeps its row and table locks and its xid across restarts: vacuum cannot \
              remove dead rows anywhere in the cluster, DDL on its tables queues forever, and the xid \
              age grows toward wraparound.",
        action: "Ask the owner of the transaction manager (the gid usually names it) whether it will \
                 resolve the transaction. If it is orphaned, connect to the database in the evidence as \
                 the owner or a superuser and roll it back (or commit it if the manager says it \
                 committed elsewhere). Set max_prepared_transactions = 0 where nothing uses two-phase \
                 commit.",
        next: "SELECT gid, owner, database, prepared, age(transaction) FROM pg_prepared_xacts ORDER BY \
               prepared; -- then, connected to that database: ROLLBACK PREPARED '<gid>';",
    },
};

const SQL: &str = "\
SELECT gid, owner::text AS owner, database::text AS database,
       prepared::text AS prepared_at,
       EXTRACT(EPOCH FROM now() - prepared)::float8 AS age_seconds,
       transaction::text AS xid,
       age(transaction)::int8 AS xid_age
FROM pg_prepared_xacts
ORDER BY prepared";

#[async_trait::async_trait]
impl Check for PreparedTransactions {
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
            let gid: String = row.get("gid");
            let database: Option<String> = row.get("database");
            let threshold = if severity == crate::Severity::Critical {
                "critical"
            } else {
                "warning"
            };
            findings.push(
                Finding::new(
                    severity,
                    format!("prepared transaction '{gid}'"),
                    format!(
                        "prepared {} ago in database {} (threshold {})",
                        human_duration(age),
                        database.as_deref().unwrap_or("?"),
                        human_duration(ctx.param(threshold))
                    ),
                )
                .with("gid", gid)
                .with("owner", row.get::<_, Option<String>>("owner"))
                .with("database", database)
                .with("prepared_at", row.get::<_, String>("prepared_at"))
                .with("age_seconds", age.round())
                .with("xid", row.get::<_, String>("xid"))
                .with("xid_age", row.get::<_, i64>("xid_age")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::PreparedTransaction;
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_an_orphaned_prepared_transaction() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_{db}");
        let _prepared = PreparedTransaction::prepare(cluster.primary(), &db, &gid);
        let dsn = cluster.primary().dsn();
        let finding =
            testkit::finding_where(&PreparedTransactions, &dsn, &[("warning", 1.0)], |f| {
                f.evidence("gid").and_then(|v| v.as_str()) == Some(gid.as_str())
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("prepared transaction '{gid}'"));
        assert_eq!(
            finding.evidence("database").and_then(|v| v.as_str()),
            Some(db.as_str())
        );
        assert_eq!(
            finding.evidence("owner").and_then(|v| v.as_str()),
            Some("postgres")
        );
        assert!(
            finding
                .evidence("age_seconds")
                .and_then(|v| v.as_f64())
                .unwrap()
                >= 1.0
        );
        assert!(
            finding
                .evidence("xid_age")
                .and_then(|v| v.as_i64())
                .unwrap()
                >= 0
        );
        assert!(finding
            .evidence("prepared_at")
            .and_then(|v| v.as_str())
            .is_some());
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_{db}");
        let _prepared = PreparedTransaction::prepare(cluster.primary(), &db, &gid);
        let findings =
            testkit::findings(&PreparedTransactions, &cluster.primary().dsn(), &[]).await;
        assert!(
            findings
                .iter()
                .all(|f| f.evidence("gid").and_then(|v| v.as_str()) != Some(gid.as_str())),
            "{findings:?}"
        );
    }
}
