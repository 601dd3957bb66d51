//! Table bloat: heap pages holding far fewer live rows than they could, estimated from statistics.
//!
//! The estimate is the statistics-based one popularised by ioguix's pgsql-bloat-estimation: the
//! expected width of a row (tuple header, null bitmap and the `pg_stats` average width of each
//! column, MAXALIGNed, plus its line pointer) gives rows per page at the table's fillfactor, hence
//! the pages `reltuples` rows need; what `relpages` holds beyond that is bloat. It reads no table
//! data and takes no lock. Tables never analyzed (no `pg_stats`) cannot be estimated and are
//! skipped; TOAST is not counted.

use super::{limit, round1};
use crate::finding::human_bytes;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct TableBloat;

static META: CheckMeta = CheckMeta {
    id: "table-bloat",
    category: Category::Maintenance,
    title: "Table bloat",
    measures: "Estimated share of each table's heap pages beyond what its live rows need at its fillfactor, \
               from pg_stats widths and pg_class.relpages/reltuples.",
    params: &[
        Param { name: "min_bytes", default: 104_857_600.0, unit: "bytes", help: "ignore tables with less estimated bloat" },
        Param { name: "warning", default: 50.0, unit: "percent", help: "bloat share of the table that warns" },
        Param { name: "critical", default: 80.0, unit: "percent", help: "bloat share of the table that is critical" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many tables, most bloat first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Bloated tables waste disk and cache: sequential scans read the empty space, the working set \
              stops fitting in shared_buffers, and backups and replicas grow with it. Plain VACUUM makes \
              the space reusable but does not give it back.",
        action: "Check first that vacuum can keep up (no long transactions or stale slots pinning xmin; \
                 autovacuum tuned for the table). To shrink the table online use pg_repack \
                 (or pg_squeeze); VACUUM FULL / CLUSTER also shrink it but hold an ACCESS EXCLUSIVE lock \
                 for the whole rewrite.",
        next: "SELECT n_live_tup, n_dead_tup, last_autovacuum FROM pg_stat_user_tables WHERE relid = '<table>'::regclass; \
               -- then: pg_repack --no-order --table <table> <dbname>",
    },
};

/// `{stats_join}` is [`super::stats_join`] for the columns of `pg_attribute a` of table `h`.
const SQL: &str = "\
WITH heap AS (
  SELECT c.oid, n.nspname, c.relname, c.relpages::int8 AS relpages,
         greatest(c.reltuples, 0)::float8 AS reltuples, c.relnatts::int4 AS natts,
         coalesce((SELECT o.option_value::int4 FROM pg_options_to_table(c.reloptions) o
                   WHERE o.option_name = 'fillfactor'), 100) AS fillfactor,
         current_setting('block_size')::int8 AS block_size
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm') AND c.relpages > 0
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
widths AS (
  SELECT h.oid,
         sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
         bool_or(s.null_frac > 0) AS has_nulls,
         count(*) = count(s.avg_width) AS all_analyzed
  FROM heap h
  JOIN pg_attribute a ON a.attrelid = h.oid AND a.attnum > 0 AND NOT a.attisdropped
  {stats_join}
  GROUP BY h.oid
),
estimate AS (
  -- heap tuple header (23 B + null bitmap) and data, each MAXALIGNed, plus the 4 B line pointer
  SELECT h.*,
         (ceil((23 + CASE WHEN w.has_nulls THEN ceil(h.natts / 8.0) ELSE 0 END) / 8) * 8
          + ceil(w.data_width / 8) * 8 + 4)::float8 AS tuple_bytes
  FROM heap h
  JOIN widths w ON w.oid = h.oid
  WHERE w.all_analyzed
),
bloat AS (
  -- a heap page is a 24 B header and then tuples up to fillfactor
  SELECT e.*,
         greatest(e.relpages - ceil(e.reltuples
                  / greatest(floor((e.block_size - 24) * e.fillfactor / 100.0 / e.tuple_bytes), 1)), 0)::int8
           AS bloat_pages
  FROM estimate e
),
worst AS (
  SELECT b.oid, format('%I.%I', b.nspname, b.relname) AS table_name,
         (b.relpages * b.block_size)::int8 AS real_size_bytes,
         (b.bloat_pages * b.block_size)::int8 AS bloat_bytes,
         (100.0 * b.bloat_pages / b.relpages)::float8 AS bloat_percent,
         b.fillfactor, b.reltuples::int8 AS estimated_rows
  FROM bloat b
  WHERE b.bloat_pages * b.block_size >= $1::float8
    AND 100.0 * b.bloat_pages / b.relpages >= $2::float8
  ORDER BY bloat_bytes DESC, table_name
  LIMIT $3::int8
)
-- statistics functions for the few reported tables only, not the pg_stat_all_tables view
SELECT w.*, pg_stat_get_dead_tuples(w.oid)::int8 AS n_dead_tup,
       to_json(pg_stat_get_last_vacuum_time(w.oid)) #>> '{}' AS last_vacuum,
       to_json(pg_stat_get_last_autovacuum_time(w.oid)) #>> '{}' AS last_autovacuum
FROM worst w
ORDER BY w.bloat_bytes DESC, w.table_name";

#[async_trait::async_trait]
impl Check for TableBloat {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_bytes = ctx.param("min_bytes");
        let min_percent = ctx.param("warning").min(ctx.param("critical"));
        let key = super::StatsKey {
            relid: "a.attrelid",
            attnum: "a.attnum",
            schema: "h.nspname",
            table: "h.relname",
            column: "a.attname",
        };
        let sql = SQL.replace("{stats_join}", &super::stats_join(ctx, &key));
        let rows = ctx
            .query(&sql, &[&min_bytes, &min_percent, &limit(ctx)])
            .await?;
        let mut findings = Vec::new();
        for row in rows {
            let percent: f64 = row.get("bloat_percent");
            let Some(severity) = ctx.severity_above(percent) else {
                continue;
            };
            let table: String = row.get("table_name");
            let bloat_bytes: i64 = row.get("bloat_bytes");
            let real_bytes: i64 = row.get("real_size_bytes");
            findings.push(
                Finding::new(
                    severity,
                    format!("table {table}"),
                    format!(
                        "~{} of {} is bloat ({:.0}%, threshold {:.0}%)",
                        human_bytes(bloat_bytes as f64),
                        human_bytes(real_bytes as f64),
                        percent,
                        ctx.param("warning")
                    ),
                )
                .with("table", table)
                .with("real_size_bytes", real_bytes)
                .with("bloat_bytes", bloat_bytes)
                .with("bloat_percent", round1(percent))
                .with("fillfactor", row.get::<_, i32>("fillfactor"))
                .with("estimated_rows", row.get::<_, i64>("estimated_rows"))
                .with("n_dead_tup", row.get::<_, i64>("n_dead_tup"))
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
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_table_after_mass_delete() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        // Deleting 4 rows in 5 everywhere leaves every page in use, so VACUUM cannot truncate.
        cluster
            .primary()
            .psql_db(
                &db,
                "CREATE TABLE orders (id int PRIMARY KEY, note text, amount numeric);
                 INSERT INTO orders SELECT g, md5(g::text), g FROM generate_series(1, 50000) g;
                 ANALYZE orders;
                 DELETE FROM orders WHERE id % 5 <> 0;
                 VACUUM orders;
                 ANALYZE orders;
                 CREATE TABLE compact (id int PRIMARY KEY, note text);
                 INSERT INTO compact SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
                 VACUUM ANALYZE compact;",
            )
            .expect("create a bloated table");
        let dsn = cluster.primary().dsn_for(&db);
        let overrides = [("min_bytes", 0.0), ("warning", 20.0), ("critical", 60.0)];
        let findings = testkit::findings(&TableBloat, &dsn, &overrides).await;
        let orders = findings
            .iter()
            .find(|f| f.evidence("table").and_then(|v| v.as_str()) == Some("public.orders"))
            .unwrap_or_else(|| panic!("public.orders not reported: {findings:?}"));
        let percent = orders
            .evidence("bloat_percent")
            .and_then(|v| v.as_f64())
            .unwrap();
        assert!(percent > 50.0, "{orders:?}");
        assert_eq!(orders.severity, crate::Severity::Critical, "{orders:?}");
        let real = orders
            .evidence("real_size_bytes")
            .and_then(|v| v.as_i64())
            .unwrap();
        let bloat = orders
            .evidence("bloat_bytes")
            .and_then(|v| v.as_i64())
            .unwrap();
        assert!(real > 0 && bloat > 0 && bloat < real, "{orders:?}");
        assert_eq!(
            orders.evidence("fillfactor").and_then(|v| v.as_i64()),
            Some(100)
        );
        assert!(
            orders
                .evidence("last_vacuum")
                .and_then(|v| v.as_str())
                .is_some(),
            "{orders:?}"
        );
        // A freshly loaded table is dense: the estimate must not call it bloated.
        assert!(
            !findings
                .iter()
                .any(|f| f.evidence("table").and_then(|v| v.as_str()) == Some("public.compact")),
            "{findings:?}"
        );
    }

    #[tokio::test]
    async fn estimates_from_pg_stats_without_superuser() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        // Roles are cluster-wide: name it after the test's own database.
        let role = format!("{db}_reader");
        cluster
            .primary()
            .psql_db(
                &db,
                &format!(
                    "CREATE ROLE {role} LOGIN PASSWORD 'reader-secret';
                     CREATE TABLE orders (id int PRIMARY KEY, note text);
                     INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
                     DELETE FROM orders WHERE id % 5 <> 0;
                     VACUUM orders;
                     ANALYZE orders;
                     GRANT SELECT ON orders TO {role};"
                ),
            )
            .expect("create a bloated table readable by a plain role");
        let dsn = cluster.primary().dsn_for(&db).replace(
            "user=postgres",
            &format!("user={role} password=reader-secret"),
        );
        let overrides = [("min_bytes", 0.0), ("warning", 20.0)];
        let findings = testkit::findings(&TableBloat, &dsn, &overrides).await;
        let orders = findings
            .iter()
            .find(|f| f.evidence("table").and_then(|v| v.as_str()) == Some("public.orders"))
            .unwrap_or_else(|| panic!("public.orders not reported to a plain role: {findings:?}"));
        assert!(
            orders
                .evidence("bloat_percent")
                .and_then(|v| v.as_f64())
                .unwrap()
                > 50.0,
            "{orders:?}"
        );
        cluster
            .primary()
            .psql_db(&db, &format!("DROP OWNED BY {role}; "))
            .expect("drop grants");
        cluster.primary().psql(&format!("DROP ROLE {role};")).ok();
    }
}
