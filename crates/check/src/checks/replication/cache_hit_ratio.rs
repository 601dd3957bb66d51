//! Cache-hit ratio: the share of block reads per database served from shared buffers.
//!
//! A low ratio on an OLTP database means the working set does not fit in `shared_buffers` (or
//! a query scans far more than it should), so reads go to the OS cache or the disk. Only
//! databases with enough block accesses are judged, so a fresh or idle database stays quiet.
//! Reads counted as misses may still be served by the OS page cache: this is a pointer to
//! investigate, not a measure of disk I/O.

use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct CacheHitRatio;

static META: CheckMeta = CheckMeta {
    id: "cache-hit-ratio",
    category: Category::Performance,
    title: "Low buffer cache-hit ratio",
    measures: "Per database, blks_hit / (blks_hit + blks_read) in percent since the statistics reset, for databases \
               with at least min_blocks block accesses.",
    params: &[
        Param { name: "warning", default: 95.0, unit: "percent", help: "hit ratio at or below which it warns" },
        Param { name: "critical", default: 90.0, unit: "percent", help: "hit ratio at or below which it is critical" },
        Param {
            name: "min_blocks",
            default: 100_000.0,
            unit: "count",
            help: "judge a database only after this many block accesses (hits + reads)",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many databases, worst first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Block reads that miss shared buffers go to the OS cache or the disk: latency rises and becomes \
              erratic, and the I/O competes with WAL and checkpoint writes.",
        action: "Find the queries with the most shared_blks_read in pg_stat_statements: a missing index or a \
                 sequential scan of a large table is the usual cause. If the working set truly outgrew memory, \
                 raise shared_buffers (about 25% of RAM is the usual start) or add memory. Analytical databases \
                 naturally have lower ratios: lower the thresholds for them.",
        next: "SELECT queryid, calls, shared_blks_hit, shared_blks_read, left(query, 100) FROM pg_stat_statements \
               ORDER BY shared_blks_read DESC LIMIT 10; SHOW shared_buffers;",
    },
};

/// `$1` is `min_blocks`, `$2` the limit; the worst ratio first.
const SQL: &str = "\
SELECT datname::text AS database, blks_hit::int8 AS blks_hit, blks_read::int8 AS blks_read,
       (100.0 * blks_hit / (blks_hit + blks_read))::float8 AS hit_ratio_percent,
       stats_reset::text AS stats_reset,
       current_setting('shared_buffers') AS shared_buffers
FROM pg_stat_database
WHERE datname IS NOT NULL AND blks_hit + blks_read > 0 AND (blks_hit + blks_read)::float8 >= $1::float8
ORDER BY hit_ratio_percent
LIMIT $2";

#[async_trait::async_trait]
impl Check for CacheHitRatio {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let min_blocks = ctx.param("min_blocks");
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&min_blocks, &limit]).await? {
            let ratio: f64 = row.get("hit_ratio_percent");
            let Some(severity) = ctx.severity_below(ratio) else {
                continue;
            };
            let database: String = row.get("database");
            let hit: i64 = row.get("blks_hit");
            let read: i64 = row.get("blks_read");
            findings.push(
                Finding::new(
                    severity,
                    format!("database \"{database}\""),
                    format!(
                        "cache-hit ratio {ratio:.2}% ({read} of {} block accesses missed shared buffers; warning at {}%)",
                        hit + read,
                        ctx.param("warning")
                    ),
                )
                .with("database", database)
                .with("hit_ratio_percent", (ratio * 100.0).round() / 100.0)
                .with("blks_hit", hit)
                .with("blks_read", read)
                .with("shared_buffers", row.get::<_, String>("shared_buffers"))
                .with("stats_reset", row.get::<_, Option<String>>("stats_reset")),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::testing;

    #[tokio::test]
    async fn judges_a_database_only_with_enough_reads() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let dsn = primary.dsn();
        let ours =
            |f: &Finding| f.evidence("database").and_then(|v| v.as_str()) == Some(db.as_str());
        primary
            .psql_db(&db, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) AS g; SELECT count(*) FROM t;")
            .expect("read some blocks");

        // With the default min_blocks a new database is not judged.
        let quiet = testkit::findings(&CacheHitRatio, &dsn, &[("max_findings", 100_000.0)]).await;
        assert!(!quiet.iter().any(ours), "{quiet:?}");

        // Any ratio is <= 100 %, so a warning at 100 % reports our database with its counters.
        let overrides = [
            ("min_blocks", 1.0),
            ("warning", 100.0),
            ("critical", -1.0),
            ("max_findings", 100_000.0),
        ];
        let finding = testkit::finding_where(&CacheHitRatio, &dsn, &overrides, ours).await;
        assert_eq!(finding.severity, Severity::Warning);
        let hit = finding
            .evidence("blks_hit")
            .and_then(|v| v.as_i64())
            .unwrap();
        let read = finding
            .evidence("blks_read")
            .and_then(|v| v.as_i64())
            .unwrap();
        assert!(hit + read > 0);
        let ratio = finding
            .evidence("hit_ratio_percent")
            .and_then(|v| v.as_f64())
            .unwrap();
        let expected = 100.0 * hit as f64 / (hit + read) as f64;
        assert!((ratio - expected).abs() < 0.01, "{ratio} vs {expected}");
        assert!(finding
            .evidence("shared_buffers")
            .and_then(|v| v.as_str())
            .is_some());
    }
}
