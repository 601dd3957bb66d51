//! Removing passwords from any text before it is logged, shown or stored.
//!
//! Connection strings end up in error messages, `--verbose` output, reports and incident
//! notes; this is the one place that knows what a secret looks like in them: a conninfo
//! `password=…` (bare or single-quoted, with libpq's escapes), a URI query `password=…`, and the
//! `user:secret@` part of a `postgresql://` URI.

/// What replaces a secret.
pub const MASK: &str = "********";

/// Returns `text` with every password in an embedded conninfo string or URI replaced by `********`.
pub fn redact(text: &str) -> String {
    redact_uri_userinfo(&redact_password_keywords(text))
}

/// Replaces the value after each `password=` (any case, spaces allowed around `=`).
fn redact_password_keywords(text: &str) -> String {
    const KEYWORD: &str = "password";
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(KEYWORD) {
        let start = search + found;
        let mut cursor = start + KEYWORD.len();
        search = cursor;
        // Only a whole word: `sslpassword=` is a different (also secret) keyword, but
        // `passwordless` is not a key at all. Treat any word ending in "password" as secret.
        while cursor < bytes.len() && bytes[cursor] == b' ' {
            cursor += 1;
        }
        if cursor >= bytes.len() || bytes[cursor] != b'=' {
            continue;
        }
        cursor += 1;
        while cursor < bytes.len() && bytes[cursor] == b' ' {
            cursor += 1;
        }
        let in_uri_query = start > 0 && matches!(bytes[start - 1], b'?' | b'&');
        let mut value_end = value_end(bytes, cursor, in_uri_query);
        // An escape may have stepped into a multi-byte character: move to its end.
        while !text.is_char_boundary(value_end) {
            value_end += 1;
        }
        out.push_str(&text[copied..cursor]);
        out.push_str(MASK);
        copied = value_end;
        search = value_end.max(search);
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a value starting at `start` ends: a quoted conninfo value at its closing quote, a URI
/// query value at `&` or `#`, anything else at whitespace (escapes honoured).
fn value_end(bytes: &[u8], start: usize, in_uri_query: bool) -> usize {
    let mut cursor = start;
    if bytes.get(cursor) == Some(&b'\'') {
        cursor += 1;
        while cursor < bytes.len() {
            match bytes[cursor] {
                b'\\' => cursor += 2,
                b'\'' => return cursor + 1,
                _ => cursor += 1,
            }
        }
        return bytes.len();
    }
    while cursor < bytes.len() {
        match bytes[cursor] {
            b'\\' => cursor += 2,
            b'&' | b'#' if in_uri_query => break,
            byte if byte.is_ascii_whitespace() => break,
            _ => cursor += 1,
        }
    }
    cursor.min(bytes.len())
}

/// Replaces `secret` in `scheme://user:secret@host`.
fn redact_uri_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let authority_start = search + found + 3;
        search = authority_start;
        let authority_end = text[authority_start..]
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .map_or(text.len(), |offset| authority_start + offset);
        // The last '@' ends the userinfo: an unencoded '@' in a password is still hidden.
        let Some(at) = text[authority_start..authority_end].rfind('@') else {
            continue;
        };
        let at = authority_start + at;
        let Some(colon) = text[authority_start..at].find(':') else {
            continue;
        };
        let secret_start = authority_start + colon + 1;
        if secret_start == at {
            // `user:@host` has an empty password: nothing to hide.
            continue;
        }
        out.push_str(&text[copied..secret_start]);
        out.push_str(MASK);
        copied = at;
        search = authority_end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_bare_value() {
        assert_eq!(
            redact("host=db password=s3cret user=app"),
            "host=db password=******** user=app"
        );
    }

    #[test]
    fn conninfo_quoted_value_with_escapes_and_spaces() {
        let text = r"connect failed: host=db password = 'it\'s a \\ secret' dbname=x";
        let redacted = redact(text);
        assert_eq!(
            redacted,
            "connect failed: host=db password = ******** dbname=x"
        );
        assert!(!redacted.contains("secret"));
    }

    #[test]
    fn keyword_case_and_env_assignment() {
        assert_eq!(
            redact("PGPASSWORD=hunter2 psql"),
            "PGPASSWORD=******** psql"
        );
        assert_eq!(redact("Password=x"), "Password=********");
    }

    #[test]
    fn uri_userinfo_and_query() {
        assert_eq!(
            redact("see postgresql://app:s%40cret@db:5432/app?sslmode=require now"),
            "see postgresql://app:********@db:5432/app?sslmode=require now"
        );
        assert_eq!(
            redact("postgres://db/app?password=s3cret&sslmode=require"),
            "postgres://db/app?password=********&sslmode=require"
        );
        assert_eq!(redact("postgresql://app@db/x"), "postgresql://app@db/x");
        assert_eq!(
            redact("postgresql://a:p@ss@db/x"),
            "postgresql://a:********@db/x"
        );
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        let text = "password authentication failed for user \"app\"";
        assert_eq!(redact(text), text);
        assert_eq!(redact("https://example.com/a:b"), "https://example.com/a:b");
    }

    #[test]
    fn several_secrets_in_one_text() {
        let redacted = redact("a password=one b postgresql://u:two@h c password='three'");
        for secret in ["one", "two", "three"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
    }
}
