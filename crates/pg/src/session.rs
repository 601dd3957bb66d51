//! An open connection plus the server facts detected on it.
//!
//! Opening follows libpq's order: hosts in the listed order; per host, the `sslmode` plan
//! (prefer: TLS then plain; allow: plain then TLS); after login, one detection query whose
//! answer also decides `target_session_attrs`. Every failure is kept, so an error for several
//! hosts says what happened on each.

use crate::config::{HostSpec, SslMode, TargetSessionAttrs};
use crate::server::DETECT_QUERY;
use crate::{tls, ConnConfig, PgError, ServerInfo};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// An open connection and what it is connected to.
pub struct Session {
    client: tokio_postgres::Client,
    info: ServerInfo,
    target: String,
}

impl Session {
    /// Opens a connection to the first suitable host and detects the server's capabilities.
    pub async fn connect(config: &ConnConfig) -> Result<Self, PgError> {
        let connector = connector(config)?;

        let passes = match config.target_session_attrs() {
            // libpq: look for a standby on every host first, then accept any server.
            TargetSessionAttrs::PreferStandby => {
                vec![TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            wanted => vec![wanted],
        };
        let mut attempts = Vec::new();
        for wanted in &passes {
            for host in config.hosts() {
                match connect_host(config, host, &connector).await {
                    Ok(session) if satisfies(&session.info, *wanted) => return Ok(session),
                    Ok(_) => attempts.push(PgError::WrongSessionAttrs {
                        target: host.label(),
                        wanted: describe(*wanted).into(),
                    }),
                    Err(error) => attempts.push(error),
                }
            }
        }
        if attempts.len() == 1 {
            if let Some(only) = attempts.pop() {
                return Err(only);
            }
        }
        Err(PgError::AllHostsFailed {
            target: config.target(),
            attempts,
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
    /// What the server is and can do.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }
    /// A secret-free name for the server actually connected: `host:port/dbname`.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// Wraps a failed query on this session, keeping its SQLSTATE.
    pub fn query_error(&self, error: &tokio_postgres::Error) -> PgError {
        PgError::query(&self.target, error)
    }
}

/// Opens a connection to the first host that accepts one, with the same TLS plan, password
/// handling and redaction as [`Session::connect`], but runs no query on it: for servers that
/// speak the protocol without being PostgreSQL, such as PgBouncer's admin console (which only
/// answers `SHOW` commands over the simple query protocol). `target_session_attrs` is ignored.
pub async fn connect_without_detection(
    config: &ConnConfig,
) -> Result<tokio_postgres::Client, PgError> {
    let connector = connector(config)?;
    let mut attempts = Vec::new();
    for host in config.hosts() {
        let target = format!("{}/{}", host.label(), config.dbname());
        for ssl_mode in tls_plan(config, host) {
            let driver = config.driver_config(host, *ssl_mode);
            let open = async {
                let (client, connection) = driver
                    .connect(connector.clone())
                    .await
                    .map_err(|error| PgError::from_connect(&target, config.user(), &error))?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!("connection ended: {}", crate::redact(&error.to_string()));
                    }
                });
                Ok(client)
            };
            let result = match config.connect_timeout() {
                Some(limit) => tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
                    Err(PgError::Unreachable {
                        target: target.clone(),
                        message: format!("timed out after {} s (connect_timeout)", limit.as_secs()),
                    })
                }),
                None => open.await,
            };
            match result.map_err(|error| scrub(error, host.password())) {
                Ok(client) => return Ok(client),
                Err(error) if error.is_unreachable() => {
                    attempts.push(error);
                    break;
                }
                Err(error) => attempts.push(error),
            }
        }
    }
    if attempts.len() == 1 {
        if let Some(only) = attempts.pop() {
            return Err(only);
        }
    }
    Err(PgError::AllHostsFailed {
        target: config.target(),
        attempts,
    })
}

/// The TLS connector for `config`: the configured roots and client certificate when any TCP host
/// may negotiate TLS, else an unused placeholder.
fn connector(config: &ConnConfig) -> Result<MakeRustlsConnect, PgError> {
    let needs_tls = config.ssl_mode() != SslMode::Disable
        && config.hosts().iter().any(|host| !host.is_unix_socket());
    if needs_tls {
        return Ok(MakeRustlsConnect::new(tls::client_config(config)?));
    }
    // Never used for a handshake: the driver is told to disable TLS.
    Ok(MakeRustlsConnect::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| PgError::Config(format!("{error}; hint: report this as a bug")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    ))
}

fn satisfies(info: &ServerInfo, wanted: TargetSessionAttrs) -> bool {
    match wanted {
        TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => true,
        TargetSessionAttrs::ReadWrite => !info.read_only,
        TargetSessionAttrs::ReadOnly => info.read_only,
        TargetSessionAttrs::Primary => !info.in_recovery,
        TargetSessionAttrs::Standby => info.in_recovery,
    }
}

fn describe(wanted: TargetSessionAttrs) -> &'static str {
    match wanted {
        TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => "any server",
        TargetSessionAttrs::ReadWrite => "read-write",
        TargetSessionAttrs::ReadOnly => "read-only",
        TargetSessionAttrs::Primary => "a primary",
        TargetSessionAttrs::Standby => "a standby",
    }
}

/// The TLS negotiations to try on one host, in order, as libpq's `sslmode` prescribes.
fn tls_plan(config: &ConnConfig, host: &HostSpec) -> &'static [DriverSslMode] {
    if host.is_unix_socket() {
        // libpq never negotiates TLS over a Unix socket.
        return &[DriverSslMode::Disable];
    }
    match config.ssl_mode() {
        SslMode::Disable => &[DriverSslMode::Disable],
        SslMode::Allow => &[DriverSslMode::Disable, DriverSslMode::Require],
        // Prefer falls back to plain inside the driver when the server declines TLS; the second
        // step covers a failed handshake or a server that rejects the TLS session.
        SslMode::Prefer => &[DriverSslMode::Prefer, DriverSslMode::Disable],
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => &[DriverSslMode::Require],
    }
}

/// Opens a session on one host, trying each step of its TLS plan until one works.
async fn connect_host(
    config: &ConnConfig,
    host: &HostSpec,
    connector: &MakeRustlsConnect,
) -> Result<Session, PgError> {
    let target = format!("{}/{}", host.label(), config.dbname());
    if config.ssl_mode() == SslMode::VerifyFull && host.host().is_empty() && !host.is_unix_socket()
    {
        return Err(PgError::Config(format!(
            "host name must be specified for a verified TLS connection to {target}; hint: set host= \
             to the name in the server certificate alongside hostaddr="
        )));
    }
    let mut failures: Vec<PgError> = Vec::new();
    for ssl_mode in tls_plan(config, host) {
        match attempt(config, host, *ssl_mode, connector.clone(), &target).await {
            Ok(session) => return Ok(session),
            // A server that is not there will not be there without TLS either.
            Err(error) if error.is_unreachable() => return Err(error),
            Err(error) => failures.push(error),
        }
    }
    // Report the first failure: for prefer it is the TLS attempt, the one the user asked for.
    let mut failures = failures.into_iter();
    Err(failures.next().unwrap_or_else(|| PgError::Connect {
        target,
        message: "no connection attempt was made".into(),
    }))
}

/// One connection attempt plus the detection query, bounded by `connect_timeout`.
async fn attempt(
    config: &ConnConfig,
    host: &HostSpec,
    ssl_mode: DriverSslMode,
    connector: MakeRustlsConnect,
    target: &str,
) -> Result<Session, PgError> {
    let driver = config.driver_config(host, ssl_mode);
    let open = async {
        let (client, connection) = driver
            .connect(connector)
            .await
            .map_err(|error| PgError::from_connect(target, config.user(), &error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("connection ended: {}", crate::redact(&error.to_string()));
            }
        });
        let row = client
            .query_one(DETECT_QUERY, &[])
            .await
            .map_err(|error| PgError::query(target, &error))?;
        let info = ServerInfo::from_row(&row).map_err(|error| PgError::query(target, &error))?;
        Ok(Session {
            client,
            info,
            target: target.to_owned(),
        })
    };
    let result = match config.connect_timeout() {
        Some(limit) => tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
            Err(PgError::Unreachable {
                target: target.to_owned(),
                message: format!("timed out after {} s (connect_timeout)", limit.as_secs()),
            })
        }),
        None => open.await,
    };
    result.map_err(|error| scrub(error, host.password()))
}

/// Belt and braces: removes the literal password from any text the server or driver produced.
fn scrub(error: PgError, password: Option<&str>) -> PgError {
    let Some(password) = password.filter(|password| password.len() >= 4) else {
        return error;
    };
    let clean = |text: String| text.replace(password, crate::redact::MASK);
    match error {
        PgError::Connect { target, message } => PgError::Connect {
            target,
            message: clean(message),
        },
        PgError::Tls { target, message } => PgError::Tls {
            target,
            message: clean(message),
        },
        PgError::Unreachable { target, message } => PgError::Unreachable {
            target,
            message: clean(message),
        },
        PgError::AuthFailed {
            target,
            user,
            message,
        } => PgError::AuthFailed {
            target,
            user,
            message: clean(message),
        },
        PgError::Server {
            target,
            code,
            message,
        } => PgError::Server {
            target,
            code,
            message: clean(message),
        },
        PgError::Query {
            target,
            message,
            code,
        } => PgError::Query {
            target,
            message: clean(message),
            code,
        },
        other => other,
    }
}
