//! `pg_stat_user_tables_*{datname,schemaname,relname}` for the connected database, bounded: only
//! the `table_limit` largest tables by `relpages` (never `pg_relation_size`, which would take a
//! lock), filtered by the include/exclude patterns, which the server matches (`~`, PostgreSQL
//! regular expressions) against `schema.table`.

use super::{counter, families_from_rows, gauge, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatUserTables;

// The top-N tables are chosen from pg_class first, then their statistics are read with the
// functions behind pg_stat_user_tables: the view itself groups over every table and index (a
// dozen function calls per row), which over 10,000 tables costs more than the rest of a scrape.
const SQL: &str = "WITH top AS MATERIALIZED ( \
      SELECT c.oid, n.nspname, c.relname, c.relpages FROM pg_catalog.pg_class c \
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
      WHERE c.relkind IN ('r', 'p', 'm', 't') \
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
        AND n.nspname !~ '^pg_toast' \
        AND ($2::text IS NULL OR (n.nspname || '.' || c.relname) ~ $2) \
        AND ($3::text IS NULL OR (n.nspname || '.' || c.relname) !~ $3) \
      ORDER BY c.relpages DESC, n.nspname, c.relname LIMIT $1) \
    SELECT pg_catalog.current_database()::text AS datname, \
      t.nspname::text AS schemaname, t.relname::text AS relname, \
      pg_catalog.pg_stat_get_numscans(t.oid)::float8 AS seq_scan, \
      pg_catalog.pg_stat_get_tuples_returned(t.oid)::float8 AS seq_tup_read, \
      i.idx_scan::float8 AS idx_scan, \
      (i.idx_tup_fetch + pg_catalog.pg_stat_get_tuples_fetched(t.oid))::float8 AS idx_tup_fetch, \
      pg_catalog.pg_stat_get_tuples_inserted(t.oid)::float8 AS n_tup_ins, \
      pg_catalog.pg_stat_get_tuples_updated(t.oid)::float8 AS n_tup_upd, \
      pg_catalog.pg_stat_get_tuples_deleted(t.oid)::float8 AS n_tup_del, \
      pg_catalog.pg_stat_get_tuples_hot_updated(t.oid)::float8 AS n_tup_hot_upd, \
      pg_catalog.pg_stat_get_live_tuples(t.oid)::float8 AS n_live_tup, \
      pg_catalog.pg_stat_get_dead_tuples(t.oid)::float8 AS n_dead_tup, \
      pg_catalog.pg_stat_get_mod_since_analyze(t.oid)::float8 AS n_mod_since_analyze, \
      coalesce(extract(epoch FROM pg_catalog.pg_stat_get_last_vacuum_time(t.oid)), 0)::float8 AS last_vacuum, \
      coalesce(extract(epoch FROM pg_catalog.pg_stat_get_last_autovacuum_time(t.oid)), 0)::float8 AS last_autovacuum, \
      coalesce(extract(epoch FROM pg_catalog.pg_stat_get_last_analyze_time(t.oid)), 0)::float8 AS last_analyze, \
      coalesce(extract(epoch FROM pg_catalog.pg_stat_get_last_autoanalyze_time(t.oid)), 0)::float8 AS last_autoanalyze, \
      pg_catalog.pg_stat_get_vacuum_count(t.oid)::float8 AS vacuum_count, \
      pg_catalog.pg_stat_get_autovacuum_count(t.oid)::float8 AS autovacuum_count, \
      pg_catalog.pg_stat_get_analyze_count(t.oid)::float8 AS analyze_count, \
      pg_catalog.pg_stat_get_autoanalyze_count(t.oid)::float8 AS autoanalyze_count, \
      (t.relpages::float8 * current_setting('block_size')::float8) AS size_bytes \
    FROM top t \
    CROSS JOIN LATERAL ( \
      SELECT sum(pg_catalog.pg_stat_get_numscans(x.indexrelid)) AS idx_scan, \
             coalesce(sum(pg_catalog.pg_stat_get_tuples_fetched(x.indexrelid)), 0) AS idx_tup_fetch \
      FROM pg_catalog.pg_index x WHERE x.indrelid = t.oid) i \
    ORDER BY t.relpages DESC, t.nspname, t.relname";

const COLUMNS: &[Column] = &[
    counter(
        "seq_scan",
        "pg_stat_user_tables_seq_scan",
        "Number of sequential scans initiated on this table",
    ),
    counter(
        "seq_tup_read",
        "pg_stat_user_tables_seq_tup_read",
        "Number of live rows fetched by sequential scans",
    ),
    counter(
        "idx_scan",
        "pg_stat_user_tables_idx_scan",
        "Number of index scans initiated on this table",
    ),
    counter(
        "idx_tup_fetch",
        "pg_stat_user_tables_idx_tup_fetch",
        "Number of live rows fetched by index scans",
    ),
    counter(
        "n_tup_ins",
        "pg_stat_user_tables_n_tup_ins",
        "Number of rows inserted",
    ),
    counter(
        "n_tup_upd",
        "pg_stat_user_tables_n_tup_upd",
        "Number of rows updated",
    ),
    counter(
        "n_tup_del",
        "pg_stat_user_tables_n_tup_del",
        "Number of rows deleted",
    ),
    counter(
        "n_tup_hot_upd",
        "pg_stat_user_tables_n_tup_hot_upd",
        "Number of rows HOT updated (i.e., with no separate index update required)",
    ),
    gauge(
        "n_live_tup",
        "pg_stat_user_tables_n_live_tup",
        "Estimated number of live rows",
    ),
    gauge(
        "n_dead_tup",
        "pg_stat_user_tables_n_dead_tup",
        "Estimated number of dead rows",
    ),
    gauge(
        "n_mod_since_analyze",
        "pg_stat_user_tables_n_mod_since_analyze",
        "Estimated number of rows changed since last analyze",
    ),
    gauge(
        "last_vacuum",
        "pg_stat_user_tables_last_vacuum",
        "Last time at which this table was manually vacuumed (not counting VACUUM FULL)",
    ),
    gauge(
        "last_autovacuum",
        "pg_stat_user_tables_last_autovacuum",
        "Last time at which this table was vacuumed by the autovacuum daemon",
    ),
    gauge(
        "last_analyze",
        "pg_stat_user_tables_last_analyze",
        "Last time at which this table was manually analyzed",
    ),
    gauge(
        "last_autoanalyze",
        "pg_stat_user_tables_last_autoanalyze",
        "Last time at which this table was analyzed by the autovacuum daemon",
    ),
    counter(
        "vacuum_count",
        "pg_stat_user_tables_vacuum_count",
        "Number of times this table has been manually vacuumed (not counting VACUUM FULL)",
    ),
    counter(
        "autovacuum_count",
        "pg_stat_user_tables_autovacuum_count",
        "Number of times this table has been vacuumed by the autovacuum daemon",
    ),
    counter(
        "analyze_count",
        "pg_stat_user_tables_analyze_count",
        "Number of times this table has been manually analyzed",
    ),
    counter(
        "autoanalyze_count",
        "pg_stat_user_tables_autoanalyze_count",
        "Number of times this table has been analyzed by the autovacuum daemon",
    ),
    gauge(
        "size_bytes",
        "pgdbre_table_size_bytes",
        "Table size estimated from pg_class.relpages (as of the last VACUUM or ANALYZE), in bytes.",
    ),
];

#[async_trait]
impl Collector for StatUserTables {
    fn id(&self) -> &'static str {
        "stat-user-tables"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_user_tables` (top-N by relpages, include/exclude patterns): pg_stat_user_tables_*, pgdbre_table_size_bytes"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let options = scrape.options;
        let limit = i64::from(options.table_limit);
        let rows = scrape
            .session
            .client()
            .query(
                SQL,
                &[&limit, &options.table_include, &options.table_exclude],
            )
            .await?;
        families_from_rows(&rows, &["datname", "schemaname", "relname"], COLUMNS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect_with, label_values, seeded_database};
    use crate::ScrapeOptions;

    #[tokio::test]
    async fn only_the_largest_matching_tables() {
        let (database, dsn) = seeded_database(
            "CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g; \
             CREATE TABLE medium AS SELECT g FROM generate_series(1, 2000) g; \
             CREATE TABLE small (id int); CREATE TABLE skipped_big AS SELECT * FROM big; \
             VACUUM ANALYZE;",
            "seed",
        );
        let options = ScrapeOptions {
            table_limit: 2,
            table_exclude: Some("^public\\.skipped_".into()),
            ..ScrapeOptions::default()
        };
        let families = collect_with(&StatUserTables, &dsn, &options).await;
        let tables = label_values(&families, "pg_stat_user_tables_n_live_tup", "relname");
        assert_eq!(tables, ["big", "medium"]);
        let datnames = label_values(&families, "pgdbre_table_size_bytes", "datname");
        assert!(datnames.iter().all(|d| d == &database));

        let only_small = ScrapeOptions {
            table_include: Some("\\.small$".into()),
            ..ScrapeOptions::default()
        };
        let families = collect_with(&StatUserTables, &dsn, &only_small).await;
        assert_eq!(
            label_values(&families, "pg_stat_user_tables_seq_scan", "relname"),
            ["small"]
        );
    }
}
