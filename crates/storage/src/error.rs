//! The one error type of the storage layer, and the translation of `object_store` and I/O errors
//! into it.
//!
//! Callers branch on the kind (a full disk, an unreachable endpoint and bad credentials need
//! different actions), and every message is one sentence saying what is wrong and what to do.
//! `object_store` nests the useful fact (an errno, a connection refusal, an HTTP status with an S3
//! error code) several sources deep, so [`classify`] walks the whole source chain. Nothing here
//! formats a request URL or header, so no secret can reach a message.

use object_store::client::{HttpError, HttpErrorKind};
use std::error::Error as StdError;

/// Everything that can go wrong opening or using a repository's storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {key} is not in the repository; it was never written or has been deleted")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },
    /// The file system (or quota) holding the repository is full.
    #[error(
        "repository {location}: no space left on device; free space or point --repo elsewhere"
    )]
    Full {
        /// The repository, as displayed to the user.
        location: String,
    },
    /// The storage server (or file system) could not be reached.
    #[error("cannot reach {location} ({detail}); {}", unreachable_hint(location))]
    Unreachable {
        /// What could not be reached (`S3 endpoint http://…`, or the repository).
        location: String,
        /// Why, in a few words ("connection refused").
        detail: String,
    },
    /// The credentials, bucket policy or file permissions do not allow the operation.
    #[error(
        "repository {location}: permission denied ({detail}); {}",
        permission_hint(location)
    )]
    PermissionDenied {
        /// The repository, as displayed to the user.
        location: String,
        /// What was refused and why.
        detail: String,
    },
    /// The location text could not be parsed.
    #[error(
        "invalid repository location {text:?}: {reason}; use a directory path, file:///path or \
         s3://bucket/prefix"
    )]
    InvalidLocation {
        /// The text as given (with any `user:password@` part masked).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure, with the underlying detail.
    #[error("repository {location}: {detail}")]
    Other {
        /// The repository, as displayed to the user.
        location: String,
        /// What failed.
        detail: String,
    },
}

fn unreachable_hint(location: &str) -> &'static str {
    if location.starts_with("S3 ") {
        "check PGDBRE_S3_ENDPOINT and that the server is running"
    } else {
        "check that its file system is mounted and healthy"
    }
}

fn permission_hint(location: &str) -> &'static str {
    if location.starts_with("s3://") {
        "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy"
    } else {
        "check the owner and mode of the directory, or whether it is mounted read-only"
    }
}

/// Which repository an operation ran against, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The repository as displayed (`/srv/repo`, `s3://bucket/prefix at http://…`).
    pub(crate) location: String,
    /// The S3 endpoint requests go to; `None` for a local directory.
    pub(crate) endpoint: Option<String>,
}

impl Target {
    /// What "cannot reach …" names: the S3 endpoint, or the repository directory.
    fn reach_name(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("S3 endpoint {endpoint}"),
            None => format!("repository {}", self.location),
        }
    }

    pub(crate) fn other(&self, detail: impl Into<String>) -> StorageError {
        StorageError::Other {
            location: self.location.clone(),
            detail: detail.into(),
        }
    }

    /// Translates a local I/O error from `action` on `subject` ("create directory", "/x").
    pub(crate) fn io(&self, action: &str, subject: &str, error: &std::io::Error) -> StorageError {
        classify_io(self, subject, error)
            .unwrap_or_else(|| self.other(format!("{action} {subject}: {error}")))
    }
}

/// Translates an `object_store` error from an operation on `key`.
pub(crate) fn classify(target: &Target, key: &str, error: object_store::Error) -> StorageError {
    let denied = |detail: String| StorageError::PermissionDenied {
        location: target.location.clone(),
        detail,
    };
    let detail = http_detail(&error);
    if detail
        .as_deref()
        .is_some_and(|detail| detail.contains("NoSuchBucket"))
    {
        return target.other(
            "the bucket does not exist (NoSuchBucket); create it or correct the s3:// location",
        );
    }
    match &error {
        object_store::Error::NotFound { .. } => {
            return StorageError::NotFound {
                key: key.to_string(),
            }
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return denied(detail.unwrap_or_else(|| format!("on {key}")));
        }
        _ => {}
    }
    if let Some(classified) = sources(&error).find_map(|source| {
        source
            .downcast_ref::<std::io::Error>()
            .and_then(|io| classify_io(target, key, io))
    }) {
        return classified;
    }
    if let Some(http) = sources(&error).find_map(|source| source.downcast_ref::<HttpError>()) {
        if matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
            return StorageError::Unreachable {
                location: target.reach_name(),
                detail: transport_detail(http),
            };
        }
    }
    match status_code(&error) {
        Some(401 | 403) => denied(detail.unwrap_or_default()),
        Some(507) => StorageError::Full {
            location: target.location.clone(),
        },
        Some(_) => target.other(format!("{key}: {}", detail.unwrap_or_default())),
        None => target.other(format!("{key}: {error}")),
    }
}

/// The kinds an errno decides; `None` leaves the error to the caller's generic handling.
/// `subject` names what was accessed (a key, or "directory /x").
fn classify_io(target: &Target, subject: &str, error: &std::io::Error) -> Option<StorageError> {
    let location = target.location.clone();
    match error.raw_os_error()? {
        libc::ENOSPC | libc::EDQUOT => Some(StorageError::Full { location }),
        libc::EACCES | libc::EPERM => Some(StorageError::PermissionDenied {
            location,
            detail: format!("access to {subject} refused"),
        }),
        libc::EROFS => Some(StorageError::PermissionDenied {
            location,
            detail: "read-only file system".into(),
        }),
        // Refused or lost connections, and a network file system gone away or failing.
        libc::ECONNREFUSED
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::ETIMEDOUT
        | libc::ENOTCONN
        | libc::ESTALE
        | libc::EIO => Some(StorageError::Unreachable {
            location: target.reach_name(),
            detail: io_detail(error),
        }),
        _ => None,
    }
}

/// An I/O error in a few lowercase words, without the "(os error N)" suffix.
fn io_detail(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        std::io::ErrorKind::HostUnreachable => "host unreachable".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => {
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
    }
}

/// Why a request failed before any response: the deepest cause, which names it best
/// ("dns error: failed to lookup address", "connection refused").
fn transport_detail(http: &HttpError) -> String {
    if http.kind() == HttpErrorKind::Timeout {
        return "timed out".into();
    }
    let mut deepest: &(dyn StdError + 'static) = http;
    while let Some(source) = deepest.source() {
        if let Some(tls) = source.downcast_ref::<rustls::Error>() {
            return tls_detail(tls);
        }
        if let Some(mut io) = source.downcast_ref::<std::io::Error>() {
            // The connector nests I/O errors, and rustls reports through the innermost one;
            // `io::Error::source` skips the wrapped error itself, so unwrap by hand.
            while let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return tls_detail(tls);
                }
                match inner.downcast_ref::<std::io::Error>() {
                    Some(nested) => io = nested,
                    None => break,
                }
            }
            return io_detail(io);
        }
        deepest = source;
    }
    deepest.to_string()
}

/// A failed TLS handshake, with the likely cause.
fn tls_detail(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(_) => format!(
            "TLS handshake failed: {error}; the server's certificate is not trusted by this system"
        ),
        rustls::Error::InvalidMessage(_) => {
            format!("TLS handshake failed: {error}; the endpoint may be plain http://")
        }
        _ => format!("TLS handshake failed: {error}"),
    }
}

/// Every error in the chain, starting with `error` itself.
fn sources<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| error.source())
}

/// The HTTP status of a failed request, read from the rendered chain: `object_store` keeps its
/// typed retry error private, but renders it as "…status code: 403 Forbidden…".
fn status_code(error: &object_store::Error) -> Option<u16> {
    sources(error).find_map(|source| {
        let text = source.to_string();
        let (_, after) = text.split_once("status code: ")?;
        after.get(..3)?.parse().ok()
    })
}

/// "403 Forbidden, SignatureDoesNotMatch: The request signature …" from the S3 error response:
/// the status and the S3 `<Code>` and `<Message>`, never the request (it names signed headers).
fn http_detail(error: &object_store::Error) -> Option<String> {
    let text = sources(error)
        .map(|source| source.to_string())
        .find(|text| text.contains("status code: "))?;
    let (_, after) = text.split_once("status code: ")?;
    let status: String = after
        .chars()
        .take_while(|c| *c != ':' && *c != '<')
        .collect();
    let mut detail = status.trim().to_string();
    if let Some(code) = xml_element(after, "Code") {
        detail.push_str(", ");
        detail.push_str(code);
    }
    if let Some(message) = xml_element(after, "Message") {
        detail.push_str(": ");
        detail.push_str(message);
    }
    Some(detail)
}

fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let (_, after) = text.split_once(&format!("<{name}>"))?;
    let (value, _) = after.split_once(&format!("</{name}>"))?;
    Some(value.trim()).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Target {
        Target {
            location: "/srv/repo".into(),
            endpoint: None,
        }
    }

    fn s3() -> Target {
        Target {
            location: "s3://bucket/p at http://127.0.0.1:9".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
        }
    }

    #[test]
    fn errno_decides_the_kind() {
        let full = local().io(
            "write",
            "k",
            &std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(
            full.to_string(),
            "repository /srv/repo: no space left on device; free space or point --repo elsewhere"
        );
        let denied = local().io(
            "write",
            "k",
            &std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(matches!(denied, StorageError::PermissionDenied { .. }));
        assert!(denied.to_string().contains("owner and mode"), "{denied}");
        let refused = s3().io(
            "connect",
            "k",
            &std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
        );
        assert_eq!(
            refused.to_string(),
            "cannot reach S3 endpoint http://127.0.0.1:9 (connection refused); check \
             PGDBRE_S3_ENDPOINT and that the server is running"
        );
        let other = local().io(
            "rename",
            "k",
            &std::io::Error::from_raw_os_error(libc::EXDEV),
        );
        assert!(matches!(other, StorageError::Other { .. }));
    }

    #[test]
    fn s3_error_bodies_become_status_code_and_message() {
        let body = "Error performing PUT http://h/b/k in 2ms - Server returned non-2xx status \
                    code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch\
                    </Code><Message>The request signature does not match.</Message>\
                    <StringToSign>AWS4-HMAC-SHA256</StringToSign></Error>";
        let error = object_store::Error::Generic {
            store: "S3",
            source: body.into(),
        };
        assert_eq!(status_code(&error), Some(403));
        assert_eq!(
            http_detail(&error).unwrap(),
            "403 Forbidden, SignatureDoesNotMatch: The request signature does not match."
        );
        let classified = classify(&s3(), "k", error);
        assert!(
            matches!(classified, StorageError::PermissionDenied { .. }),
            "{classified:?}"
        );
        assert!(!classified.to_string().contains("StringToSign"));
    }

    #[test]
    fn not_found_names_the_key() {
        let error = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        let classified = classify(&local(), "blocks/ab/cd", error);
        assert_eq!(
            classified.to_string(),
            "object blocks/ab/cd is not in the repository; it was never written or has been \
             deleted"
        );
    }
}
