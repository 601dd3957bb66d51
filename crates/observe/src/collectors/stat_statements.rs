//! `pgdbre_stat_statements_*{queryid,datname,user}` from `pg_stat_statements`, bounded: only the
//! `statements_limit` statements with the most total execution time, and never the query text
//! as a label (it is unbounded and may hold literals).
//!
//! The extension is optional. Where it is not installed in the connected database the collector
//! is "not applicable" rather than failing: it answers `pgdbre_stat_statements_available 0` and
//! nothing else, and its `pgdbre_collector_up` stays 1.
//!
//! Column names follow the installed extension rather than the server major: `total_exec_time`
//! (1.8, PostgreSQL 13+) was `total_time` before, and `shared_blk_read_time` (1.11, PostgreSQL
//! 17+) was `blk_read_time`; an extension not yet `ALTER EXTENSION … UPDATE`d keeps the old ones.

use super::{counter, families_from_rows, Collector, Column, Scrape};
use crate::Family;
use async_trait::async_trait;

pub struct StatStatements;

/// Where the extension lives (already quoted) and the columns its view has.
const DETECT_SQL: &str = "SELECT pg_catalog.quote_ident(n.nspname)::text AS schema, \
      array(SELECT a.attname::text FROM pg_catalog.pg_attribute a \
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns \
    FROM pg_catalog.pg_extension e \
    JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'pg_stat_statements' \
    WHERE e.extname = 'pg_stat_statements'";

const COLUMNS: &[Column] = &[
    counter(
        "calls",
        "pgdbre_stat_statements_calls_total",
        "Number of times the statement was executed.",
    ),
    counter(
        "exec_seconds",
        "pgdbre_stat_statements_exec_seconds_total",
        "Total time spent executing the statement, in seconds.",
    ),
    counter(
        "rows",
        "pgdbre_stat_statements_rows_total",
        "Total number of rows retrieved or affected by the statement.",
    ),
    counter(
        "shared_blks_hit",
        "pgdbre_stat_statements_shared_blks_hit_total",
        "Total number of shared block cache hits by the statement.",
    ),
    counter(
        "shared_blks_read",
        "pgdbre_stat_statements_shared_blks_read_total",
        "Total number of shared blocks read by the statement.",
    ),
    counter(
        "block_read_seconds",
        "pgdbre_stat_statements_block_read_seconds_total",
        "Total time the statement spent reading shared blocks, in seconds (0 unless track_io_timing is on).",
    ),
    counter(
        "block_write_seconds",
        "pgdbre_stat_statements_block_write_seconds_total",
        "Total time the statement spent writing shared blocks, in seconds (0 unless track_io_timing is on).",
    ),
];

/// The top-N query for an extension in `schema` whose view has `columns`. The function is
/// called with `showtext => false`: the view reads the whole query-text file on every call,
/// which the collector never needs. Rows are summed over `toplevel` (PostgreSQL 14+ keeps
/// top-level and nested executions apart), so each series key appears once.
fn sql(schema: &str, columns: &[String]) -> String {
    let has = |name: &str| columns.iter().any(|c| c == name);
    let total = if has("total_exec_time") {
        "total_exec_time"
    } else {
        "total_time"
    };
    let (read_time, write_time) = if has("shared_blk_read_time") {
        ("shared_blk_read_time", "shared_blk_write_time")
    } else {
        ("blk_read_time", "blk_write_time")
    };
    format!(
        "SELECT s.queryid::text AS queryid, \
           coalesce(d.datname::text, s.dbid::text) AS datname, \
           coalesce(r.rolname::text, s.userid::text) AS \"user\", \
           s.calls, s.exec_ms / 1000 AS exec_seconds, s.rows, s.shared_blks_hit, \
           s.shared_blks_read, s.read_ms / 1000 AS block_read_seconds, \
           s.write_ms / 1000 AS block_write_seconds \
         FROM (SELECT queryid, dbid, userid, sum(calls)::float8 AS calls, \
                 sum({total})::float8 AS exec_ms, sum(rows)::float8 AS rows, \
                 sum(shared_blks_hit)::float8 AS shared_blks_hit, \
                 sum(shared_blks_read)::float8 AS shared_blks_read, \
                 sum({read_time})::float8 AS read_ms, sum({write_time})::float8 AS write_ms \
               FROM {schema}.pg_stat_statements(false) \
               WHERE queryid IS NOT NULL \
               GROUP BY queryid, dbid, userid \
               ORDER BY exec_ms DESC, queryid LIMIT $1) s \
         LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid \
         LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid \
         ORDER BY s.exec_ms DESC, s.queryid"
    )
}

fn available(value: bool) -> Family {
    Family::gauge(
        "pgdbre_stat_statements_available",
        "Whether the pg_stat_statements extension is installed in the connected database (1) or not (0: no pgdbre_stat_statements_* series).",
    )
    .with(&[], f64::from(u8::from(value)))
}

#[async_trait]
impl Collector for StatStatements {
    fn id(&self) -> &'static str {
        "stat-statements"
    }
    fn describe(&self) -> &'static str {
        "`pg_stat_statements` (top-N by total execution time): pgdbre_stat_statements_*"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let limit = scrape.options.statements_limit;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = scrape.session.client();
        let Some(found) = client.query_opt(DETECT_SQL, &[]).await? else {
            return Ok(vec![available(false)]);
        };
        let schema: String = found.try_get("schema")?;
        let columns: Vec<String> = found.try_get("columns")?;
        let rows = client
            .query(sql(&schema, &columns).as_str(), &[&i64::from(limit)])
            .await?;
        let mut families = vec![available(true)];
        families.extend(families_from_rows(
            &rows,
            &["queryid", "datname", "user"],
            COLUMNS,
        )?);
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, collect_with, family, seeded_database, value};
    use crate::ScrapeOptions;

    #[test]
    fn follows_the_installed_column_names() {
        let pg12: Vec<String> = ["total_time", "blk_read_time"].map(String::from).into();
        let pg17: Vec<String> = ["total_exec_time", "shared_blk_read_time"]
            .map(String::from)
            .into();
        assert!(sql("public", &pg12).contains("sum(total_time)"));
        assert!(sql("public", &pg12).contains("sum(blk_read_time)"));
        assert!(sql("public", &pg17).contains("sum(total_exec_time)"));
        assert!(sql("public", &pg17).contains("sum(shared_blk_write_time)"));
    }

    #[tokio::test]
    async fn exports_the_top_statements_by_queryid() {
        let cluster = pgdbre_lab::testing::shared();
        let database = pgdbre_lab::testing::fresh_database(cluster);
        let primary = cluster.primary();
        primary
            .psql_db(
                &database,
                "CREATE TABLE marker_for_statements (id int); \
                 SELECT count(*) FROM marker_for_statements; \
                 SELECT count(*) FROM marker_for_statements; \
                 SELECT count(*) FROM marker_for_statements;",
            )
            .expect("run statements");
        let queryid = primary
            .psql_db(
                &database,
                "SELECT queryid FROM pg_stat_statements s \
                 JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database() \
                 WHERE query LIKE 'SELECT count(*) FROM marker_for_statements%'",
            )
            .expect("find queryid");
        assert!(!queryid.is_empty(), "pg_stat_statements has no entry");

        // Every statement of the database, so the marker is in the top-N whatever else ran.
        let options = ScrapeOptions {
            statements_limit: 100_000,
            ..ScrapeOptions::default()
        };
        let dsn = primary.dsn_for(&database);
        let families = collect_with(&StatStatements, &dsn, &options).await;
        let labels = [
            ("queryid", queryid.as_str()),
            ("datname", database.as_str()),
            ("user", "postgres"),
        ];
        assert_eq!(
            value(&families, "pgdbre_stat_statements_calls_total", &labels),
            Some(3.0)
        );
        assert!(
            value(
                &families,
                "pgdbre_stat_statements_exec_seconds_total",
                &labels
            )
            .unwrap()
                > 0.0
        );
        assert_eq!(
            value(&families, "pgdbre_stat_statements_rows_total", &labels),
            Some(3.0)
        );
        assert_eq!(
            value(&families, "pgdbre_stat_statements_available", &[]),
            Some(1.0)
        );

        // The default limit bounds the series.
        let families = collect(&StatStatements, &dsn).await;
        let series = family(&families, "pgdbre_stat_statements_calls_total")
            .samples
            .len();
        assert!((1..=20).contains(&series), "{series} series");
    }

    #[tokio::test]
    async fn without_the_extension_it_is_not_applicable() {
        let (_, dsn) = seeded_database("DROP EXTENSION pg_stat_statements;", "drop extension");
        let families = collect(&StatStatements, &dsn).await;
        assert_eq!(families.len(), 1, "{families:?}");
        assert_eq!(
            value(&families, "pgdbre_stat_statements_available", &[]),
            Some(0.0)
        );
    }
}
