//! Resolving a connection configuration the way libpq does, once, into plain values.
//!
//! [`crate::conninfo`] turns the DSN into keyword/value pairs; this module layers the rest in
//! libpq's precedence order — explicit DSN value, then the service file, then the `PG*`
//! variable, then the built-in default — and then reads `.pgpass` for each host. The result is
//! a [`ConnConfig`] that [`crate::Session`] turns into one `tokio_postgres::Config` per host
//! attempt. Nothing here opens a network connection.

use crate::conninfo::{self, Options, KEYWORDS};
use crate::pgpass::{self, Lookup};
use crate::redact::MASK;
use crate::{service, PgError};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// Used as `application_name` unless the DSN, a service or `PGAPPNAME` sets one.
pub const DEFAULT_APPLICATION_NAME: &str = "pgdbre";
/// Used when `connect_timeout` is not set anywhere (libpq would wait forever).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The Unix socket directory Debian's libpq is built with; `/tmp` is the fallback.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
const FALLBACK_SOCKET_DIR: &str = "/tmp";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Try without TLS first, then with TLS.
    Allow,
    /// Try TLS first, then without (the default).
    Prefer,
    /// Require TLS; verify the chain only if a root certificate file exists.
    Require,
    /// Require TLS and a certificate chain to a trusted root, without checking the host name.
    VerifyCa,
    /// Require TLS, a trusted chain and a certificate matching the host name.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = PgError;
    fn from_str(text: &str) -> Result<Self, PgError> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(invalid_value(
                    "sslmode",
                    text,
                    "disable, allow, prefer, require, verify-ca or verify-full",
                ))
            }
        })
    }
}

/// libpq's `target_session_attrs`: which kind of server the session must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// Any server (the default).
    Any,
    /// A server where `transaction_read_only` is off.
    ReadWrite,
    /// A server where `transaction_read_only` is on.
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A server in recovery.
    Standby,
    /// A standby if any host is one, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = PgError;
    fn from_str(text: &str) -> Result<Self, PgError> {
        Ok(match text {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            _ => {
                return Err(invalid_value(
                    "target_session_attrs",
                    text,
                    "any, read-write, read-only, primary, standby or prefer-standby",
                ))
            }
        })
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert`, default `~/.postgresql/root.crt`); it may not exist.
    File(PathBuf),
    /// `sslrootcert=system`: the bundled Mozilla root set (webpki-roots).
    System,
}

/// A password held so that `Debug` can never print it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// One host to try: a TCP host name/address or a Unix socket directory, and its port.
#[derive(Debug, Clone)]
pub struct HostSpec {
    host: String,
    hostaddr: Option<IpAddr>,
    port: u16,
    password: Option<Secret>,
}

impl HostSpec {
    /// The host name or socket directory as configured (empty when only `hostaddr` is given).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The numeric address to connect to instead of resolving `host`.
    pub fn hostaddr(&self) -> Option<IpAddr> {
        self.hostaddr
    }
    /// The port (also the socket file suffix for Unix sockets).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// A Unix socket directory (a path, or `@` for Linux's abstract namespace) rather than TCP.
    pub fn is_unix_socket(&self) -> bool {
        self.hostaddr.is_none() && is_unix_socket_path(&self.host)
    }
    /// Whether a password is known for this host (from the DSN, `PGPASSWORD` or `.pgpass`).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
    /// The password for this host; crate-private so that it only ever reaches the driver.
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|secret| secret.0.as_str())
    }
    /// The name used for TLS host-name checks: the host name, else the address.
    pub(crate) fn tls_name(&self) -> String {
        match (&self.hostaddr, self.host.is_empty()) {
            (Some(addr), true) => addr.to_string(),
            _ => self.host.clone(),
        }
    }
    /// `host:port` for messages (IPv6 addresses bracketed).
    pub fn label(&self) -> String {
        let host = self.tls_name();
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A resolved connection configuration: every value libpq would use, with its source applied.
#[derive(Clone)]
pub struct ConnConfig {
    hosts: Vec<HostSpec>,
    user: String,
    dbname: String,
    application_name: String,
    options: Option<String>,
    connect_timeout: Option<Duration>,
    keepalives: bool,
    keepalives_idle: Option<Duration>,
    keepalives_interval: Option<Duration>,
    keepalives_count: Option<u32>,
    tcp_user_timeout: Option<Duration>,
    channel_binding: tokio_postgres::config::ChannelBinding,
    ssl_mode: SslMode,
    ssl_root_cert: RootCert,
    ssl_cert: PathBuf,
    ssl_key: PathBuf,
    target_session_attrs: TargetSessionAttrs,
}

impl ConnConfig {
    /// Resolves `dsn` (conninfo or URI, or `None` for the environment's defaults) the way libpq
    /// does, reading the process environment, the service files and `.pgpass`.
    pub fn resolve(dsn: Option<&str>) -> Result<Self, PgError> {
        Self::resolve_with_env(dsn, &|name| std::env::var(name).ok())
    }

    /// Like [`ConnConfig::resolve`], with the environment supplied by `env` (for tests and for
    /// callers that keep per-target variables). `HOME` is looked up through `env` too.
    pub fn resolve_with_env(
        dsn: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, PgError> {
        let mut options = conninfo::parse(dsn.unwrap_or(""))?;
        let home = home_dir(&env);

        let service_name = options
            .non_empty("service")
            .map(str::to_owned)
            .or_else(|| env("PGSERVICE").filter(|s| !s.is_empty()));
        if let Some(service_name) = service_name {
            let user_file = env("PGSERVICEFILE")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".pg_service.conf")));
            let sysconfdir =
                env("PGSYSCONFDIR").unwrap_or_else(|| service::DEFAULT_SYSCONFDIR.into());
            let files: Vec<PathBuf> = user_file
                .into_iter()
                .chain([Path::new(&sysconfdir).join("pg_service.conf")])
                .collect();
            service::apply(&service_name, &files, &mut options)?;
        }

        for keyword in KEYWORDS.iter().filter(|keyword| keyword.name != "service") {
            if let Some(var) = keyword.env {
                if options.get(keyword.name).is_none() {
                    if let Some(value) = env(var) {
                        options.set(keyword.name, value);
                    }
                }
            }
        }
        for (name, _) in options.iter() {
            if conninfo::keyword(name).is_some_and(|keyword| keyword.ignored) {
                tracing::debug!("connection option \"{name}\" is accepted but not used by pgdbre");
            }
        }
        Self::from_options(&options, home.as_deref())
    }

    fn from_options(options: &Options, home: Option<&Path>) -> Result<Self, PgError> {
        let user = match options.non_empty("user") {
            Some(user) => user.to_owned(),
            None => os_user_name().ok_or_else(|| {
                PgError::Config(
                    "could not determine the operating system user name; hint: set user= or PGUSER"
                        .into(),
                )
            })?,
        };
        let dbname = options.non_empty("dbname").unwrap_or(&user).to_owned();
        let application_name = options
            .non_empty("application_name")
            .or_else(|| options.non_empty("fallback_application_name"))
            .unwrap_or(DEFAULT_APPLICATION_NAME)
            .to_owned();

        if let Some(encoding) = options.non_empty("client_encoding") {
            let normalized = encoding.to_ascii_uppercase().replace(['-', '_'], "");
            if normalized != "UTF8" && normalized != "UNICODE" {
                return Err(PgError::Config(format!(
                    "client_encoding \"{encoding}\" is not supported; hint: pgdbre always talks UTF8, \
                     remove client_encoding or PGCLIENTENCODING"
                )));
            }
        }

        let root_cert = match options.non_empty("sslrootcert") {
            Some("system") => RootCert::System,
            Some(path) => RootCert::File(PathBuf::from(path)),
            None => RootCert::File(postgresql_dir(home).join("root.crt")),
        };
        let ssl_mode = match options.non_empty("sslmode") {
            Some(mode) => mode.parse()?,
            // As libpq 16+: the system roots only make sense with full verification.
            None if root_cert == RootCert::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if root_cert == RootCert::System && ssl_mode != SslMode::VerifyFull {
            return Err(PgError::Config(format!(
                "sslmode \"{}\" is invalid when sslrootcert is \"system\"; hint: use sslmode=verify-full",
                ssl_mode.as_str()
            )));
        }

        let hosts = build_hosts(options)?;
        let connect_timeout = match options.non_empty("connect_timeout") {
            None => Some(DEFAULT_CONNECT_TIMEOUT),
            Some(text) => {
                let seconds: i64 = parse_number("connect_timeout", text)?;
                // libpq: zero or negative waits forever; anything shorter than 2 s is 2 s.
                (seconds > 0).then(|| Duration::from_secs(seconds.max(2).unsigned_abs()))
            }
        };
        let seconds = |name: &str| -> Result<Option<Duration>, PgError> {
            options
                .non_empty(name)
                .map(|text| parse_number::<u64>(name, text).map(Duration::from_secs))
                .transpose()
        };
        let keepalives = match options.non_empty("keepalives") {
            None => true,
            Some(text) => parse_number::<i64>("keepalives", text)? != 0,
        };
        let channel_binding = match options.non_empty("channel_binding") {
            None | Some("prefer") => tokio_postgres::config::ChannelBinding::Prefer,
            Some("disable") => tokio_postgres::config::ChannelBinding::Disable,
            Some("require") => tokio_postgres::config::ChannelBinding::Require,
            Some(other) => {
                return Err(invalid_value(
                    "channel_binding",
                    other,
                    "disable, prefer or require",
                ))
            }
        };
        let target_session_attrs = match options.non_empty("target_session_attrs") {
            Some(text) => text.parse()?,
            None => TargetSessionAttrs::Any,
        };

        let mut config = ConnConfig {
            hosts,
            user,
            dbname,
            application_name,
            options: options.non_empty("options").map(str::to_owned),
            connect_timeout,
            keepalives,
            keepalives_idle: seconds("keepalives_idle")?,
            keepalives_interval: seconds("keepalives_interval")?,
            keepalives_count: options
                .non_empty("keepalives_count")
                .map(|text| parse_number("keepalives_count", text))
                .transpose()?,
            tcp_user_timeout: options
                .non_empty("tcp_user_timeout")
                .map(|text| {
                    parse_number::<u64>("tcp_user_timeout", text).map(Duration::from_millis)
                })
                .transpose()?,
            channel_binding,
            ssl_mode,
            ssl_root_cert: root_cert,
            ssl_cert: options.non_empty("sslcert").map_or_else(
                || postgresql_dir(home).join("postgresql.crt"),
                PathBuf::from,
            ),
            ssl_key: options.non_empty("sslkey").map_or_else(
                || postgresql_dir(home).join("postgresql.key"),
                PathBuf::from,
            ),
            target_session_attrs,
        };
        config.attach_passwords(options, home);
        Ok(config)
    }

    /// Gives each host its password: the explicit one, else the first matching `.pgpass` line.
    fn attach_passwords(&mut self, options: &Options, home: Option<&Path>) {
        if let Some(password) = options.non_empty("password") {
            for host in &mut self.hosts {
                host.password = Some(Secret(password.to_owned()));
            }
            return;
        }
        let passfile = match options.non_empty("passfile") {
            Some(path) => PathBuf::from(path),
            None => match home {
                Some(home) => home.join(".pgpass"),
                None => return,
            },
        };
        for host in &mut self.hosts {
            let name = if host.host.is_empty() {
                host.hostaddr
                    .map(|addr| addr.to_string())
                    .unwrap_or_default()
            } else if host.is_unix_socket() && is_default_socket_dir(&host.host) {
                "localhost".to_owned()
            } else {
                host.host.clone()
            };
            let lookup = Lookup {
                host: if name.is_empty() { "localhost" } else { &name },
                port: host.port,
                dbname: &self.dbname,
                user: &self.user,
            };
            host.password = pgpass::password_from_file(&passfile, &lookup).map(Secret);
        }
    }

    /// A short, secret-free name for the target: `host:port/dbname` (hosts comma-separated).
    pub fn target(&self) -> String {
        let hosts = self
            .hosts
            .iter()
            .map(HostSpec::label)
            .collect::<Vec<_>>()
            .join(",");
        format!("{hosts}/{}", self.dbname)
    }

    /// The hosts to try, in order.
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }
    /// The user name to log in as.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The database to connect to.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }
    /// The `application_name` reported to the server.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }
    /// The `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }
    /// Where trusted roots come from.
    pub fn ssl_root_cert(&self) -> &RootCert {
        &self.ssl_root_cert
    }
    /// The client certificate file (used only if it exists).
    pub fn ssl_cert(&self) -> &Path {
        &self.ssl_cert
    }
    /// The client key file (needed when the client certificate exists).
    pub fn ssl_key(&self) -> &Path {
        &self.ssl_key
    }
    /// Which kind of server the session must reach.
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }
    /// How long one host may take to accept a session; `None` waits forever.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }
    /// Command-line options sent to the server (`options` / `PGOPTIONS`).
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The driver configuration for one attempt at `host` with the given TLS negotiation.
    pub(crate) fn driver_config(
        &self,
        host: &HostSpec,
        ssl_mode: tokio_postgres::config::SslMode,
    ) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .port(host.port)
            .keepalives(self.keepalives)
            .channel_binding(self.channel_binding)
            .ssl_mode(ssl_mode);
        if host.is_unix_socket() {
            config.host_path(&host.host);
        } else {
            // The TLS name comes from `host`, the socket address from `hostaddr`.
            config.host(host.tls_name());
            if let Some(addr) = host.hostaddr {
                config.hostaddr(addr);
            }
        }
        if let Some(password) = host.password() {
            config.password(password);
        }
        if let Some(options) = &self.options {
            config.options(options);
        }
        if let Some(timeout) = self.connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(idle) = self.keepalives_idle {
            config.keepalives_idle(idle);
        }
        if let Some(interval) = self.keepalives_interval {
            config.keepalives_interval(interval);
        }
        if let Some(count) = self.keepalives_count {
            config.keepalives_retries(count);
        }
        if let Some(timeout) = self.tcp_user_timeout {
            config.tcp_user_timeout(timeout);
        }
        config
    }
}

/// Expands `host`, `hostaddr` and `port` lists into one entry per host, as libpq's
/// `connectOptions2`.
fn build_hosts(options: &Options) -> Result<Vec<HostSpec>, PgError> {
    let split = |name: &str| -> Vec<String> {
        options
            .non_empty(name)
            .map(|list| list.split(',').map(|item| item.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    let names = split("host");
    let addrs = split("hostaddr");
    let ports = split("port");
    if !names.is_empty() && !addrs.is_empty() && names.len() != addrs.len() {
        return Err(PgError::Config(format!(
            "could not match {} host names to {} hostaddr values; hint: give one hostaddr per host",
            names.len(),
            addrs.len()
        )));
    }
    let count = names.len().max(addrs.len()).max(1);
    if ports.len() > 1 && ports.len() != count {
        return Err(PgError::Config(format!(
            "could not match {} port numbers to {count} hosts; hint: give one port, or one per host",
            ports.len()
        )));
    }
    (0..count)
        .map(|index| {
            let port = match ports.get(index).or(ports.first()).map(String::as_str) {
                None | Some("") => DEFAULT_PORT,
                Some(text) => match text.parse::<u16>() {
                    Ok(port) if port > 0 => port,
                    _ => return Err(invalid_value("port", text, "a number from 1 to 65535")),
                },
            };
            let hostaddr = match addrs.get(index).map(String::as_str) {
                None | Some("") => None,
                Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                    invalid_value("hostaddr", text, "a numeric IPv4 or IPv6 address")
                })?),
            };
            let mut host = names.get(index).cloned().unwrap_or_default();
            if host.is_empty() && hostaddr.is_none() {
                host = default_socket_dir().to_owned();
            }
            Ok(HostSpec {
                host,
                hostaddr,
                port,
                password: None,
            })
        })
        .collect()
}

fn is_unix_socket_path(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

/// The socket directory used when no host is given: Debian's, else `/tmp`.
pub(crate) fn default_socket_dir() -> &'static str {
    if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
        DEFAULT_SOCKET_DIR
    } else {
        FALLBACK_SOCKET_DIR
    }
}

/// libpq maps its compiled-in socket directory to `localhost` for `.pgpass`; we also map the
/// fallback we would have used.
fn is_default_socket_dir(dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir == DEFAULT_SOCKET_DIR || dir == default_socket_dir()
}

fn postgresql_dir(home: Option<&Path>) -> PathBuf {
    home.unwrap_or(Path::new("")).join(".postgresql")
}

fn parse_number<T: FromStr>(name: &str, text: &str) -> Result<T, PgError> {
    text.trim()
        .parse()
        .map_err(|_| invalid_value(name, text, "an integer"))
}

fn invalid_value(name: &str, value: &str, expected: &str) -> PgError {
    PgError::Config(format!(
        "invalid {name} value \"{value}\"; hint: use {expected}"
    ))
}

/// `HOME` if set, else the password database's home directory (as libpq 16+).
fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| passwd_entry().map(|(_, home)| home))
}

/// The effective user's login name, as libpq's `pg_fe_getauthname`.
fn os_user_name() -> Option<String> {
    passwd_entry().map(|(name, _)| name)
}

/// The effective user's name and home directory from the password database.
fn passwd_entry() -> Option<(String, PathBuf)> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed `passwd` is a valid out-parameter; getpwuid_r writes only into it and
    // `buffer`, whose length we pass, and sets `result` to null or to `&entry`.
    unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            libc::geteuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        );
        if status != 0 || result.is_null() || entry.pw_name.is_null() || entry.pw_dir.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(entry.pw_name)
            .to_string_lossy()
            .into_owned();
        let home = std::ffi::CStr::from_ptr(entry.pw_dir)
            .to_string_lossy()
            .into_owned();
        Some((name, PathBuf::from(home)))
    }
}

/// Quotes a conninfo value when it needs it (empty, whitespace, quote or backslash), as libpq
/// expects: `'it\'s'`. Useful for building conninfo strings such as `primary_conninfo`.
pub fn quote_value(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return value.to_owned();
    }
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{escaped}'")
}

impl fmt::Display for ConnConfig {
    /// A conninfo string with the password shown as `********`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |values: Vec<String>| values.join(",");
        let names = join(self.hosts.iter().map(|host| host.host.clone()).collect());
        let ports = join(
            self.hosts
                .iter()
                .map(|host| host.port.to_string())
                .collect(),
        );
        let mut parts = Vec::new();
        if !names.chars().all(|c| c == ',') {
            parts.push(format!("host={}", quote_value(&names)));
        }
        if self.hosts.iter().any(|host| host.hostaddr.is_some()) {
            let addrs = self
                .hosts
                .iter()
                .map(|host| {
                    host.hostaddr
                        .map(|addr| addr.to_string())
                        .unwrap_or_default()
                })
                .collect();
            parts.push(format!("hostaddr={}", join(addrs)));
        }
        parts.push(format!("port={ports}"));
        parts.push(format!("user={}", quote_value(&self.user)));
        parts.push(format!("dbname={}", quote_value(&self.dbname)));
        if self.hosts.iter().any(HostSpec::has_password) {
            parts.push(format!("password={MASK}"));
        }
        parts.push(format!("sslmode={}", self.ssl_mode.as_str()));
        if self.ssl_root_cert == RootCert::System {
            parts.push("sslrootcert=system".into());
        }
        if self.target_session_attrs != TargetSessionAttrs::Any {
            parts.push(format!(
                "target_session_attrs={}",
                self.target_session_attrs.as_str()
            ));
        }
        parts.push(format!(
            "application_name={}",
            quote_value(&self.application_name)
        ));
        if let Some(options) = &self.options {
            parts.push(format!("options={}", quote_value(options)));
        }
        f.write_str(&parts.join(" "))
    }
}

impl fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnConfig({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Resolves with exactly `vars` as the environment (and a HOME that has no files).
    fn resolve(dsn: &str, vars: &[(&str, &str)]) -> Result<ConnConfig, PgError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        map.entry("HOME".into())
            .or_insert_with(|| "/nonexistent-home".into());
        ConnConfig::resolve_with_env(Some(dsn), &move |name| map.get(name).cloned())
    }

    fn ok(dsn: &str, vars: &[(&str, &str)]) -> ConnConfig {
        resolve(dsn, vars).unwrap_or_else(|e| panic!("{dsn}: {e}"))
    }

    fn err(dsn: &str, vars: &[(&str, &str)]) -> String {
        match resolve(dsn, vars) {
            Ok(config) => panic!("{dsn} should fail, got {config}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_follow_libpq() {
        let config = ok("", &[]);
        let user = os_user_name().expect("os user");
        assert_eq!(config.user(), user);
        assert_eq!(config.dbname(), user);
        assert_eq!(config.hosts().len(), 1);
        assert_eq!(config.hosts()[0].host(), default_socket_dir());
        assert!(config.hosts()[0].is_unix_socket());
        assert_eq!(config.hosts()[0].port(), DEFAULT_PORT);
        assert_eq!(config.ssl_mode(), SslMode::Prefer);
        assert_eq!(config.application_name(), "pgdbre");
        assert_eq!(config.connect_timeout(), Some(DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(
            config.ssl_root_cert(),
            &RootCert::File(PathBuf::from("/nonexistent-home/.postgresql/root.crt"))
        );
    }

    #[test]
    fn environment_fills_unset_keywords_only() {
        let vars = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGSSLMODE", "require"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "0"),
            ("PGOPTIONS", "-c work_mem=1MB"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ];
        let config = ok("host=dsnhost dbname=dsndb", &vars);
        assert_eq!(config.hosts()[0].host(), "dsnhost");
        assert_eq!(config.hosts()[0].port(), 6000);
        assert_eq!(config.user(), "envuser");
        assert_eq!(config.dbname(), "dsndb");
        assert_eq!(config.ssl_mode(), SslMode::Require);
        assert_eq!(config.application_name(), "envapp");
        assert_eq!(config.connect_timeout(), None);
        assert_eq!(config.options(), Some("-c work_mem=1MB"));
        assert_eq!(config.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    }

    #[test]
    fn application_name_precedence() {
        assert_eq!(
            ok("fallback_application_name=fb", &[]).application_name(),
            "fb"
        );
        assert_eq!(
            ok("fallback_application_name=fb", &[("PGAPPNAME", "env")]).application_name(),
            "env"
        );
        assert_eq!(
            ok("application_name=x fallback_application_name=fb", &[]).application_name(),
            "x"
        );
    }

    #[test]
    fn service_file_sits_between_dsn_and_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "[app]\nhost=svchost\nport=7000\ndbname=svcdb\nuser=svcuser\n",
        )
        .expect("write");
        let file = file.to_str().expect("utf-8 path");
        let vars = [
            ("PGSERVICEFILE", file),
            ("PGPORT", "6000"),
            ("PGHOST", "envhost"),
            ("PGUSER", "envuser"),
        ];
        let config = ok("service=app user=dsnuser", &vars);
        assert_eq!(config.user(), "dsnuser");
        assert_eq!(config.hosts()[0].host(), "svchost");
        assert_eq!(config.hosts()[0].port(), 7000);
        assert_eq!(config.dbname(), "svcdb");

        let via_env = ok("", &[("PGSERVICEFILE", file), ("PGSERVICE", "app")]);
        assert_eq!(via_env.hosts()[0].host(), "svchost");
    }

    #[test]
    fn system_service_file_from_pgsysconfdir() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pg_service.conf"), "[sys]\nhost=syshost\n").expect("write");
        let sysconfdir = dir.path().to_str().expect("utf-8 path");
        let config = ok("service=sys", &[("PGSYSCONFDIR", sysconfdir)]);
        assert_eq!(config.hosts()[0].host(), "syshost");
        assert!(err("service=nope", &[("PGSYSCONFDIR", sysconfdir)]).contains("\"nope\" not found"));
    }

    #[test]
    fn multiple_hosts_ports_and_hostaddrs() {
        let config = ok("postgresql://a:5433,[::1]:5434,b/db", &[]);
        let labels: Vec<String> = config.hosts().iter().map(HostSpec::label).collect();
        assert_eq!(labels, ["a:5433", "[::1]:5434", "b:5432"]);
        assert_eq!(config.target(), "a:5433,[::1]:5434,b:5432/db");

        let config = ok("host=a,b port=6000", &[]);
        assert!(config.hosts().iter().all(|host| host.port() == 6000));

        let config = ok("host=db.example hostaddr=127.0.0.1", &[]);
        assert_eq!(config.hosts()[0].tls_name(), "db.example");
        assert_eq!(
            config.hosts()[0].hostaddr(),
            Some("127.0.0.1".parse().expect("ip"))
        );
        assert!(!config.hosts()[0].is_unix_socket());

        assert!(err("host=a,b port=1,2,3", &[]).contains("3 port numbers to 2 hosts"));
        assert!(err("host=a,b hostaddr=127.0.0.1", &[]).contains("hostaddr"));
        assert!(err("hostaddr=not-an-ip", &[]).contains("\"not-an-ip\""));
        assert!(err("port=99999", &[]).contains("\"99999\""));
    }

    #[test]
    fn unix_socket_hosts() {
        let config = ok("postgresql://%2Ftmp%2Fsock:5439/db", &[]);
        assert!(config.hosts()[0].is_unix_socket());
        assert_eq!(config.hosts()[0].host(), "/tmp/sock");
        assert!(ok("host=@abstract", &[]).hosts()[0].is_unix_socket());
    }

    #[test]
    fn setting_values_are_validated() {
        assert!(err("sslmode=sometimes", &[]).contains("\"sometimes\""));
        assert!(err("target_session_attrs=whatever", &[]).contains("\"whatever\""));
        assert!(err("client_encoding=LATIN1", &[]).contains("LATIN1"));
        assert!(resolve("client_encoding=utf-8", &[]).is_ok());
        assert!(err("connect_timeout=soon", &[]).contains("\"soon\""));
        assert_eq!(
            ok("connect_timeout=1", &[]).connect_timeout(),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn sslrootcert_system_implies_verify_full() {
        let config = ok("sslrootcert=system host=h", &[]);
        assert_eq!(config.ssl_mode(), SslMode::VerifyFull);
        assert!(err("sslrootcert=system sslmode=require", &[]).contains("verify-full"));
    }

    #[test]
    fn pgpass_supplies_password_per_host() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let passfile = dir.path().join("pgpass");
        std::fs::write(
            &passfile,
            "a:5432:db:u:pw-a\n*:*:*:u:pw-any\nlocalhost:5432:db:u:pw-local\n",
        )
        .expect("write");
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let passfile = passfile.to_str().expect("utf-8 path");
        let config = ok("host=a,b user=u dbname=db", &[("PGPASSFILE", passfile)]);
        assert_eq!(config.hosts()[0].password(), Some("pw-a"));
        assert_eq!(config.hosts()[1].password(), Some("pw-any"));

        // The default socket directory counts as "localhost"; an explicit password wins.
        std::fs::write(passfile, "localhost:5432:db:u:pw-local\n").expect("write");
        let config = ok(&format!("user=u dbname=db passfile={passfile}"), &[]);
        assert_eq!(config.hosts()[0].password(), Some("pw-local"));
        let config = ok(
            "user=u dbname=db password=given",
            &[("PGPASSFILE", passfile)],
        );
        assert_eq!(config.hosts()[0].password(), Some("given"));
        let config = ok(
            "host=/elsewhere user=u dbname=db",
            &[("PGPASSFILE", passfile)],
        );
        assert_eq!(config.hosts()[0].password(), None);
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        for dsn in [
            "host=h user=u password=hunter2-secret",
            "postgresql://u:hunter2-secret@h/db",
        ] {
            let config = ok(dsn, &[]);
            let shown = format!("{config} {config:?} {:?}", config.hosts());
            assert!(!shown.contains("hunter2-secret"), "{shown}");
            assert!(shown.contains("password=********"), "{shown}");
        }
        let config = ok("postgresql://u:hunter2-secret@h/db", &[]);
        assert!(config
            .to_string()
            .starts_with("host=h port=5432 user=u dbname=db password=********"));
        assert!(!ok("host=h", &[]).to_string().contains("password"));
    }

    #[test]
    fn quoting_round_trips_through_the_parser() {
        for value in ["plain", "", "two words", r"it's \ odd"] {
            let dsn = format!("application_name={}", quote_value(value));
            assert_eq!(
                ok(&dsn, &[]).application_name(),
                if value.is_empty() { "pgdbre" } else { value }
            );
        }
    }
}
