//! Table bloat: heap pages holding far fewer live rows than they could, estimated from statistics.
//!
//! The estimate is the statistics-based one popularised by ioguix's pgsql-bloat-estimation: the
//! expected width of a row (tuple header, null bitmap and the `pg_stats` average width of each
//! column, MAXALIGNed, plus its line pointer) gives rows per page at the table's fillfactor, hence
//! the pages `reltuples` rows need; what `relpages` holds beyond that is bloat. It reads no table
//! data and takes no lock. Tables never analyzed (no `pg_stats`) cannot be estimated and are
//! skipped; TOAST is not counted. The query is shared with [`super::index_bloat`] in
//! [`super::bloat`].
//!
//! A table over the percentage thresholds with less than `warning_bytes` of bloat is shown as
//! info only: a freshly seeded or small table is visible without raising an alert.

use super::bloat::{self, Layout, StatsKey};
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
        Param { name: "min_bytes", default: 1_048_576.0, unit: "bytes", help: "ignore tables with less estimated bloat" },
        Param { name: "warning_bytes", default: 104_857_600.0, unit: "bytes", help: "less estimated bloat than this is info, whatever its share" },
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

static LAYOUT: Layout = Layout {
    candidates: "\
  SELECT c.oid, n.nspname, c.relname, c.relpages::int8 AS relpages,
         greatest(c.reltuples, 0)::float8 AS reltuples, c.relnatts::int4 AS natts,
         coalesce((SELECT o.option_value::int4 FROM pg_options_to_table(c.reloptions) o
                   WHERE o.option_name = 'fillfactor'), 100) AS fillfactor,
         current_setting('block_size')::int8 AS block_size
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm') AND c.relpages > 0
    -- bloat never exceeds the table's pages: a smaller table cannot reach min_bytes
    AND c.relpages::float8 * current_setting('block_size')::float8 >= $1::float8
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'",
    columns: "candidates c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped",
    stats_key: StatsKey {
        relid: "a.attrelid",
        attnum: "a.attnum",
        schema: "c.nspname",
        table: "c.relname",
        column: "a.attname",
    },
    // heap tuple header (23 B + null bitmap) and data, each MAXALIGNed, plus the 4 B line pointer
    tuple_bytes: "ceil((23 + CASE WHEN w.has_nulls THEN ceil(c.natts / 8.0) ELSE 0 END) / 8) * 8
                  + ceil(w.data_width / 8) * 8 + 4",
    // a heap page is a 24 B header and then tuples up to fillfactor
    page_overhead: 24,
    meta_pages: 0,
    // statistics functions for the few reported tables only, not the pg_stat_all_tables view
    report: "pg_stat_get_dead_tuples(w.oid)::int8 AS n_dead_tup,
       to_json(pg_stat_get_last_vacuum_time(w.oid)) #>> '{}' AS last_vacuum,
       to_json(pg_stat_get_last_autovacuum_time(w.oid)) #>> '{}' AS last_autovacuum",
};

#[async_trait::async_trait]
impl Check for TableBloat {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for estimate in bloat::estimate(ctx, &LAYOUT).await? {
            let identity = vec![("table", estimate.name.clone())];
            let finding = bloat::finding(ctx, "table", &estimate, identity, "estimated_rows")
                .with("n_dead_tup", estimate.row.get::<_, i64>("n_dead_tup"));
            findings.push(super::with_vacuum_times(finding, &estimate.row));
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finding_about, integer, number, seeded_database, text};
    use super::*;
    use crate::testkit;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn reports_a_table_after_mass_delete() {
        // Deleting 4 rows in 5 everywhere leaves every page in use, so VACUUM cannot truncate.
        let dsn = seeded_database(
            "CREATE TABLE orders (id int PRIMARY KEY, note text, amount numeric);
              INSERT INTO orders SELECT g, md5(g::text), g FROM generate_series(1, 50000) g;
              ANALYZE orders;
              DELETE FROM orders WHERE id % 5 <> 0;
              VACUUM orders;
              ANALYZE orders;
              CREATE TABLE compact (id int PRIMARY KEY, note text);
              INSERT INTO compact SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
              VACUUM ANALYZE compact;",
            "create a bloated table",
        );
        let overrides = [
            ("min_bytes", 0.0),
            ("warning_bytes", 0.0),
            ("warning", 20.0),
            ("critical", 60.0),
        ];
        let findings = testkit::findings(&TableBloat, &dsn, &overrides).await;
        let orders = finding_about(&findings, "table", "public.orders")
            .unwrap_or_else(|| panic!("public.orders not reported: {findings:?}"));
        let percent = number(&orders, "bloat_percent").unwrap();
        assert!(percent > 50.0, "{orders:?}");
        assert_eq!(orders.severity, crate::Severity::Critical, "{orders:?}");
        let real = integer(&orders, "real_size_bytes").unwrap();
        let bloat = integer(&orders, "bloat_bytes").unwrap();
        assert!(real > 0 && bloat > 0 && bloat < real, "{orders:?}");
        assert_eq!(integer(&orders, "fillfactor"), Some(100));
        assert!(text(&orders, "last_vacuum").is_some(), "{orders:?}");
        // A freshly loaded table is dense: the estimate must not call it bloated.
        assert!(
            finding_about(&findings, "table", "public.compact").is_none(),
            "{findings:?}"
        );
        // Under the default thresholds a few MiB of bloat is shown, but only as info.
        let findings = testkit::findings(&TableBloat, &dsn, &[]).await;
        let orders = finding_about(&findings, "table", "public.orders")
            .unwrap_or_else(|| panic!("public.orders not shown by default: {findings:?}"));
        assert_eq!(orders.severity, crate::Severity::Info, "{orders:?}");
        assert!(orders.summary.contains("info only"), "{orders:?}");
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
        let orders = finding_about(&findings, "table", "public.orders")
            .unwrap_or_else(|| panic!("public.orders not reported to a plain role: {findings:?}"));
        assert!(
            number(&orders, "bloat_percent").unwrap() > 50.0,
            "{orders:?}"
        );
        cluster
            .primary()
            .psql_db(&db, &format!("DROP OWNED BY {role}; "))
            .expect("drop grants");
        cluster.primary().psql(&format!("DROP ROLE {role};")).ok();
    }
}
