//! Schemas where every role may create objects (`CREATE` granted to `PUBLIC`), in the connected
//! database — the `public` schema's default before PostgreSQL 15.
//!
//! Any role that can create objects in a schema on other roles' `search_path` can plant a function
//! or operator that shadows the intended one and runs with the caller's privileges
//! (CVE-2018-1058).

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct PublicSchemaCreate;

static META: CheckMeta = CheckMeta {
    id: "public-schema-create",
    category: Category::Security,
    title: "Schemas writable by every role",
    measures: "Schemas in the connected database whose ACL grants CREATE to PUBLIC.",
    params: &[Param { name: "max_findings", default: 20.0, unit: "count", help: "schemas reported at most" }],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Every role, including a compromised low-privilege one, can create functions and operators in \
              a schema others have on their search_path; a shadowing function then runs with the privileges \
              of whoever calls it, up to a superuser (CVE-2018-1058).",
        action: "Revoke CREATE from PUBLIC on the schema and grant it only to the roles that own objects there \
                 (PostgreSQL 15 made this the default for public). Check that migrations still run as an owner.",
        next: "REVOKE CREATE ON SCHEMA public FROM PUBLIC; -- then list who still can: \
               SELECT nspname, nspacl FROM pg_namespace WHERE nspname = 'public';",
    },
};

// A NULL nspacl means the default ACL (owner only), so it is expanded with acldefault. Grantee 0
// in aclexplode is PUBLIC; has_schema_privilege('public', ...) would instead ask about a role
// called "public".
const SQL: &str = "\
SELECT n.nspname::text AS schema, pg_get_userbyid(n.nspowner)::text AS owner,
       current_database()::text AS database
FROM pg_namespace AS n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS acl
              WHERE acl.grantee = 0 AND acl.privilege_type = 'CREATE')
ORDER BY n.nspname = 'public' DESC, n.nspname
LIMIT $1";

#[async_trait::async_trait]
impl Check for PublicSchemaCreate {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let limit = ctx.param("max_findings").max(0.0) as i64;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[&limit]).await? {
            let schema: String = row.get("schema");
            let database: String = row.get("database");
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("schema {schema} in database \"{database}\""),
                    format!("every role may create objects in schema {schema} (CREATE granted to PUBLIC)"),
                )
                .with("schema", schema)
                .with("grantee", "PUBLIC")
                .with("owner", row.get::<_, String>("owner"))
                .with("database", database),
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
    async fn reports_create_granted_to_public() {
        let cluster = testing::shared();
        let db = testing::fresh_database(cluster);
        cluster
            .primary()
            .psql_db(&db, "GRANT CREATE ON SCHEMA public TO PUBLIC; CREATE SCHEMA open_area; GRANT CREATE ON SCHEMA open_area TO PUBLIC;")
            .expect("grant CREATE to PUBLIC");
        let findings =
            testkit::findings(&PublicSchemaCreate, &cluster.primary().dsn_for(&db), &[]).await;
        let public = findings
            .iter()
            .find(|f| f.evidence("schema").and_then(|v| v.as_str()) == Some("public"))
            .unwrap_or_else(|| panic!("public not reported: {findings:?}"));
        assert_eq!(public.severity, Severity::Warning);
        assert_eq!(
            public.evidence("grantee").and_then(|v| v.as_str()),
            Some("PUBLIC")
        );
        assert_eq!(
            public.evidence("database").and_then(|v| v.as_str()),
            Some(db.as_str())
        );
        let expected_owner = if cluster.install().major >= 15 {
            "pg_database_owner"
        } else {
            "postgres"
        };
        assert_eq!(
            public.evidence("owner").and_then(|v| v.as_str()),
            Some(expected_owner)
        );
        assert!(
            findings
                .iter()
                .any(|f| f.evidence("schema").and_then(|v| v.as_str()) == Some("open_area")),
            "{findings:?}"
        );

        let capped = testkit::findings(
            &PublicSchemaCreate,
            &cluster.primary().dsn_for(&db),
            &[("max_findings", 1.0)],
        )
        .await;
        assert_eq!(capped.len(), 1, "{capped:?}");
        assert_eq!(
            capped[0].evidence("schema").and_then(|v| v.as_str()),
            Some("public")
        );
    }

    #[tokio::test]
    async fn quiet_with_the_default_acl() {
        let cluster = testing::shared();
        if cluster.install().major < 15 {
            return; // Before PostgreSQL 15 the default is the finding.
        }
        let db = testing::fresh_database(cluster);
        // A schema with a NULL ACL (owner only) is not reported either.
        cluster
            .primary()
            .psql_db(&db, "CREATE SCHEMA private_area;")
            .expect("create schema");
        let findings =
            testkit::findings(&PublicSchemaCreate, &cluster.primary().dsn_for(&db), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
