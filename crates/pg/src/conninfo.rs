//! Parsing a DSN into keyword/value pairs exactly as libpq's `conninfo_parse` and
//! `conninfo_uri_parse` do, without applying any defaults.
//!
//! Parsing is pure: no environment, no files. [`crate::config`] layers the service file, the
//! `PG*` variables and the built-in defaults on top of what this module returns.

use crate::PgError;

/// One libpq keyword: its name and the environment variable that supplies its default.
pub(crate) struct Keyword {
    pub(crate) name: &'static str,
    pub(crate) env: Option<&'static str>,
    /// Real libpq keywords pgdbre accepts for compatibility but does not act on.
    pub(crate) ignored: bool,
}

const fn used(name: &'static str, env: Option<&'static str>) -> Keyword {
    Keyword {
        name,
        env,
        ignored: false,
    }
}

const fn ignored(name: &'static str) -> Keyword {
    Keyword {
        name,
        env: None,
        ignored: true,
    }
}

/// Every keyword pgdbre understands, in libpq's order.
pub(crate) const KEYWORDS: &[Keyword] = &[
    used("service", Some("PGSERVICE")),
    used("user", Some("PGUSER")),
    used("password", Some("PGPASSWORD")),
    used("passfile", Some("PGPASSFILE")),
    used("channel_binding", Some("PGCHANNELBINDING")),
    used("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    used("dbname", Some("PGDATABASE")),
    used("host", Some("PGHOST")),
    used("hostaddr", Some("PGHOSTADDR")),
    used("port", Some("PGPORT")),
    used("client_encoding", Some("PGCLIENTENCODING")),
    used("options", Some("PGOPTIONS")),
    used("application_name", Some("PGAPPNAME")),
    used("fallback_application_name", None),
    used("keepalives", None),
    used("keepalives_idle", None),
    used("keepalives_interval", None),
    used("keepalives_count", None),
    used("tcp_user_timeout", None),
    used("sslmode", Some("PGSSLMODE")),
    used("sslcert", Some("PGSSLCERT")),
    used("sslkey", Some("PGSSLKEY")),
    used("sslrootcert", Some("PGSSLROOTCERT")),
    used("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ignored("sslnegotiation"),
    ignored("sslcompression"),
    ignored("sslpassword"),
    ignored("sslcertmode"),
    ignored("sslcrl"),
    ignored("sslcrldir"),
    ignored("sslsni"),
    ignored("sslkeylogfile"),
    ignored("ssl_min_protocol_version"),
    ignored("ssl_max_protocol_version"),
    ignored("min_protocol_version"),
    ignored("max_protocol_version"),
    ignored("requirepeer"),
    ignored("require_auth"),
    ignored("gssencmode"),
    ignored("krbsrvname"),
    ignored("gsslib"),
    ignored("gssdelegation"),
    ignored("replication"),
    ignored("load_balance_hosts"),
];

/// The keyword entry for `name`, if libpq knows it.
pub(crate) fn keyword(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|keyword| keyword.name == name)
}

/// Keyword/value pairs in the order given; a later duplicate overrides an earlier one.
#[derive(Default, Clone)]
pub(crate) struct Options {
    pairs: Vec<(&'static str, String)>,
}

impl Options {
    /// Sets `name` (which must be a known keyword) to `value`, replacing any earlier value.
    pub(crate) fn set(&mut self, name: &'static str, value: String) {
        match self.pairs.iter_mut().find(|(key, _)| *key == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
    }

    /// The value of `name`, if set (an empty value counts as set, as in libpq).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name` unless it is unset or empty.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// Iterates over the pairs set so far.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.pairs.iter().map(|(key, value)| (*key, value.as_str()))
    }
}

/// Parses a DSN: a `postgresql://` / `postgres://` URI or a `key=value` conninfo string.
pub(crate) fn parse(dsn: &str) -> Result<Options, PgError> {
    for prefix in ["postgresql://", "postgres://"] {
        if let Some(rest) = dsn.strip_prefix(prefix) {
            return parse_uri(rest);
        }
    }
    parse_conninfo(dsn)
}

fn store(options: &mut Options, name: &str, value: String, context: &str) -> Result<(), PgError> {
    let Some(keyword) = keyword(name) else {
        return Err(PgError::InvalidDsn(format!(
            "unknown {context} \"{name}\"; hint: see the libpq connection parameter list"
        )));
    };
    options.set(keyword.name, value);
    Ok(())
}

/// libpq's `conninfo_parse`: `key = value` pairs separated by whitespace.
fn parse_conninfo(text: &str) -> Result<Options, PgError> {
    let mut options = Options::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(options);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(PgError::InvalidDsn(format!(
                "missing \"=\" after \"{name}\"; hint: write key=value pairs such as \
                 \"host=db1 dbname=app\" or a postgresql:// URI"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(PgError::InvalidDsn(format!(
                            "unterminated quoted value for \"{name}\"; hint: close it with ' and \
                             escape quotes inside as \\'"
                        )))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        store(&mut options, &name, value, "connection option")?;
    }
}

/// libpq's `conninfo_uri_parse_options` for the text after `postgresql://`.
fn parse_uri(rest: &str) -> Result<Options, PgError> {
    let mut options = Options::default();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (before_query, None),
    };
    let hostlist = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                options.set("user", percent_decode(user, "user name")?);
            }
            if let Some(password) = password {
                options.set("password", percent_decode(password, "password")?);
            }
            hosts
        }
        None => authority,
    };
    let (hosts, ports) = parse_uri_hosts(hostlist)?;
    // As libpq: a list consisting of one empty entry means "not given".
    if hosts.iter().any(|host| !host.is_empty()) {
        options.set("host", hosts.join(","));
    }
    if ports.iter().any(|port| !port.is_empty()) {
        options.set("port", ports.join(","));
    }
    if let Some(path) = path.filter(|path| !path.is_empty()) {
        options.set("dbname", percent_decode(path, "database name")?);
    }
    if let Some(query) = query {
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            let Some((name, value)) = parameter.split_once('=') else {
                return Err(PgError::InvalidDsn(format!(
                    "missing key/value separator \"=\" in URI query parameter \"{}\"; hint: \
                     write ?key=value&key=value",
                    crate::redact(parameter)
                )));
            };
            let name = percent_decode(name, "query parameter name")?;
            let value = percent_decode(value, "query parameter value")?;
            // JDBC compatibility, as libpq: ssl=true means sslmode=require.
            if name == "ssl" && value == "true" {
                options.set("sslmode", "require".into());
                continue;
            }
            store(&mut options, &name, value, "URI query parameter")?;
        }
    }
    Ok(options)
}

/// Splits `h1:5432,[::1]:5433,%2Ftmp` into decoded hosts and ports (empty where not given).
fn parse_uri_hosts(list: &str) -> Result<(Vec<String>, Vec<String>), PgError> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in list.split(',') {
        let (host, port) = if let Some(bracketed) = entry.strip_prefix('[') {
            let Some((address, after)) = bracketed.split_once(']') else {
                return Err(PgError::InvalidDsn(format!(
                    "missing \"]\" in IPv6 host address \"{entry}\"; hint: write [::1]:5432"
                )));
            };
            if address.is_empty() {
                return Err(PgError::InvalidDsn(
                    "empty IPv6 host address \"[]\"; hint: write [::1]:5432".into(),
                ));
            }
            let port = match after {
                "" => "",
                _ => after.strip_prefix(':').ok_or_else(|| {
                    PgError::InvalidDsn(format!(
                        "unexpected \"{after}\" after IPv6 host address \"[{address}]\"; hint: \
                         write [::1]:5432"
                    ))
                })?,
            };
            (address.to_owned(), port)
        } else {
            let (host, port) = entry.split_once(':').unwrap_or((entry, ""));
            (percent_decode(host, "host name")?, port)
        };
        hosts.push(host);
        ports.push(percent_decode(port, "port")?);
    }
    Ok((hosts, ports))
}

/// Strict percent-decoding like libpq's `conninfo_uri_decode`: a malformed escape or `%00` is an error.
fn percent_decode(text: &str, part: &str) -> Result<String, PgError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            decoded.push(bytes[index]);
            index += 1;
            continue;
        }
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match hex {
            Some(0) => {
                return Err(PgError::InvalidDsn(format!(
                    "forbidden value %00 in the URI {part}; hint: remove it"
                )))
            }
            Some(byte) => decoded.push(byte),
            None => {
                return Err(PgError::InvalidDsn(format!(
                "invalid percent-encoded token in the URI {part}; hint: encode a literal % as %25"
            )))
            }
        }
        index += 3;
    }
    String::from_utf8(decoded).map_err(|_| {
        PgError::InvalidDsn(format!(
            "the URI {part} is not valid UTF-8 after percent-decoding; hint: check its %XX escapes"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(dsn: &str) -> Vec<(String, String)> {
        parse(dsn)
            .unwrap_or_else(|e| panic!("{dsn}: {e}"))
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn get(dsn: &str, key: &str) -> Option<String> {
        parse(dsn)
            .unwrap_or_else(|e| panic!("{dsn}: {e}"))
            .get(key)
            .map(str::to_owned)
    }

    fn error(dsn: &str) -> String {
        match parse(dsn) {
            Ok(_) => panic!("{dsn} should not parse"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn conninfo_whitespace_around_equals() {
        assert_eq!(
            pairs("  host = db1\tport=5433 dbname =app  "),
            vec![
                ("host".into(), "db1".into()),
                ("port".into(), "5433".into()),
                ("dbname".into(), "app".into())
            ]
        );
    }

    #[test]
    fn conninfo_quoted_values_and_escapes() {
        assert_eq!(
            get(r"password='it\'s a \\ pass'", "password").as_deref(),
            Some(r"it's a \ pass")
        );
        assert_eq!(
            get("application_name=''", "application_name").as_deref(),
            Some("")
        );
        assert_eq!(get(r"password=a\ b", "password").as_deref(), Some("a b"));
        assert_eq!(
            get("options='-c statement_timeout=5s'", "options").as_deref(),
            Some("-c statement_timeout=5s")
        );
    }

    #[test]
    fn conninfo_later_duplicate_wins() {
        assert_eq!(get("port=1 port=2", "port").as_deref(), Some("2"));
    }

    #[test]
    fn conninfo_errors_name_the_problem() {
        assert!(error("host=db bogus=1").contains("\"bogus\""));
        assert!(error("mydb").contains("missing \"=\" after \"mydb\""));
        assert!(error("password='unterminated").contains("unterminated"));
        assert!(!error("password='unterminated").contains("unterminated'"));
    }

    #[test]
    fn ignored_keywords_are_accepted() {
        assert!(parse("gssencmode=disable sslcompression=0 host=x").is_ok());
    }

    #[test]
    fn uri_full() {
        let dsn = "postgresql://app%40corp:p%3Ass@db1:5432,db2:5433/my%20db?sslmode=verify-full&application_name=x";
        assert_eq!(get(dsn, "user").as_deref(), Some("app@corp"));
        assert_eq!(get(dsn, "password").as_deref(), Some("p:ss"));
        assert_eq!(get(dsn, "host").as_deref(), Some("db1,db2"));
        assert_eq!(get(dsn, "port").as_deref(), Some("5432,5433"));
        assert_eq!(get(dsn, "dbname").as_deref(), Some("my db"));
        assert_eq!(get(dsn, "sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get(dsn, "application_name").as_deref(), Some("x"));
    }

    #[test]
    fn uri_ipv6_and_partial_ports() {
        let dsn = "postgres://[::1]:5433,[fe80::1],h3/db";
        assert_eq!(get(dsn, "host").as_deref(), Some("::1,fe80::1,h3"));
        assert_eq!(get(dsn, "port").as_deref(), Some("5433,,"));
    }

    #[test]
    fn uri_unix_socket_forms() {
        assert_eq!(
            get("postgresql://%2Fvar%2Frun%2Fpostgresql/db", "host").as_deref(),
            Some("/var/run/postgresql")
        );
        let dsn = "postgresql:///db?host=/tmp&port=5433";
        assert_eq!(get(dsn, "host").as_deref(), Some("/tmp"));
        assert_eq!(get(dsn, "dbname").as_deref(), Some("db"));
        assert_eq!(get(dsn, "port").as_deref(), Some("5433"));
    }

    #[test]
    fn uri_empty_parts_are_not_set() {
        let options = parse("postgresql://").expect("bare scheme parses");
        assert_eq!(options.iter().count(), 0);
        assert_eq!(get("postgresql://u@/", "dbname"), None);
        assert_eq!(get("postgresql://u@/", "user").as_deref(), Some("u"));
    }

    #[test]
    fn uri_ssl_true_means_require() {
        assert_eq!(
            get("postgresql://h/d?ssl=true", "sslmode").as_deref(),
            Some("require")
        );
    }

    #[test]
    fn uri_errors() {
        assert!(error("postgresql://h/d?nope=1").contains("\"nope\""));
        assert!(error("postgresql://[::1/d").contains("\"]\""));
        assert!(error("postgresql://h/d%zz").contains("percent-encoded"));
        assert!(error("postgresql://h/d%00").contains("%00"));
        assert!(error("postgresql://h/d?password").contains("\"=\""));
    }

    #[test]
    fn uri_errors_do_not_echo_passwords() {
        let text = error("postgresql://u:topsecret@h/d?password");
        assert!(!text.contains("topsecret"));
    }
}
