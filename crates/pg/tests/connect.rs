//! Connecting to real servers started by the lab harness: `.pgpass`, authentication failures,
//! every `sslmode`, host-name checks, multiple hosts, `target_session_attrs` and SQLSTATEs.
//!
//! One shared lab cluster (primary + streaming replica, SCRAM, TLS with a lab CA whose server
//! certificate names `localhost` and `127.0.0.1`) serves every test; none of them changes it.

use pgdbre_lab::{testing, Cluster, Node};
use pgdbre_pg::{ConnConfig, PgError, Session, SslMode};
use std::path::PathBuf;

/// An environment with nothing but an empty HOME, so the developer's own `PG*` variables,
/// `~/.pgpass` and `~/.postgresql/root.crt` never leak into a test.
fn resolve(dsn: &str) -> ConnConfig {
    let home = std::env::temp_dir().join("pgdbre-pg-tests-empty-home");
    let home = home.to_string_lossy().into_owned();
    ConnConfig::resolve_with_env(Some(dsn), &move |name| {
        (name == "HOME").then(|| home.clone())
    })
    .unwrap_or_else(|error| panic!("resolving {dsn}: {error}"))
}

async fn connect(dsn: &str) -> Result<Session, PgError> {
    Session::connect(&resolve(dsn)).await
}

fn cluster() -> &'static Cluster {
    testing::shared()
}

fn primary() -> &'static Node {
    cluster().primary()
}

/// Whether the lab servers have TLS (the PyPI PostgreSQL 18 wheel has none).
fn lab_ca() -> Option<PathBuf> {
    let ca = cluster().ca_cert().map(PathBuf::from);
    if ca.is_none() {
        eprintln!("skipping: this PostgreSQL build has no TLS support");
    }
    ca
}

async fn uses_tls(session: &Session) -> bool {
    let row = session
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    row.get(0)
}

/// A TCP port nobody listens on: bound, then released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn pgpass_over_unix_socket_and_server_info() {
    let session = connect(&primary().dsn())
        .await
        .expect("connect via .pgpass");
    let info = session.info();
    assert_eq!(info.user, "postgres");
    assert_eq!(info.database, "postgres");
    assert!(info.is_superuser && info.has_pg_monitor && info.can_replicate);
    assert!(!info.in_recovery && !info.read_only);
    assert!(info.version.major() >= 12, "{:?}", info.version);
    assert!(info
        .version_string
        .starts_with(&info.version.major().to_string()));
    assert!(
        info.data_checksums,
        "the lab initialises with data checksums"
    );
    assert!(!uses_tls(&session).await, "Unix sockets never use TLS");
    assert_eq!(
        session.target(),
        format!(
            "{}:{}/postgres",
            primary().socket_dir().display(),
            primary().port()
        )
    );
}

#[tokio::test]
async fn pgpass_over_tcp_without_tls() {
    let dsn = format!("{} sslmode=disable", primary().tcp_dsn());
    let session = connect(&dsn).await.expect("connect over TCP via .pgpass");
    assert!(!uses_tls(&session).await);
    let application: String = session
        .client()
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(application, "pgdbre");
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let secret = "Wr0ng-Pa55word-value";
    for dsn in [
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres password={secret} sslmode=disable", primary().port()),
        format!("postgresql://postgres:{secret}@127.0.0.1:{}/postgres?sslmode=prefer", primary().port()),
        format!("host={} port={} user=postgres password='{secret}'", primary().socket_dir().display(), primary().port()),
    ] {
        let error = connect(&dsn).await.err().expect("wrong password must fail");
        assert!(error.is_auth_failure(), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains("password authentication failed for user \"postgres\""), "{shown}");
        assert!(shown.contains("PGPASSWORD") && shown.contains(".pgpass"), "{shown}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn missing_password_says_so() {
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres passfile=/nonexistent/pgpass sslmode=disable",
        primary().port()
    );
    let error = connect(&dsn).await.err().expect("no password must fail");
    assert!(error.is_auth_failure(), "{error:?}");
    assert!(error.to_string().contains("none was given"), "{error}");
}

#[tokio::test]
async fn verify_full_accepts_the_lab_certificate() {
    if lab_ca().is_none() {
        return;
    }
    let session = connect(&format!("{} sslmode=verify-full", primary().tcp_dsn()))
        .await
        .expect("verify-full against a certificate for localhost");
    assert!(uses_tls(&session).await);
}

#[tokio::test]
async fn host_name_mismatch_fails_verify_full_but_not_verify_ca() {
    let Some(ca) = lab_ca() else { return };
    let base = format!(
        "host=db.wrong.example hostaddr=127.0.0.1 port={} user=postgres passfile={} sslrootcert={}",
        primary().port(),
        primary().passfile().display(),
        ca.display()
    );
    let error = connect(&format!("{base} sslmode=verify-full"))
        .await
        .err()
        .expect("a certificate for localhost must not verify as db.wrong.example");
    assert!(error.is_tls_failure(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("TLS connection to db.wrong.example:") && text.contains("hint:"),
        "{text}"
    );

    let session = connect(&format!("{base} sslmode=verify-ca"))
        .await
        .expect("verify-ca ignores the name");
    assert!(uses_tls(&session).await);
}

#[tokio::test]
async fn untrusted_root_fails_verify_ca() {
    let Some(_) = lab_ca() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let other_ca = dir.path().join("other-ca.crt");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other CA",
        ])
        .arg("-keyout")
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("run openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let dsn = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres passfile={} sslrootcert={} sslmode=verify-ca",
        primary().port(),
        primary().passfile().display(),
        other_ca.display()
    );
    let error = connect(&dsn)
        .await
        .err()
        .expect("certificate from another CA");
    assert!(error.is_tls_failure(), "{error:?}");

    // libpq: with a root file present, require verifies the chain too.
    let require = dsn.replace("verify-ca", "require");
    assert!(connect(&require)
        .await
        .err()
        .is_some_and(|error| error.is_tls_failure()));
}

#[tokio::test]
async fn require_encrypts_without_a_root_certificate() {
    if lab_ca().is_none() {
        return;
    }
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres passfile={} sslmode=require",
        primary().port(),
        primary().passfile().display()
    );
    let config = resolve(&dsn);
    assert_eq!(config.ssl_mode(), SslMode::Require);
    let session = Session::connect(&config)
        .await
        .expect("require without root cert");
    assert!(uses_tls(&session).await);

    let prefer = connect(&dsn.replace("require", "prefer"))
        .await
        .expect("prefer");
    assert!(
        uses_tls(&prefer).await,
        "prefer uses TLS when the server offers it"
    );
    let allow = connect(&dsn.replace("require", "allow"))
        .await
        .expect("allow");
    assert!(!uses_tls(&allow).await, "allow starts without TLS");
}

#[tokio::test]
async fn unreachable_port_names_host_and_port() {
    let port = free_port();
    let error = connect(&format!(
        "host=127.0.0.1 port={port} user=postgres password=Zz-secret-9 connect_timeout=5"
    ))
    .await
    .err()
    .expect("nobody listens there");
    assert!(error.is_unreachable(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("PGHOST/PGPORT"),
        "{text}"
    );
    assert!(!format!("{error} {error:?}").contains("Zz-secret-9"));
}

#[tokio::test]
async fn multiple_hosts_are_tried_in_order() {
    let dead = free_port();
    let dsn = format!(
        "postgresql://127.0.0.1:{dead},127.0.0.1:{}/postgres?user=postgres&passfile={}&sslmode=disable",
        primary().port(),
        primary().passfile().display()
    );
    let session = connect(&dsn).await.expect("second host works");
    assert_eq!(
        session.target(),
        format!("127.0.0.1:{}/postgres", primary().port())
    );

    let other = free_port();
    let error = connect(&format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{other} user=postgres sslmode=disable"
    ))
    .await
    .err()
    .expect("no host works");
    let text = error.to_string();
    assert!(
        text.contains(&format!(":{dead}")) && text.contains(&format!(":{other}")),
        "{text}"
    );
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn target_session_attrs_picks_the_right_server() {
    let Some(replica) = cluster().replicas().first() else {
        panic!("the shared cluster has a replica");
    };
    let hosts = format!(
        "host={dir},{dir} port={},{} user=postgres passfile={}",
        primary().port(),
        replica.port(),
        primary().passfile().display(),
        dir = primary().socket_dir().display()
    );
    let standby = connect(&format!("{hosts} target_session_attrs=standby"))
        .await
        .expect("standby");
    assert!(standby.info().in_recovery);
    let prefer = connect(&format!("{hosts} target_session_attrs=prefer-standby"))
        .await
        .expect("prefer-standby");
    assert!(prefer.info().in_recovery);
    let primary_session = connect(&format!("{hosts} target_session_attrs=read-write"))
        .await
        .expect("read-write");
    assert!(!primary_session.info().in_recovery);

    let only_primary = format!(
        "host={} port={} user=postgres passfile={} target_session_attrs=standby",
        primary().socket_dir().display(),
        primary().port(),
        primary().passfile().display()
    );
    let error = connect(&only_primary)
        .await
        .err()
        .expect("the primary is no standby");
    assert!(error.to_string().contains("is not a standby"), "{error}");
}

#[tokio::test]
async fn server_errors_keep_their_sqlstate() {
    let dsn = format!("{} dbname=no_such_database_here", primary().dsn());
    let error = connect(&dsn).await.err().expect("missing database");
    assert_eq!(error.sqlstate(), Some("3D000"), "{error:?}");

    let admin = connect(&primary().dsn()).await.expect("connect");
    let role = format!("pgdbre_pg_test_{}", std::process::id());
    let password = "Unpriv1leged-pw";
    admin
        .client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ))
        .await
        .expect("create role");
    let dsn = format!(
        "host={} port={} dbname=postgres user={role} password={password}",
        primary().socket_dir().display(),
        primary().port()
    );
    let session = connect(&dsn).await.expect("unprivileged login");
    assert!(!session.info().is_superuser && !session.info().has_pg_monitor);
    let failure = session
        .client()
        .query("SELECT rolpassword FROM pg_authid", &[])
        .await
        .expect_err("pg_authid is superuser-only");
    let error = session.query_error(&failure);
    assert!(error.is_insufficient_privilege(), "{error:?}");
    assert!(error.to_string().contains("42501"));
    drop(session);
    admin
        .client()
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .expect("drop role");
}
