//! Superuser sprawl: how many roles can log in with unlimited power, and which other login roles
//! can bypass row-level security or stream the whole cluster.
//!
//! Every login superuser is a credential that can read every row, run programs as the server's
//! OS user (`COPY ... PROGRAM`) and drop the cluster; each one beyond the operators' own is an
//! application or person that should have a narrower role.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};
use serde_json::json;

/// See the module docs.
pub struct SuperuserSprawl;

static META: CheckMeta = CheckMeta {
    id: "superuser-sprawl",
    category: Category::Security,
    title: "Too many superusers",
    measures: "Login roles with superuser besides the bootstrap superuser, and login roles with REPLICATION or BYPASSRLS.",
    params: &[
        Param {
            name: "max_superusers",
            default: 1.0,
            unit: "count",
            help: "login superusers allowed besides the bootstrap superuser (e.g. one break-glass admin)",
        },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "roles listed at most" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "A superuser bypasses every permission and row-level security policy, can run OS commands as \
              the server user and destroy the cluster; each extra login superuser is another credential \
              whose leak is total. REPLICATION can copy all data; BYPASSRLS ignores row-level policies.",
        action: "For each listed role, find who uses it and give them a role with only the privileges needed \
                 (pg_monitor, pg_read_all_data, ownership of their schema, pg_signal_backend, ...); then \
                 ALTER ROLE ... NOSUPERUSER or NOLOGIN. Keep the bootstrap superuser for break-glass use.",
        next: "SELECT rolname, rolsuper, rolreplication, rolbypassrls, rolvaliduntil FROM pg_roles \
               WHERE rolcanlogin AND (rolsuper OR rolreplication OR rolbypassrls) ORDER BY rolname; \
               -- then: ALTER ROLE <name> NOSUPERUSER;",
    },
};

// pg_roles is readable by every role; oid 10 is the bootstrap superuser created by initdb.
const SQL: &str = "\
SELECT rolname::text AS role, rolsuper, rolreplication, rolbypassrls,
       rolvaliduntil::text AS valid_until, oid = 10 AS bootstrap
FROM pg_roles
WHERE rolcanlogin AND (rolsuper OR rolreplication OR rolbypassrls)
ORDER BY rolname";

#[async_trait::async_trait]
impl Check for SuperuserSprawl {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let max_superusers = ctx.param("max_superusers").max(0.0) as usize;
        let listed = ctx.param("max_findings").max(0.0) as usize;
        let mut superusers = Vec::new();
        let mut privileged = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let role: String = row.get("role");
            let valid_until: Option<String> = row.get("valid_until");
            if row.get::<_, bool>("rolsuper") {
                if !row.get::<_, bool>("bootstrap") {
                    superusers.push(json!({ "role": role, "valid_until": valid_until }));
                }
            } else {
                privileged.push((
                    role,
                    row.get::<_, bool>("rolreplication"),
                    row.get::<_, bool>("rolbypassrls"),
                    valid_until,
                ));
            }
        }
        let mut findings = Vec::new();
        if superusers.len() > max_superusers {
            let count = superusers.len();
            let names: Vec<&str> = superusers
                .iter()
                .filter_map(|s| s["role"].as_str())
                .take(listed)
                .collect();
            findings.push(
                Finding::new(
                    Severity::Warning,
                    "cluster",
                    format!(
                        "{count} login superusers besides the bootstrap superuser (allowed {max_superusers}): {}",
                        names.join(", ")
                    ),
                )
                .with("count", count)
                .with("max_superusers", max_superusers)
                .with("superusers", superusers.into_iter().take(listed).collect::<Vec<_>>()),
            );
        }
        for (role, replication, bypassrls, valid_until) in privileged.into_iter().take(listed) {
            let powers: Vec<&str> = [(replication, "REPLICATION"), (bypassrls, "BYPASSRLS")]
                .into_iter()
                .filter(|p| p.0)
                .map(|p| p.1)
                .collect();
            findings.push(
                Finding::new(
                    Severity::Info,
                    format!("role \"{role}\""),
                    format!("login role {role} has {}", powers.join(" and ")),
                )
                .with("role", role)
                .with("replication", replication)
                .with("bypassrls", bypassrls)
                .with("valid_until", valid_until),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{testing, Cluster};

    /// Drops the test's roles however the test ends.
    struct Roles<'a> {
        cluster: &'a Cluster,
        names: Vec<String>,
    }

    impl Drop for Roles<'_> {
        fn drop(&mut self) {
            let sql: String = self
                .names
                .iter()
                .map(|name| format!("DROP ROLE IF EXISTS {name};\n"))
                .collect();
            if let Err(error) = self.cluster.primary().psql(&sql) {
                eprintln!("dropping test roles: {error}");
            }
        }
    }

    #[tokio::test]
    async fn lists_extra_superusers_and_privileged_roles() {
        let cluster = testing::shared();
        let prefix = format!("sprawl_{}", std::process::id());
        let roles = Roles {
            cluster,
            names: (1..=3)
                .map(|n| format!("{prefix}_su{n}"))
                .chain([format!("{prefix}_repl")])
                .collect(),
        };
        let mut sql: String = roles.names[..3]
            .iter()
            .map(|name| format!("CREATE ROLE {name} LOGIN SUPERUSER;\n"))
            .collect();
        sql.push_str(&format!(
            "CREATE ROLE {} LOGIN REPLICATION VALID UNTIL '2999-01-01';\n",
            roles.names[3]
        ));
        cluster.primary().psql(&sql).expect("create roles");
        let dsn = cluster.primary().dsn();

        let findings = testkit::findings(
            &SuperuserSprawl,
            &dsn,
            &[("max_superusers", 0.0), ("max_findings", 1000.0)],
        )
        .await;
        let sprawl = findings
            .iter()
            .find(|f| f.evidence("superusers").is_some())
            .unwrap_or_else(|| panic!("no superuser finding: {findings:?}"));
        assert_eq!(sprawl.severity, Severity::Warning);
        assert!(
            sprawl.evidence("count").and_then(|v| v.as_u64()).unwrap() >= 3,
            "{sprawl:?}"
        );
        let listed: Vec<&str> = sprawl
            .evidence("superusers")
            .and_then(|v| v.as_array())
            .unwrap()
            .iter()
            .filter_map(|s| s["role"].as_str())
            .collect();
        for name in &roles.names[..3] {
            assert!(
                listed.contains(&name.as_str()),
                "{name} missing from {listed:?}"
            );
        }
        assert!(
            !listed.contains(&"postgres"),
            "the bootstrap superuser is not counted: {listed:?}"
        );
        let replication = findings
            .iter()
            .find(|f| f.evidence("role").and_then(|v| v.as_str()) == Some(roles.names[3].as_str()))
            .unwrap_or_else(|| panic!("replication role not listed: {findings:?}"));
        assert_eq!(replication.severity, Severity::Info);
        assert_eq!(
            replication
                .evidence("replication")
                .and_then(|v| v.as_bool()),
            Some(true)
        );
        assert!(replication
            .evidence("valid_until")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.starts_with("2999-01-01")));

        let allowed =
            testkit::findings(&SuperuserSprawl, &dsn, &[("max_superusers", 1000.0)]).await;
        assert!(
            allowed.iter().all(|f| f.severity == Severity::Info),
            "{allowed:?}"
        );
        drop(roles);
    }
}
