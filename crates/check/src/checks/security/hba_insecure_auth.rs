//! Client authentication rules (`pg_hba.conf`) that let clients in without a real password, send
//! the password in clear text, use the weak MD5 challenge, or that the server cannot parse.
//!
//! `pg_hba_file_rules` shows the file as it is on disk now, so a broken edit is caught here
//! before the next reload (which would keep the old rules and log an error nobody reads).

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};
use std::net::IpAddr;

/// See the module docs.
pub struct HbaInsecureAuth;

static META: CheckMeta = CheckMeta {
    id: "hba-insecure-auth",
    category: Category::Security,
    title: "Insecure pg_hba.conf rules",
    measures: "pg_hba.conf lines using trust, password (clear text) or md5 authentication, and lines with errors.",
    params: &[],
    // pg_hba_file_rules and its function are executable by superusers only, on every version.
    requires: Requires { superuser: true, ..Requires::ANY },
    runbook: Runbook {
        why: "A trust line lets anyone who can reach the server log in as any matching role, superusers \
              included; password sends it in clear text over the network; md5 hashes are replayable \
              password equivalents; a line with an error makes the next reload keep the old rules.",
        action: "Replace trust, password and md5 with scram-sha-256 (set password_encryption = scram-sha-256 \
                 and reset the affected roles' passwords first), or with cert / peer; restrict addresses to the \
                 networks that need access. Fix lines with errors. Then reload and confirm no errors.",
        next: "SELECT line_number, type, database, user_name, address, netmask, auth_method, error \
               FROM pg_hba_file_rules WHERE error IS NOT NULL OR auth_method IN ('trust','password','md5'); \
               -- after editing: SELECT pg_reload_conf();",
    },
};

// pg_hba_file_rules gained rule_number and file_name (include directives) in PostgreSQL 16.
const SQL_PG16: &str = "\
SELECT line_number::int4 AS line_number, type, database, user_name, address, netmask, auth_method,
       error, file_name
FROM pg_hba_file_rules
ORDER BY rule_number NULLS LAST, line_number";

const SQL_PG12: &str = "\
SELECT line_number::int4 AS line_number, type, database, user_name, address, netmask, auth_method,
       error, NULL::text AS file_name
FROM pg_hba_file_rules
ORDER BY line_number";

/// One line of `pg_hba_file_rules`.
#[derive(Debug, Clone, Default)]
struct HbaRule {
    line_number: i32,
    rule_type: Option<String>,
    database: Option<Vec<String>>,
    user_name: Option<Vec<String>>,
    address: Option<String>,
    netmask: Option<String>,
    auth_method: Option<String>,
    error: Option<String>,
    file_name: Option<String>,
}

impl HbaRule {
    /// Whether only clients on this host can match the line: Unix sockets, loopback addresses,
    /// `localhost` and `samehost`.
    fn is_local(&self) -> bool {
        if self.rule_type.as_deref() == Some("local") {
            return true;
        }
        let Some(address) = self.address.as_deref() else {
            return false;
        };
        if address == "localhost" || address == "samehost" {
            return true;
        }
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ip.is_loopback() && self.prefix_len().is_some_and(|len| len >= 8),
            Ok(IpAddr::V6(ip)) => ip.is_loopback() && self.prefix_len() == Some(128),
            Err(_) => false,
        }
    }

    /// The netmask as a prefix length (`255.255.255.0` → 24).
    fn prefix_len(&self) -> Option<u32> {
        match self.netmask.as_deref()?.parse::<IpAddr>().ok()? {
            IpAddr::V4(mask) => Some(u32::from(mask).count_ones()),
            IpAddr::V6(mask) => Some(u128::from(mask).count_ones()),
        }
    }

    /// Whether the connection is encrypted by TLS whatever the client asks for.
    fn requires_ssl(&self) -> bool {
        self.rule_type.as_deref() == Some("hostssl")
    }

    fn object(&self) -> String {
        match &self.file_name {
            Some(file) => format!("{file} line {}", self.line_number),
            None => format!("pg_hba.conf line {}", self.line_number),
        }
    }
}

/// Severity and reason for one rule, if it is a problem.
fn evaluate(rule: &HbaRule) -> Option<(Severity, String)> {
    if let Some(error) = &rule.error {
        return Some((
            Severity::Critical,
            format!("has an error a reload will reject: {error}"),
        ));
    }
    let from = if rule.is_local() {
        "local connections"
    } else {
        "the network"
    };
    match rule.auth_method.as_deref()? {
        "trust" if rule.is_local() => Some((
            Severity::Warning,
            "trust: any local user can log in as any matching role".to_string(),
        )),
        "trust" => Some((
            Severity::Critical,
            format!(
                "trust for {}: anyone who can reach the server logs in without a password",
                address_text(rule)
            ),
        )),
        "password" if rule.is_local() || rule.requires_ssl() => Some((
            Severity::Warning,
            format!("password (clear text) for {from}; use scram-sha-256"),
        )),
        "password" => Some((
            Severity::Critical,
            format!(
                "password sends clear-text passwords over the network from {}",
                address_text(rule)
            ),
        )),
        "md5" => Some((
            Severity::Warning,
            format!("md5 for {from}; prefer scram-sha-256"),
        )),
        _ => None,
    }
}

fn address_text(rule: &HbaRule) -> String {
    match (&rule.address, rule.prefix_len()) {
        (Some(address), Some(len)) => format!("{address}/{len}"),
        (Some(address), None) => address.clone(),
        (None, _) => "any address".to_string(),
    }
}

#[async_trait::async_trait]
impl Check for HbaInsecureAuth {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let sql = if ctx.info().version.major() >= 16 {
            SQL_PG16
        } else {
            SQL_PG12
        };
        let mut findings = Vec::new();
        for row in ctx.query(sql, &[]).await? {
            let rule = HbaRule {
                line_number: row.get("line_number"),
                rule_type: row.get("type"),
                database: row.get("database"),
                user_name: row.get("user_name"),
                address: row.get("address"),
                netmask: row.get("netmask"),
                auth_method: row.get("auth_method"),
                error: row.get("error"),
                file_name: row.get("file_name"),
            };
            let Some((severity, reason)) = evaluate(&rule) else {
                continue;
            };
            findings.push(
                Finding::new(
                    severity,
                    rule.object(),
                    format!("line {} {reason}", rule.line_number),
                )
                .with("line_number", rule.line_number)
                .with("type", rule.rule_type.clone())
                .with("database", rule.database.clone())
                .with("user_name", rule.user_name.clone())
                .with("address", rule.address.clone())
                .with("netmask", rule.netmask.clone())
                .with("auth_method", rule.auth_method.clone())
                .with("error", rule.error.clone())
                .with("file_name", rule.file_name.clone()),
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
    use std::io::Write;

    fn rule(rule_type: &str, address: Option<&str>, netmask: Option<&str>, auth: &str) -> HbaRule {
        HbaRule {
            line_number: 1,
            rule_type: Some(rule_type.to_string()),
            address: address.map(str::to_string),
            netmask: netmask.map(str::to_string),
            auth_method: Some(auth.to_string()),
            ..HbaRule::default()
        }
    }

    fn severity(rule: &HbaRule) -> Option<Severity> {
        evaluate(rule).map(|(severity, _)| severity)
    }

    #[test]
    fn classifies_rules() {
        let all_v4 = Some("0.0.0.0");
        assert_eq!(
            severity(&rule("local", None, None, "trust")),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity(&rule(
                "host",
                Some("127.0.0.1"),
                Some("255.255.255.255"),
                "trust"
            )),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity(&rule(
                "host",
                Some("::1"),
                Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                "trust"
            )),
            Some(Severity::Warning)
        );
        // 127.0.0.1 with a 0.0.0.0 mask matches every address.
        assert_eq!(
            severity(&rule("host", Some("127.0.0.1"), all_v4, "trust")),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(&rule("host", all_v4, all_v4, "trust")),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(&rule("hostssl", Some("all"), None, "trust")),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(&rule("host", Some("samenet"), None, "trust")),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(&rule(
                "host",
                Some("10.0.0.0"),
                Some("255.0.0.0"),
                "password"
            )),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(&rule(
                "hostssl",
                Some("10.0.0.0"),
                Some("255.0.0.0"),
                "password"
            )),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity(&rule("host", Some("10.0.0.0"), Some("255.0.0.0"), "md5")),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity(&rule(
                "host",
                Some("10.0.0.0"),
                Some("255.0.0.0"),
                "scram-sha-256"
            )),
            None
        );
        assert_eq!(severity(&rule("local", None, None, "peer")), None);
        let broken = HbaRule {
            error: Some("invalid authentication method".into()),
            ..HbaRule::default()
        };
        assert_eq!(severity(&broken), Some(Severity::Critical));
    }

    #[tokio::test]
    async fn reports_trust_md5_and_broken_lines_with_line_numbers() {
        let cluster = Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-hba"))
            .expect("start a private cluster");
        let primary = cluster.primary();
        let hba = primary.data_dir().join("pg_hba.conf");
        let existing = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        let mut lines = existing.lines().count() as i64;
        let mut text = String::new();
        if !existing.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("host all all 0.0.0.0/0 trust\nhost all all 10.0.0.0/8 md5\nhost all all 10.0.0.0/8 bogus\n");
        // Appending as root keeps the file's owner and mode, so the server can still read it.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&hba)
            .expect("open pg_hba.conf");
        file.write_all(text.as_bytes())
            .expect("append to pg_hba.conf");
        drop(file);
        if !existing.ends_with('\n') {
            lines += 1;
        }
        primary.psql("SELECT pg_reload_conf();").expect("reload");

        let findings = testkit::findings(&HbaInsecureAuth, &primary.dsn(), &[]).await;
        let at = |line: i64| {
            findings
                .iter()
                .find(|f| f.evidence("line_number").and_then(|v| v.as_i64()) == Some(line))
                .unwrap_or_else(|| panic!("no finding for line {line}: {findings:?}"))
        };
        let trust = at(lines + 1);
        assert_eq!(trust.severity, Severity::Critical);
        assert_eq!(
            trust.evidence("auth_method").and_then(|v| v.as_str()),
            Some("trust")
        );
        assert_eq!(
            trust.evidence("type").and_then(|v| v.as_str()),
            Some("host")
        );
        assert_eq!(
            trust.evidence("address").and_then(|v| v.as_str()),
            Some("0.0.0.0")
        );
        assert_eq!(
            trust.evidence("netmask").and_then(|v| v.as_str()),
            Some("0.0.0.0")
        );
        assert_eq!(
            trust.evidence("database"),
            Some(&serde_json::json!(["all"]))
        );
        let md5 = at(lines + 2);
        assert_eq!(md5.severity, Severity::Warning);
        assert_eq!(
            md5.evidence("auth_method").and_then(|v| v.as_str()),
            Some("md5")
        );
        assert_eq!(
            md5.evidence("address").and_then(|v| v.as_str()),
            Some("10.0.0.0")
        );
        let broken = at(lines + 3);
        assert_eq!(broken.severity, Severity::Critical);
        assert!(
            broken.evidence("error").and_then(|v| v.as_str()).is_some(),
            "{broken:?}"
        );
        if primary.install().major >= 16 {
            let file = trust
                .evidence("file_name")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            assert!(file.ends_with("pg_hba.conf"), "{trust:?}");
        }
        // The lab's own lines (scram-sha-256) are not reported.
        assert_eq!(findings.len(), 3, "{findings:?}");
    }

    #[tokio::test]
    async fn quiet_on_the_lab() {
        let cluster = testing::shared();
        let findings = testkit::findings(&HbaInsecureAuth, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
