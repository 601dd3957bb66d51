//! Multixact id wraparound per database: how close `mxid_age(datminmxid)` is to the 2^31 limit.
//!
//! Multixacts record several lockers of one row (`SELECT ... FOR SHARE`, foreign-key checks).
//! They wrap around like transaction ids and stop the cluster the same way, but they are frozen
//! by their own setting (`autovacuum_multixact_freeze_max_age`), so they get their own check.
//! The arithmetic is shared with `txid-wraparound` in `wraparound.rs`.

use super::wraparound::{self, IdSpace};
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct MultixactWraparound;

static META: CheckMeta = CheckMeta {
    id: "multixact-wraparound",
    category: Category::Transactions,
    title: "Multixact id wraparound",
    measures: "Per database, mxid_age(datminmxid) as a percentage of the 2^31 multixact id limit, and \
               whether it exceeds autovacuum_multixact_freeze_max_age.",
    params: &[
        Param {
            name: "warning",
            default: 50.0,
            unit: "percent",
            help: "share of the 2^31 multixact limit that warns",
        },
        Param {
            name: "critical",
            default: 75.0,
            unit: "percent",
            help: "share of the 2^31 multixact limit that is critical",
        },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "When the oldest multixact still referenced by a database nears 2^31, PostgreSQL stops \
              creating multixacts, so every row lock shared by two transactions (foreign keys, SELECT FOR \
              SHARE) fails until VACUUM freezes the old ones. Past autovacuum_multixact_freeze_max_age an \
              anti-wraparound autovacuum is forced on the tables concerned.",
        action: "In the database from the evidence, VACUUM (FREEZE, VERBOSE) the tables with the oldest \
                 relminmxid first; remove long transactions that stop the freeze (see xmin-horizon). If \
                 multixacts are consumed fast, look for hot rows locked by many sessions at once \
                 (foreign keys to one parent row, SELECT ... FOR SHARE) and lower \
                 autovacuum_multixact_freeze_max_age so freezing starts earlier.",
        next: "SELECT datname, mxid_age(datminmxid) FROM pg_database ORDER BY 2 DESC; \
               -- then in that database: SELECT c.oid::regclass, mxid_age(c.relminmxid) FROM pg_class c \
               WHERE c.relkind IN ('r','m','t') ORDER BY 2 DESC LIMIT 10;",
    },
};

const SQL: &str = "\
SELECT datname::text AS datname,
       mxid_age(datminmxid)::int8 AS age,
       current_setting('autovacuum_multixact_freeze_max_age')::int8 AS freeze_max_age
FROM pg_database
ORDER BY mxid_age(datminmxid) DESC";

#[async_trait::async_trait]
impl Check for MultixactWraparound {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        wraparound::database_findings(ctx, IdSpace::Multixact, SQL, |finding, _| finding).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    /// Creates about `count` multixacts in `db`: while one session holds a share lock on a row,
    /// every other transaction that share-locks it needs a new multixact naming both lockers.
    fn create_multixacts(cluster: &pgdbre_lab::Cluster, db: &str, count: u32) {
        let primary = cluster.primary();
        primary
            .psql_db(
                db,
                "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1);",
            )
            .unwrap();
        let holder = primary
            .background_session(db, "BEGIN; SELECT id FROM parent WHERE id = 1 FOR SHARE;")
            .expect("hold a share lock");
        primary
            .psql_db(
                db,
                &format!(
                    "DO $$ BEGIN FOR i IN 1..{count} LOOP \
                     PERFORM id FROM parent WHERE id = 1 FOR SHARE; COMMIT; END LOOP; END $$;"
                ),
            )
            .expect("share-lock the row repeatedly");
        drop(holder);
    }

    #[tokio::test]
    async fn reports_a_database_past_the_threshold_with_its_age() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        create_multixacts(cluster, &db, 100);
        // 0.000002 % of 2^31 is about 43 multixacts.
        let overrides = [("warning", 0.000002), ("critical", 100.0)];
        let finding = testkit::finding_where(
            &MultixactWraparound,
            &cluster.primary().dsn(),
            &overrides,
            |f| text(f, "database") == Some(db.as_str()),
        )
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        let age = number(&finding, "mxid_age").unwrap();
        assert!(age >= 100.0, "{finding:?}");
        assert_eq!(number(&finding, "freeze_max_age"), Some(400_000_000.0));
        let left = number(&finding, "multixacts_left").unwrap();
        assert_eq!(left, wraparound::LIMIT - 3_000_000.0 - age);
    }

    #[tokio::test]
    async fn quiet_on_a_young_cluster() {
        let cluster = testing::shared();
        let findings = testkit::findings(&MultixactWraparound, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
