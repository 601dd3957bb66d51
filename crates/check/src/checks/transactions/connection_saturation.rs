//! Connection saturation: client connections in use against the slots ordinary roles can get.
//!
//! Ordinary roles may use `max_connections - superuser_reserved_connections -
//! reserved_connections` (the last from PostgreSQL 16) slots; past that, new connections fail
//! with "remaining connection slots are reserved". Walsenders, autovacuum and background workers
//! have their own slots and are not counted. The evidence breaks usage down by state, user and
//! application so the DBRE sees whether it is a pool leak, idle connections or real load.

use super::tiers::Tiers;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct ConnectionSaturation;

static META: CheckMeta = CheckMeta {
    id: "connection-saturation",
    category: Category::Connections,
    title: "Connection saturation",
    measures: "Client backends in use as a percentage of max_connections minus the reserved slots \
               (superuser_reserved_connections, and reserved_connections from PostgreSQL 16).",
    params: &[
        Param { name: "warning", default: 80.0, unit: "percent", help: "share of available slots in use that warns" },
        Param {
            name: "critical",
            default: 95.0,
            unit: "percent",
            help: "share of available slots in use that is critical",
        },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "When the available slots run out, every new connection from the application fails with \
              'remaining connection slots are reserved', which is an outage for anything that connects \
              per request; a pool leak or a stampede of retries gets there fast.",
        action: "Look at by_state: many 'idle' means oversized or leaking pools (shrink them, or put \
                 PgBouncer in transaction mode in front); many 'idle in transaction' means stuck \
                 application transactions (see idle-in-transaction); many 'active' means real load or \
                 slow queries. Use top_users/top_applications to find the owner. Raise max_connections \
                 only with memory headroom (each backend costs work_mem and more), and it needs a \
                 restart.",
        next: "SELECT usename, application_name, state, count(*) FROM pg_stat_activity WHERE backend_type = \
               'client backend' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20;",
    },
};

/// `{reserved}` is `reserved_connections` where it exists (PostgreSQL 16+), else 0.
const SQL_TEMPLATE: &str = "\
WITH clients AS (
    SELECT usename::text AS user_name, coalesce(application_name, '') AS application_name,
           coalesce(state, 'unknown') AS state
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
)
SELECT (SELECT count(*) FROM clients)::int8 AS used,
       current_setting('max_connections')::int8 AS max_connections,
       current_setting('superuser_reserved_connections')::int8 AS superuser_reserved,
       {reserved}::int8 AS reserved,
       (SELECT coalesce(json_object_agg(state, n ORDER BY state), '{}')
        FROM (SELECT state, count(*) AS n FROM clients GROUP BY state) s)::text AS by_state,
       (SELECT coalesce(json_agg(json_build_object('user', user_name, 'connections', n) ORDER BY n DESC, user_name), '[]')
        FROM (SELECT user_name, count(*) AS n FROM clients GROUP BY user_name
              ORDER BY n DESC, user_name LIMIT 5) u)::text AS top_users,
       (SELECT coalesce(json_agg(json_build_object('application_name', application_name, 'connections', n)
                                 ORDER BY n DESC, application_name), '[]')
        FROM (SELECT application_name, count(*) AS n FROM clients GROUP BY application_name
              ORDER BY n DESC, application_name LIMIT 5) a)::text AS top_applications";

#[async_trait::async_trait]
impl Check for ConnectionSaturation {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let reserved = if ctx.info().version.major() >= 16 {
            "current_setting('reserved_connections')"
        } else {
            "0"
        };
        let row = ctx
            .query_one(&SQL_TEMPLATE.replace("{reserved}", reserved), &[])
            .await?;
        let used: i64 = row.get("used");
        let max_connections: i64 = row.get("max_connections");
        let superuser_reserved: i64 = row.get("superuser_reserved");
        let reserved: i64 = row.get("reserved");
        let available = (max_connections - superuser_reserved - reserved).max(1);
        let percent = (used as f64 / available as f64 * 1000.0).round() / 10.0;
        let Some(tier) = Tiers::warning_critical(ctx).classify(percent) else {
            return Ok(Vec::new());
        };
        let threshold = tier.threshold;
        let json = |column: &str| -> serde_json::Value {
            serde_json::from_str(&row.get::<_, String>(column)).unwrap_or(serde_json::Value::Null)
        };
        Ok(vec![Finding::new(
            tier.severity,
            "server",
            format!("{used} of {available} available connections in use ({percent}%, threshold {threshold}%)"),
        )
        .with("used", used)
        .with("available", available)
        .with("percent_used", percent)
        .with("max_connections", max_connections)
        .with("superuser_reserved_connections", superuser_reserved)
        .with("reserved_connections", reserved)
        .with("by_state", json("by_state"))
        .with("top_users", json("top_users"))
        .with("top_applications", json("top_applications"))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{integer, number};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::{Cluster, LabOptions, PgInstall};

    #[tokio::test]
    async fn reports_usage_against_the_available_slots() {
        // Its own cluster: the count must not include other tests' sessions.
        let cluster = Cluster::start(
            LabOptions::new(PgInstall::for_tests()).setting("max_connections", "10"),
        )
        .expect("start a cluster with max_connections = 10");
        let primary = cluster.primary();
        let sessions: Vec<_> = (0..5)
            .map(|_| {
                primary
                    .background_session("postgres", "SELECT 1;")
                    .expect("open a session")
            })
            .collect();
        // 5 sessions and the check's own = 6 of 10 - 3 superuser-reserved = 7: 85.7 %.
        let findings = testkit::findings(&ConnectionSaturation, &primary.dsn(), &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(integer(finding, "used"), Some(6));
        assert_eq!(integer(finding, "available"), Some(7));
        assert_eq!(integer(finding, "max_connections"), Some(10));
        assert_eq!(number(finding, "percent_used"), Some(85.7));
        assert_eq!(
            finding
                .evidence("by_state")
                .and_then(|v| v.get("idle"))
                .and_then(|v| v.as_i64()),
            Some(5)
        );
        let top_app = &finding
            .evidence("top_applications")
            .and_then(|v| v.as_array())
            .unwrap()[0];
        assert_eq!(top_app["application_name"], "pgdbre-lab-background");
        assert_eq!(top_app["connections"], 5);
        let top_user = &finding
            .evidence("top_users")
            .and_then(|v| v.as_array())
            .unwrap()[0];
        assert_eq!(
            (top_user["user"].as_str(), top_user["connections"].as_i64()),
            (Some("postgres"), Some(6))
        );

        let quiet =
            testkit::findings(&ConnectionSaturation, &primary.dsn(), &[("warning", 90.0)]).await;
        assert!(quiet.is_empty(), "{quiet:?}");
        drop(sessions);
    }
}
