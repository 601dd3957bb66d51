//! Where a repository lives, parsed once from the `--repo` text and the environment.
//!
//! [`Location::parse`] is the only place that reads the S3 settings from the environment;
//! [`Location::parse_with_env`] takes the environment as a function so tests never mutate the
//! process environment. The result holds everything [`crate::Storage::open`] needs, so nothing
//! downstream re-reads a variable. Secrets live only in [`S3Credentials`], whose `Debug` redacts
//! them, and [`Location`]'s `Display` never shows them.

use crate::error::StorageError;
use std::fmt;
use std::path::PathBuf;

/// The region used when neither `PGDBRE_S3_REGION`, `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
/// S3-compatible servers ignore it, but request signing needs one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where a repository lives: a local directory (default) or an S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local (or mounted) file system.
    Local(PathBuf),
    /// A bucket, and a key prefix inside it, on AWS S3 or an S3-compatible server.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/`; empty for the whole
        /// bucket.
        prefix: String,
        /// `http(s)://host[:port]` of an S3-compatible server (path-style addressing); `None`
        /// for AWS S3 itself.
        endpoint: Option<String>,
        /// Signing region.
        region: String,
        /// Static credentials from the environment; `None` lets the client use the instance or
        /// container credentials of the machine (AWS only).
        credentials: Option<S3Credentials>,
    },
}

/// Static S3 credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// Access key id (not secret: S3 echoes it in error responses).
    pub access_key_id: String,
    /// Secret access key; never displayed or logged.
    pub secret_access_key: String,
    /// Session token of temporary credentials; never displayed or logged.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Location {
    /// Parses `"/path"`, a relative path, `"file:///path"` or `"s3://bucket/prefix"`, taking the
    /// S3 settings from the process environment (see [`Location::parse_with_env`]).
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        Location::parse_with_env(text, &|name| std::env::var(name).ok())
    }

    /// Parses like [`Location::parse`], with the environment given as a function.
    ///
    /// S3 settings, first set wins: endpoint `PGDBRE_S3_ENDPOINT`, `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT`; region `PGDBRE_S3_REGION`, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, then [`DEFAULT_REGION`]; credentials `AWS_ACCESS_KEY_ID` +
    /// `AWS_SECRET_ACCESS_KEY` (both or neither) and optionally `AWS_SESSION_TOKEN`.
    /// Empty variables count as unset.
    pub fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Location, StorageError> {
        let invalid = |reason: String| StorageError::InvalidLocation {
            text: redact_userinfo(text),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        match trimmed.split_once("://") {
            None => Ok(Location::Local(PathBuf::from(trimmed))),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "file" => parse_file_url(rest).map(Location::Local).map_err(invalid),
                "s3" => parse_s3(rest, env).map_err(invalid),
                other => Err(invalid(format!(
                    "unsupported scheme {other:?} (only file:// and s3:// are supported)"
                ))),
            },
        }
    }

    /// The endpoint requests go to, for messages: the configured one, or AWS's regional one.
    pub(crate) fn endpoint_for_messages(&self) -> Option<String> {
        match self {
            Location::Local(_) => None,
            Location::S3 {
                endpoint, region, ..
            } => Some(
                endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
            ),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                ..
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                if let Some(endpoint) = endpoint {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}

/// The path of a `file://` URL (after the scheme): empty or `localhost` host, percent-decoded.
fn parse_file_url(rest: &str) -> Result<PathBuf, String> {
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => return Err("a file URL needs an absolute path: file:///path".into()),
    };
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err(format!(
            "file URLs cannot name a host ({host:?}); use file:///path for a local directory"
        ));
    }
    if path.contains(['?', '#']) {
        return Err("a file URL cannot have a query or fragment".into());
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "the path is not valid UTF-8 after percent-decoding".to_string())?;
    Ok(PathBuf::from(decoded.as_ref()))
}

/// `bucket[/prefix]` (after `s3://`) plus the S3 settings from `env`.
fn parse_s3(rest: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Location, String> {
    if rest.contains('@') {
        return Err(
            "credentials cannot be part of the location; set AWS_ACCESS_KEY_ID and \
                    AWS_SECRET_ACCESS_KEY instead"
                .into(),
        );
    }
    if rest.contains(['?', '#']) {
        return Err("an s3:// location cannot have a query or fragment".into());
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    validate_bucket(bucket)?;
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        for segment in prefix.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(format!(
                    "the prefix {prefix:?} has an empty, \".\" or \"..\" segment"
                ));
            }
        }
    }

    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| env(name).filter(|value| !value.trim().is_empty()))
    };
    let endpoint = first(&[
        "PGDBRE_S3_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT",
    ])
    .map(|endpoint| validate_endpoint(&endpoint))
    .transpose()?;
    let region = first(&["PGDBRE_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"])
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    let credentials = match (
        first(&["AWS_ACCESS_KEY_ID"]),
        first(&["AWS_SECRET_ACCESS_KEY"]),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Some(S3Credentials {
            access_key_id,
            secret_access_key,
            session_token: first(&["AWS_SESSION_TOKEN"]),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both \
                        or neither"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both \
                        or neither"
                    .into(),
            )
        }
    };
    Ok(Location::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        endpoint,
        region,
        credentials,
    })
}

/// S3 bucket naming rules: 3–63 characters of `a-z0-9.-`, starting and ending with a letter or
/// digit. Checked here so a typo fails before any request.
fn validate_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the bucket name is missing: s3://bucket/prefix".into());
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !bucket.chars().all(allowed)
        || !edge(bucket.chars().next())
        || !edge(bucket.chars().last())
    {
        return Err(format!(
            "{bucket:?} is not a valid bucket name (3-63 characters: lowercase letters, digits, \
             '.' and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// An endpoint must be `http(s)://host[:port]`, without credentials or a path. Returned without
/// a trailing `/`.
fn validate_endpoint(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    let url = url::Url::parse(endpoint).map_err(|error| {
        format!(
            "the S3 endpoint {:?} is not a URL ({error}); use http(s)://host:port",
            redact_userinfo(endpoint)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the S3 endpoint must be http(s)://host[:port], not {:?}",
            redact_userinfo(endpoint)
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the S3 endpoint cannot contain credentials; set AWS_ACCESS_KEY_ID and \
                    AWS_SECRET_ACCESS_KEY instead"
                .into(),
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the S3 endpoint {endpoint:?} has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "the S3 endpoint {endpoint:?} must be only http(s)://host[:port]; put the bucket \
             and prefix in the s3:// location"
        ));
    }
    Ok(endpoint.to_string())
}

/// Replaces a `user:password@` part of a URL-like text with `***@`, so a mistyped location
/// never echoes a secret back.
fn redact_userinfo(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Location, StorageError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Location::parse_with_env(text, &|name| vars.get(name).cloned())
    }

    fn invalid_reason(text: &str, vars: &[(&str, &str)]) -> String {
        match parse(text, vars) {
            Err(StorageError::InvalidLocation { reason, .. }) => reason,
            other => panic!("expected InvalidLocation for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn absolute_and_relative_paths_are_local() {
        assert_eq!(
            parse("/var/lib/pgdbre/repo", &[]).unwrap(),
            Location::Local("/var/lib/pgdbre/repo".into())
        );
        assert_eq!(
            parse("  repo  ", &[]).unwrap(),
            Location::Local("repo".into())
        );
    }

    #[test]
    fn file_urls_are_local_and_percent_decoded() {
        assert_eq!(
            parse("file:///srv/backup%20repo", &[]).unwrap(),
            Location::Local("/srv/backup repo".into())
        );
        assert_eq!(
            parse("FILE://localhost/srv/repo", &[]).unwrap(),
            Location::Local("/srv/repo".into())
        );
    }

    #[test]
    fn file_urls_with_a_host_or_without_a_path_are_refused() {
        assert!(invalid_reason("file://server/srv/repo", &[]).contains("cannot name a host"));
        assert!(invalid_reason("file://", &[]).contains("absolute path"));
    }

    #[test]
    fn s3_defaults_without_environment() {
        assert_eq!(
            parse("s3://my-bucket", &[]).unwrap(),
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new(),
                endpoint: None,
                region: DEFAULT_REGION.into(),
                credentials: None,
            }
        );
    }

    #[test]
    fn s3_prefix_loses_outer_slashes() {
        let Location::S3 { prefix, .. } = parse("s3://bucket/pg/main/", &[]).unwrap() else {
            panic!("not S3")
        };
        assert_eq!(prefix, "pg/main");
    }

    #[test]
    fn s3_settings_come_from_pgdbre_variables_first() {
        let location = parse(
            "s3://bucket/repo",
            &[
                ("PGDBRE_S3_ENDPOINT", "http://127.0.0.1:9000/"),
                ("AWS_ENDPOINT_URL", "http://elsewhere:1"),
                ("PGDBRE_S3_REGION", "eu-west-3"),
                ("AWS_REGION", "us-west-2"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
                ("AWS_SESSION_TOKEN", "tok"),
            ],
        )
        .unwrap();
        assert_eq!(
            location,
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "repo".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "eu-west-3".into(),
                credentials: Some(S3Credentials {
                    access_key_id: "AKID".into(),
                    secret_access_key: "s3cr3t".into(),
                    session_token: Some("tok".into()),
                }),
            }
        );
    }

    #[test]
    fn s3_settings_fall_back_to_aws_variables() {
        let Location::S3 {
            endpoint, region, ..
        } = parse(
            "s3://bucket",
            &[
                ("PGDBRE_S3_ENDPOINT", ""),
                ("AWS_ENDPOINT_URL", "https://minio.internal:9000"),
                ("AWS_DEFAULT_REGION", "ap-south-1"),
            ],
        )
        .unwrap()
        else {
            panic!("not S3")
        };
        assert_eq!(endpoint.as_deref(), Some("https://minio.internal:9000"));
        assert_eq!(region, "ap-south-1");
    }

    #[test]
    fn half_of_a_key_pair_is_refused() {
        assert!(
            invalid_reason("s3://bucket", &[("AWS_ACCESS_KEY_ID", "AKID")])
                .contains("AWS_SECRET_ACCESS_KEY is not")
        );
        assert!(
            invalid_reason("s3://bucket", &[("AWS_SECRET_ACCESS_KEY", "x")])
                .contains("AWS_ACCESS_KEY_ID is not")
        );
    }

    #[test]
    fn bad_bucket_names_are_refused() {
        for text in [
            "s3://",
            "s3:///prefix",
            "s3://ab",
            "s3://My_Bucket",
            "s3://-bucket",
        ] {
            invalid_reason(text, &[]);
        }
    }

    #[test]
    fn bad_prefixes_and_urls_are_refused() {
        assert!(invalid_reason("s3://bucket/a//b", &[]).contains("segment"));
        assert!(invalid_reason("s3://bucket/../b", &[]).contains("segment"));
        assert!(invalid_reason("s3://bucket/a?x=1", &[]).contains("query"));
        assert!(invalid_reason("gs://bucket", &[]).contains("unsupported scheme"));
    }

    #[test]
    fn bad_endpoints_are_refused() {
        let reason = |endpoint| invalid_reason("s3://bucket", &[("PGDBRE_S3_ENDPOINT", endpoint)]);
        assert!(reason("127.0.0.1:9000").contains("http"));
        assert!(reason("ftp://host").contains("must be http(s)://host[:port]"));
        assert!(reason("http://host:9000/bucket").contains("only http(s)://host[:port]"));
        assert!(reason("http://user:pw@host").contains("cannot contain credentials"));
    }

    #[test]
    fn secrets_never_appear_in_display_debug_or_errors() {
        let location = parse(
            "s3://bucket/p",
            &[
                ("PGDBRE_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "TOPSECRET"),
                ("AWS_SESSION_TOKEN", "TOKENSECRET"),
            ],
        )
        .unwrap();
        assert_eq!(
            location.to_string(),
            "s3://bucket/p at http://127.0.0.1:9000"
        );
        let debug = format!("{location:?}");
        assert!(
            !debug.contains("TOPSECRET") && !debug.contains("TOKENSECRET"),
            "{debug}"
        );

        let error = parse("s3://AKID:TOPSECRET@bucket/p", &[])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("TOPSECRET"), "{error}");
        let error = parse(
            "s3://bucket",
            &[("PGDBRE_S3_ENDPOINT", "http://u:TOPSECRET@host")],
        )
        .unwrap_err()
        .to_string();
        assert!(!error.contains("TOPSECRET"), "{error}");
    }

    #[test]
    fn empty_text_is_refused_with_a_hint() {
        let error = parse("  ", &[]).unwrap_err().to_string();
        assert!(error.contains("it is empty"), "{error}");
        assert!(error.contains("s3://bucket/prefix"), "{error}");
    }
}
