//! MD5 passwords: `password_encryption = md5` for new passwords, and roles whose stored password
//! is still an MD5 hash.
//!
//! An MD5 hash is a password equivalent (whoever reads it can log in with the md5 method), is
//! salted only with the role name, and is deprecated from PostgreSQL 18. SCRAM-SHA-256 stores a
//! salted, iterated verifier instead.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct PasswordEncryptionMd5;

static META: CheckMeta = CheckMeta {
    id: "password-encryption-md5",
    category: Category::Security,
    title: "MD5 password hashing",
    measures: "Whether password_encryption is md5 and (as superuser) which roles store MD5 password hashes.",
    params: &[Param {
        name: "max_findings",
        default: 20.0,
        unit: "count",
        help: "roles listed individually; the rest are counted in one summary finding",
    }],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "MD5 hashes are password equivalents salted only with the role name: a leaked pg_authid, \
              backup or dump lets an attacker log in with the md5 method, and PostgreSQL 18 deprecates them.",
        action: "Set password_encryption = scram-sha-256 and reload; then have each listed role set its \
                 password again (\\password in psql, or ALTER ROLE ... PASSWORD from a client that hashes \
                 it). Once no role uses MD5, change md5 lines in pg_hba.conf to scram-sha-256.",
        next: "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT pg_reload_conf(); \
               SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY rolname;",
    },
};

// Only superusers can read pg_authid; other roles get the setting alone. The hash itself never
// leaves the server: the query returns role names only.
const SQL_SUPERUSER: &str = "\
SELECT current_setting('password_encryption') AS password_encryption,
       r.rolname::text AS role, r.rolcanlogin AS can_login, r.rolvaliduntil::text AS valid_until
FROM (SELECT 1) AS one
LEFT JOIN pg_authid AS r ON r.rolpassword LIKE 'md5%'
ORDER BY r.rolname";

const SQL_OTHERS: &str = "\
SELECT current_setting('password_encryption') AS password_encryption,
       NULL::text AS role, NULL::bool AS can_login, NULL::text AS valid_until";

/// Whether a `password_encryption` value hashes with MD5 (`on` meant md5 before PostgreSQL 14).
fn hashes_with_md5(password_encryption: &str) -> bool {
    matches!(password_encryption, "md5" | "on")
}

#[async_trait::async_trait]
impl Check for PasswordEncryptionMd5 {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let sql = if ctx.info().is_superuser {
            SQL_SUPERUSER
        } else {
            SQL_OTHERS
        };
        let rows = ctx.query(sql, &[]).await?;
        let mut findings = Vec::new();
        if let Some(row) = rows.first() {
            let setting: String = row.get("password_encryption");
            if hashes_with_md5(&setting) {
                findings.push(
                    Finding::new(
                        Severity::Warning,
                        "setting password_encryption",
                        format!("password_encryption = {setting}: new passwords are stored as MD5 hashes"),
                    )
                    .with("setting", "password_encryption")
                    .with("value", setting)
                    .with("recommended", "scram-sha-256"),
                );
            }
        }
        let roles: Vec<_> = rows
            .iter()
            .filter_map(|row| row.get::<_, Option<String>>("role").map(|r| (r, row)))
            .collect();
        let listed = ctx.param("max_findings").max(0.0) as usize;
        for (role, row) in roles.iter().take(listed) {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("role \"{role}\""),
                    format!("role {role} has an MD5 password hash; reset it with password_encryption = scram-sha-256"),
                )
                .with("role", role.as_str())
                .with("can_login", row.get::<_, Option<bool>>("can_login"))
                .with("valid_until", row.get::<_, Option<String>>("valid_until")),
            );
        }
        if roles.len() > listed {
            let more = roles.len() - listed;
            findings.push(
                Finding::new(
                    Severity::Warning,
                    "roles",
                    format!(
                        "{more} more roles have MD5 password hashes (listing capped at {listed})"
                    ),
                )
                .with("count", roles.len())
                .with("listed", listed),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{testing, Cluster, LabOptions, PgInstall};

    #[test]
    fn md5_values() {
        assert!(hashes_with_md5("md5"));
        assert!(hashes_with_md5("on"));
        assert!(!hashes_with_md5("scram-sha-256"));
    }

    #[tokio::test]
    async fn reports_the_setting_and_roles_without_their_hashes() {
        let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-md5"))
            .expect("start a private cluster");
        let primary = cluster.primary();
        primary
            .set_settings(&[("password_encryption", "md5")])
            .expect("set password_encryption");
        // PostgreSQL 18 warns that MD5 is deprecated but still stores it.
        primary
            .psql(
                "SET password_encryption = 'md5'; CREATE ROLE legacy_app LOGIN PASSWORD 'secret'; \
                   CREATE ROLE legacy_batch LOGIN PASSWORD 'secret2';",
            )
            .expect("create roles with MD5 passwords");
        primary
            .psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE modern_app LOGIN PASSWORD 'secret';")
            .expect("create a role with a SCRAM password");
        let hash = primary
            .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'legacy_app';")
            .expect("read hash");
        assert!(hash.starts_with("md5"), "{hash}");

        let findings = testkit::findings(&PasswordEncryptionMd5, &primary.dsn(), &[]).await;
        let setting = findings
            .iter()
            .find(|f| f.evidence("setting").is_some())
            .unwrap_or_else(|| panic!("no password_encryption finding: {findings:?}"));
        assert_eq!(setting.severity, Severity::Warning);
        assert_eq!(
            setting.evidence("value").and_then(|v| v.as_str()),
            Some("md5")
        );
        let role = |name: &str| {
            findings
                .iter()
                .find(|f| f.evidence("role").and_then(|v| v.as_str()) == Some(name))
        };
        let legacy =
            role("legacy_app").unwrap_or_else(|| panic!("legacy_app not listed: {findings:?}"));
        assert_eq!(legacy.severity, Severity::Warning);
        assert_eq!(
            legacy.evidence("can_login").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert!(role("legacy_batch").is_some(), "{findings:?}");
        assert!(role("modern_app").is_none(), "{findings:?}");
        let json = serde_json::to_string(&findings).expect("serialise");
        assert!(
            !json.contains(&hash),
            "the hash leaked into the findings: {json}"
        );

        let capped = testkit::findings(
            &PasswordEncryptionMd5,
            &primary.dsn(),
            &[("max_findings", 1.0)],
        )
        .await;
        let summary = capped
            .iter()
            .find(|f| f.evidence("count").is_some())
            .unwrap_or_else(|| panic!("no summary when capped: {capped:?}"));
        assert_eq!(summary.evidence("count").and_then(|v| v.as_u64()), Some(2));
        assert_eq!(
            capped
                .iter()
                .filter(|f| f.evidence("role").is_some())
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn quiet_on_the_lab() {
        let cluster = testing::shared();
        let findings =
            testkit::findings(&PasswordEncryptionMd5, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
