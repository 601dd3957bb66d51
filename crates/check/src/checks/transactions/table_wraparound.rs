//! Transaction-id wraparound per table in the connected database: which tables hold
//! `datfrozenxid` back, oldest first.
//!
//! `txid-wraparound` says a database is getting old; this check names the tables to freeze.
//! A table's effective age is the older of its own `relfrozenxid` and its TOAST table's, since
//! vacuum freezes both together. Catalog tables and other sessions' temporary tables are
//! included on purpose: either can be the one pinning `datfrozenxid` (orphaned temporary tables
//! are a classic cause, because autovacuum cannot process them).

use super::wraparound::{self, IdSpace};
use crate::finding::human_bytes;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct TableWraparound;

static META: CheckMeta = CheckMeta {
    id: "table-wraparound",
    category: Category::Transactions,
    title: "Tables nearing transaction id wraparound",
    measures: "Per table of the connected database, the older of age(relfrozenxid) of the table and of \
               its TOAST table, as a percentage of the 2^31 transaction id limit.",
    params: &[
        Param { name: "warning", default: 50.0, unit: "percent", help: "share of the 2^31 xid limit that warns" },
        Param {
            name: "critical",
            default: 75.0,
            unit: "percent",
            help: "share of the 2^31 xid limit that is critical",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many tables, oldest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "The oldest table decides the database's datfrozenxid; when that comes within 3 million \
              transactions of 2^31, PostgreSQL stops accepting writes cluster-wide until the table is \
              vacuumed, which on a big table takes hours.",
        action: "VACUUM (FREEZE, VERBOSE) the reported tables, oldest first, at a quiet time (it reads the \
                 whole table). If autovacuum already runs on them, let it finish and check in \
                 pg_stat_progress_vacuum that it is not stuck behind a held xmin horizon (see \
                 xmin-horizon). Orphaned temporary tables (persistence temporary) must be dropped.",
        next: "SELECT c.oid::regclass, age(c.relfrozenxid), c.relpersistence, \
               pg_stat_get_last_autovacuum_time(c.oid) FROM pg_class c WHERE c.relkind IN ('r','m') \
               ORDER BY 2 DESC LIMIT 20; -- then: VACUUM (FREEZE, VERBOSE) <table>;",
    },
};

/// `$1` is the warning age in transactions, `$2` the number of rows wanted.
const SQL: &str = "\
SELECT n.nspname::text AS schema_name,
       c.relname::text AS table_name,
       c.relkind::text AS relkind,
       c.relpersistence::text AS persistence,
       greatest(age(c.relfrozenxid), age(t.relfrozenxid))::int8 AS xid_age,
       age(c.relfrozenxid)::int8 AS table_xid_age,
       age(t.relfrozenxid)::int8 AS toast_xid_age,
       ((c.relpages::int8 + coalesce(t.relpages, 0)::int8) * current_setting('block_size')::int8) AS size_bytes,
       pg_stat_get_last_vacuum_time(c.oid)::text AS last_vacuum,
       pg_stat_get_last_autovacuum_time(c.oid)::text AS last_autovacuum,
       current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm')
  AND greatest(age(c.relfrozenxid), age(t.relfrozenxid)) >= least($1::int8, current_setting('autovacuum_freeze_max_age')::int8 + 1)
ORDER BY xid_age DESC
LIMIT $2::int8";

#[async_trait::async_trait]
impl Check for TableWraparound {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let (warning, critical) = (ctx.param("warning"), ctx.param("critical"));
        let warning_age = (warning / 100.0 * wraparound::LIMIT).ceil() as i64;
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&warning_age, &limit]).await? {
            let age = row.get::<_, i64>("xid_age") as f64;
            let freeze_max_age = row.get::<_, i64>("freeze_max_age") as f64;
            let Some(severity) = wraparound::severity(age, freeze_max_age, warning, critical)
            else {
                continue;
            };
            let table = format!(
                "{}.{}",
                row.get::<_, String>("schema_name"),
                row.get::<_, String>("table_name")
            );
            let percent = wraparound::round_percent(wraparound::percent_to_limit(age));
            let size = row.get::<_, i64>("size_bytes");
            let summary = wraparound::summary(
                IdSpace::Transaction,
                severity,
                age,
                freeze_max_age,
                (warning, critical),
                &format!(
                    "freezing it means reading about {}",
                    human_bytes(size as f64)
                ),
            );
            let persistence = match row.get::<_, String>("persistence").as_str() {
                "t" => "temporary",
                "u" => "unlogged",
                _ => "permanent",
            };
            let kind = if row.get::<_, String>("relkind") == "m" {
                "materialized view"
            } else {
                "table"
            };
            findings.push(
                Finding::new(severity, format!("{kind} {table}"), summary)
                    .with("table", table)
                    .with("kind", kind)
                    .with("persistence", persistence)
                    .with("xid_age", age)
                    .with("table_xid_age", row.get::<_, i64>("table_xid_age"))
                    .with("toast_xid_age", row.get::<_, Option<i64>>("toast_xid_age"))
                    .with("percent_to_limit", percent)
                    .with("freeze_max_age", freeze_max_age)
                    .with("size_bytes", size)
                    .with("last_vacuum", row.get::<_, Option<String>>("last_vacuum"))
                    .with(
                        "last_autovacuum",
                        row.get::<_, Option<String>>("last_autovacuum"),
                    ),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{burn_xids, integer, number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_an_old_table_with_its_age_and_size() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        primary
            .psql_db(&db, "CREATE TABLE aged (id int, payload text); INSERT INTO aged SELECT g, 'x' FROM generate_series(1, 1000) g; ANALYZE aged;")
            .unwrap();
        burn_xids(primary, &db, 1000);
        // 0.00004 % of 2^31 is about 859 transactions. The fresh database's catalog tables are
        // older than ours, so ask for every table.
        let overrides = [
            ("warning", 0.00004),
            ("critical", 100.0),
            ("max_findings", 10_000.0),
        ];
        let dsn = primary.dsn_for(&db);
        let finding = testkit::finding_where(&TableWraparound, &dsn, &overrides, |f| {
            text(f, "table") == Some("public.aged")
        })
        .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, "table public.aged");
        assert_eq!(text(&finding, "persistence"), Some("permanent"));
        assert!(
            number(&finding, "xid_age").unwrap() >= 1000.0,
            "{finding:?}"
        );
        assert!(
            integer(&finding, "size_bytes").unwrap() >= 8192,
            "{finding:?}"
        );
        assert!(
            finding.evidence("last_vacuum").is_some_and(|v| v.is_null()),
            "{finding:?}"
        );
    }

    #[tokio::test]
    async fn caps_findings_and_is_quiet_below_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        primary
            .psql_db(&db, "CREATE TABLE young (id int);")
            .unwrap();
        let dsn = primary.dsn_for(&db);
        let quiet = testkit::findings(&TableWraparound, &dsn, &[]).await;
        assert!(quiet.is_empty(), "{quiet:?}");
        let capped = testkit::findings(
            &TableWraparound,
            &dsn,
            &[("warning", 0.0), ("max_findings", 3.0)],
        )
        .await;
        assert_eq!(capped.len(), 3, "{capped:?}");
        let ages: Vec<f64> = capped
            .iter()
            .map(|f| number(f, "xid_age").unwrap())
            .collect();
        assert!(
            ages.windows(2).all(|pair| pair[0] >= pair[1]),
            "oldest first: {ages:?}"
        );
    }
}
