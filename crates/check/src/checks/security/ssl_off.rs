//! TLS on the server: whether client connections can be encrypted at all, and whether old
//! protocol versions are still accepted.
//!
//! With `ssl = off` every password exchange (unless SCRAM) and every row crosses the network in
//! clear text, and clients cannot verify which server they talk to. A server that listens only
//! on Unix sockets or loopback has no network to protect, so there it is only worth knowing.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct SslOff;

static META: CheckMeta = CheckMeta {
    id: "ssl-off",
    category: Category::Security,
    title: "TLS disabled or weak",
    measures: "Whether ssl is off on a server listening beyond loopback, and whether ssl_min_protocol_version is below TLSv1.2.",
    params: &[],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without TLS, credentials and query results travel in clear text and clients cannot \
              authenticate the server (man-in-the-middle); TLS 1.0/1.1 have known weaknesses.",
        action: "Install a certificate and key (ssl_cert_file, ssl_key_file), set ssl = on and \
                 ssl_min_protocol_version = 'TLSv1.2', reload; then switch pg_hba.conf lines to hostssl and \
                 clients to sslmode=verify-full.",
        next: "SELECT name, setting FROM pg_settings WHERE name IN ('ssl','listen_addresses','ssl_min_protocol_version'); \
               -- then: ALTER SYSTEM SET ssl = on; ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'; SELECT pg_reload_conf();",
    },
};

// Through pg_settings, settings the role may not read (ssl_min_protocol_version needs
// pg_read_all_settings) come back NULL instead of failing the whole check.
const SQL: &str = "\
SELECT (SELECT setting FROM pg_settings WHERE name = 'ssl') AS ssl,
       (SELECT setting FROM pg_settings WHERE name = 'listen_addresses') AS listen_addresses,
       (SELECT setting FROM pg_settings WHERE name = 'ssl_min_protocol_version') AS ssl_min_protocol_version";

/// Whether `listen_addresses` accepts connections only from this host (Unix sockets, loopback).
fn listens_only_locally(listen_addresses: &str) -> bool {
    listen_addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .all(|address| {
            address == "localhost"
                || address
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// Whether a `ssl_min_protocol_version` value allows protocols older than TLS 1.2 (the empty
/// string meant "any" on PostgreSQL 12).
fn allows_old_tls(min_protocol: &str) -> bool {
    matches!(min_protocol, "" | "TLSv1" | "TLSv1.1")
}

#[async_trait::async_trait]
impl Check for SslOff {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let ssl: Option<String> = row.get("ssl");
        let listen: Option<String> = row.get("listen_addresses");
        let min_protocol: Option<String> = row.get("ssl_min_protocol_version");
        let evidence = |finding: Finding| {
            finding
                .with("ssl", ssl.clone())
                .with("listen_addresses", listen.clone())
                .with("ssl_min_protocol_version", min_protocol.clone())
        };
        let mut findings = Vec::new();
        match ssl.as_deref() {
            Some("off") => {
                let local = listen.as_deref().is_some_and(listens_only_locally);
                let (severity, summary) = if local {
                    (Severity::Info, "ssl is off; the server listens only on this host, so no network sees the traffic")
                } else {
                    (Severity::Warning, "ssl is off while the server listens on the network: credentials and data travel in clear text")
                };
                findings.push(evidence(Finding::new(severity, "setting ssl", summary)));
            }
            Some(_) => {
                if let Some(min) = min_protocol.as_deref().filter(|min| allows_old_tls(min)) {
                    let shown = if min.is_empty() { "any" } else { min };
                    findings.push(evidence(Finding::new(
                        Severity::Warning,
                        "setting ssl_min_protocol_version",
                        format!("ssl_min_protocol_version = {shown} accepts protocols older than TLSv1.2"),
                    )));
                }
            }
            None => {}
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
    fn local_listen_addresses() {
        assert!(listens_only_locally(""));
        assert!(listens_only_locally("localhost"));
        assert!(listens_only_locally("127.0.0.1, ::1"));
        assert!(!listens_only_locally("*"));
        assert!(!listens_only_locally("127.0.0.1,10.1.2.3"));
        assert!(!listens_only_locally("db.example.com"));
        assert!(allows_old_tls("TLSv1.1"));
        assert!(!allows_old_tls("TLSv1.2"));
        assert!(!allows_old_tls("TLSv1.3"));
    }

    #[tokio::test]
    async fn ssl_off_on_loopback_is_info_and_old_tls_warns() {
        let options = LabOptions::new(PgInstall::for_tests())
            .name("pgdbre-ssl")
            .setting("ssl", "off")
            .setting("listen_addresses", "127.0.0.1");
        let cluster = Cluster::start(options).expect("start a private cluster");
        let primary = cluster.primary();
        let findings = testkit::findings(&SslOff, &primary.dsn(), &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Info);
        assert_eq!(
            findings[0].evidence("ssl").and_then(|v| v.as_str()),
            Some("off")
        );
        assert_eq!(
            findings[0]
                .evidence("listen_addresses")
                .and_then(|v| v.as_str()),
            Some("127.0.0.1")
        );

        // Only a server built with OpenSSL (not the PostgreSQL 18 wheel) can turn TLS on.
        if cluster.ca_cert().is_some() {
            primary
                .set_settings(&[("ssl", "on"), ("ssl_min_protocol_version", "TLSv1.1")])
                .expect("turn on TLS with an old minimum protocol");
            let findings = testkit::findings(&SslOff, &primary.dsn(), &[]).await;
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].severity, Severity::Warning);
            assert_eq!(findings[0].object, "setting ssl_min_protocol_version");
            assert_eq!(
                findings[0]
                    .evidence("ssl_min_protocol_version")
                    .and_then(|v| v.as_str()),
                Some("TLSv1.1")
            );
        }
    }

    #[tokio::test]
    async fn lab_with_tls_is_quiet() {
        let cluster = testing::shared();
        let findings = testkit::findings(&SslOff, &cluster.primary().dsn(), &[]).await;
        if cluster.ca_cert().is_some() {
            assert!(findings.is_empty(), "{findings:?}");
        } else {
            // The PostgreSQL 18 wheel has no TLS; the lab listens on 127.0.0.1 only.
            assert!(
                findings.iter().all(|f| f.severity == Severity::Info),
                "{findings:?}"
            );
        }
    }
}
