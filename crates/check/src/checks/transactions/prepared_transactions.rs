//! Orphaned prepared transactions: two-phase commits that were prepared and never finished.
//!
//! A prepared transaction survives disconnects and restarts. Left behind by a crashed
//! transaction manager it keeps its locks and its xid forever, holding back the xmin horizon
//! (see `xmin-horizon`) and, eventually, transaction id wraparound (see `txid-wraparound`).

use super::tiers::Tiers;
use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct PreparedTransactions;

static META: CheckMeta = CheckMeta {
    id: "prepared-transactions",
    category: Category::Transactions,
    title: "Orphaned prepared transactions",
    measures: "Age of each prepared transaction in pg_prepared_xacts (now() - prepared); any is Info.",
    params: &[
        Param {
            name: "info",
            default: 0.0,
            unit: "seconds",
            help: "prepared transaction age that is reported as Info: 0 shows every one, since most \
                   systems never use two-phase commit and one that exists is worth a look",
        },
        Param {
            name: "warning",
            default: 300.0,
            unit: "seconds",
            help: "prepared transaction age that warns: longer than two recovery passes of common \
                   transaction managers (Citus every 60 s, Narayana every 120 s), which resolve \
                   in-doubt transactions themselves",
        },
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
              age grows toward wraparound. Any prepared transaction is reported as Info because most \
              systems never use two-phase commit; it warns only after 5 minutes because a \
              transaction manager's recovery pass (every 1 to 2 minutes in the common ones) resolves \
              in-doubt transactions on its own, and past that nobody will.",
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
        let tiers = Tiers::from_params(ctx);
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let age: f64 = row.get("age_seconds");
            let Some(tier) = tiers.classify(age) else {
                continue;
            };
            let gid: String = row.get("gid");
            let database: Option<String> = row.get("database");
            findings.push(
                Finding::new(
                    tier.severity,
                    format!("prepared transaction '{gid}'"),
                    format!(
                        "prepared {} ago in database {} (threshold {})",
                        human_duration(age),
                        database.as_deref().unwrap_or("?"),
                        human_duration(tier.threshold)
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
    use crate::checks::transactions::test_support::{integer, number, text, PreparedTransaction};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    fn gid_is(gid: &str) -> impl Fn(&Finding) -> bool + '_ {
        move |f| text(f, "gid") == Some(gid)
    }

    #[tokio::test]
    async fn reports_an_orphaned_prepared_transaction() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_{db}");
        let _prepared = PreparedTransaction::prepare(cluster.primary(), &db, &gid);
        let dsn = cluster.primary().dsn();
        // It is Info from the start; wait until it is old enough to warn.
        let finding =
            testkit::finding_where(&PreparedTransactions, &dsn, &[("warning", 1.0)], |f| {
                gid_is(&gid)(f) && f.severity >= Severity::Warning
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("prepared transaction '{gid}'"));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert_eq!(text(&finding, "owner"), Some("postgres"));
        assert!(number(&finding, "age_seconds").unwrap() >= 1.0);
        assert!(integer(&finding, "xid_age").unwrap() >= 0);
        assert!(text(&finding, "prepared_at").is_some());
    }

    /// With the default thresholds a prepared transaction is reported at once, as Info.
    #[tokio::test]
    async fn default_thresholds_report_any_prepared_transaction_as_info() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_{db}");
        let _prepared = PreparedTransaction::prepare(cluster.primary(), &db, &gid);
        let dsn = cluster.primary().dsn();
        let finding = testkit::finding_where(&PreparedTransactions, &dsn, &[], gid_is(&gid)).await;
        assert_eq!(finding.severity, Severity::Info, "{finding:?}");
        assert_eq!(finding.object, format!("prepared transaction '{gid}'"));
        assert_eq!(text(&finding, "database"), Some(db.as_str()));
        assert!(text(&finding, "xid").is_some(), "{finding:?}");
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        let gid = format!("pgdbre_test_{db}");
        let _prepared = PreparedTransaction::prepare(cluster.primary(), &db, &gid);
        let findings = testkit::findings(
            &PreparedTransactions,
            &cluster.primary().dsn(),
            &[("info", 3600.0)],
        )
        .await;
        assert!(!findings.iter().any(gid_is(&gid)), "{findings:?}");
    }
}
