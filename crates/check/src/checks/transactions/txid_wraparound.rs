//! Transaction-id wraparound per database: how close `age(datfrozenxid)` is to the 2^31 limit.
//!
//! A database's `datfrozenxid` is the oldest unfrozen xid of any of its tables, so its age is
//! how many transactions the cluster can still run before PostgreSQL stops assigning xids to
//! protect the data. `table-wraparound` names the table that holds a database back; the shared
//! arithmetic lives in `wraparound.rs`.

use super::wraparound::{self, IdSpace};
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct TxidWraparound;

static META: CheckMeta = CheckMeta {
    id: "txid-wraparound",
    category: Category::Transactions,
    title: "Transaction id wraparound",
    measures: "Per database, age(datfrozenxid) as a percentage of the 2^31 transaction id limit, \
               and whether it exceeds autovacuum_freeze_max_age.",
    params: &[
        Param { name: "warning", default: 50.0, unit: "percent", help: "share of the 2^31 xid limit that warns" },
        Param {
            name: "critical",
            default: 75.0,
            unit: "percent",
            help: "share of the 2^31 xid limit that is critical",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "When the oldest unfrozen xid of a database comes within 3 million transactions of 2^31, \
              PostgreSQL refuses every write in the whole cluster until a VACUUM freezes the old rows; \
              on large tables that is hours of downtime. Past autovacuum_freeze_max_age an \
              anti-wraparound autovacuum is forced, which cannot be cancelled and competes for I/O.",
        action: "Find the oldest tables with the table-wraparound check (connected to the database named \
                 in the evidence) and VACUUM (FREEZE, VERBOSE) them, oldest first. First remove what \
                 stops vacuum from freezing: long or idle transactions, orphaned prepared transactions \
                 and stale replication slots (see the xmin-horizon check). Raise autovacuum throughput \
                 (autovacuum_vacuum_cost_limit, autovacuum_max_workers) if it cannot keep up.",
        next: "SELECT datname, age(datfrozenxid), current_setting('autovacuum_freeze_max_age') \
               FROM pg_database ORDER BY 2 DESC; \
               -- then in that database: SELECT c.oid::regclass, age(c.relfrozenxid) FROM pg_class c \
               WHERE c.relkind IN ('r','m','t') ORDER BY 2 DESC LIMIT 10;",
    },
};

const SQL: &str = "\
SELECT datname::text AS datname,
       age(datfrozenxid)::int8 AS age,
       current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age,
       datallowconn
FROM pg_database
ORDER BY age(datfrozenxid) DESC";

#[async_trait::async_trait]
impl Check for TxidWraparound {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        wraparound::database_findings(ctx, IdSpace::Transaction, SQL, |finding, row| {
            finding.with("allows_connections", row.get::<_, bool>("datallowconn"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{burn_xids, number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_database_past_the_threshold_with_its_age() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        burn_xids(cluster.primary(), &db, 1000);
        // 0.00004 % of 2^31 is about 859 transactions.
        let overrides = [("warning", 0.00004), ("critical", 100.0)];
        let finding =
            testkit::finding_where(&TxidWraparound, &cluster.primary().dsn(), &overrides, |f| {
                text(f, "database") == Some(db.as_str())
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("database \"{db}\""));
        let age = number(&finding, "xid_age").unwrap();
        assert!(age >= 1000.0, "{finding:?}");
        let freeze_max_age = number(&finding, "freeze_max_age").unwrap();
        assert_eq!(freeze_max_age, 200_000_000.0, "the lab keeps the default");
        let percent = number(&finding, "percent_to_limit").unwrap();
        assert!((0.00004..1.0).contains(&percent), "{finding:?}");
        let left = number(&finding, "transactions_left").unwrap();
        assert_eq!(left, wraparound::LIMIT - 3_000_000.0 - age);
    }

    #[tokio::test]
    async fn quiet_on_a_young_cluster() {
        let cluster = testing::shared();
        let findings = testkit::findings(&TxidWraparound, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
