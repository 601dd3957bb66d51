//! The password file (`.pgpass`), read as libpq's `passwordFromFile` reads it.
//!
//! Lines are `host:port:database:user:password`; `*` matches anything, `\:` and `\\` escape,
//! `#` starts a comment line, and the first matching line wins. A file that group or others may
//! read is ignored with a warning, exactly as libpq refuses it, so a leaked file is never used.

use std::path::Path;

/// What a `.pgpass` line is matched against for one host.
pub(crate) struct Lookup<'a> {
    /// The host name, or the host address when no name was given, or `localhost` for the
    /// default Unix socket directory.
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) dbname: &'a str,
    pub(crate) user: &'a str,
}

/// Reads `path` and returns the first matching password, or `None` (missing, unreadable or
/// unsafe file, or no match).
pub(crate) fn password_from_file(path: &Path, lookup: &Lookup<'_>) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        tracing::warn!(
            "password file \"{}\" is not a plain file; ignoring it",
            path.display()
        );
        return None;
    }
    if !permissions_are_private(&metadata) {
        tracing::warn!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) \
             or less; ignoring it",
            path.display()
        );
        return None;
    }
    let contents = match std::fs::read_to_string(path) {
        Ok(contents) => contents,
        Err(error) => {
            tracing::warn!(
                "could not read password file \"{}\": {error}",
                path.display()
            );
            return None;
        }
    };
    find_password(&contents, lookup)
}

#[cfg(unix)]
fn permissions_are_private(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 == 0
}

#[cfg(not(unix))]
fn permissions_are_private(_metadata: &std::fs::Metadata) -> bool {
    true
}

/// The first line of `contents` matching `lookup`, with the password's escapes removed.
pub(crate) fn find_password(contents: &str, lookup: &Lookup<'_>) -> Option<String> {
    let port = lookup.port.to_string();
    let wanted = [lookup.host, port.as_str(), lookup.dbname, lookup.user];
    contents
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, value)| field == "*" || field == value);
            matches.then(|| fields[4..].join(":"))
        })
}

/// Splits a line on unescaped `:` and removes the escapes. A password may itself contain
/// unescaped `:` (libpq takes the rest of the line), which the caller re-joins.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                Some(escaped) => escaped,
                None => continue,
            },
            ':' if fields.len() < 5 => {
                fields.push(String::new());
                continue;
            }
            c => c,
        };
        if let Some(field) = fields.last_mut() {
            field.push(literal);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lookup<'a>(host: &'a str, port: u16, dbname: &'a str, user: &'a str) -> Lookup<'a> {
        Lookup {
            host,
            port,
            dbname,
            user,
        }
    }

    #[test]
    fn first_match_wins_and_wildcards() {
        let file = "# comment\n\
                    db1:5432:app:alice:first\n\
                    *:*:*:alice:second\n\
                    db1:5432:app:alice:third\n\
                    *:5433:*:*:any-user\n";
        assert_eq!(
            find_password(file, &lookup("db1", 5432, "app", "alice")).as_deref(),
            Some("first")
        );
        assert_eq!(
            find_password(file, &lookup("db2", 1, "x", "alice")).as_deref(),
            Some("second")
        );
        assert_eq!(
            find_password(file, &lookup("db9", 5433, "x", "bob")).as_deref(),
            Some("any-user")
        );
        assert_eq!(find_password(file, &lookup("db9", 5432, "x", "bob")), None);
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let file = r"db\:1:5432:app:al\\ice:pa\:ss\\word";
        assert_eq!(
            find_password(file, &lookup("db:1", 5432, "app", r"al\ice")).as_deref(),
            Some(r"pa:ss\word")
        );
    }

    #[test]
    fn unescaped_colon_in_password_is_kept_and_short_lines_skipped() {
        let file = "h:5432:d\nh:5432:d:u:a:b\r\n";
        assert_eq!(
            find_password(file, &lookup("h", 5432, "d", "u")).as_deref(),
            Some("a:b")
        );
    }

    #[test]
    fn a_star_only_matches_as_a_whole_field() {
        let file = "db*:5432:app:u:nope\n";
        assert_eq!(find_password(file, &lookup("db1", 5432, "app", "u")), None);
    }

    #[cfg(unix)]
    #[test]
    fn file_readable_by_others_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, "*:*:*:*:secret").expect("write");
        let path = file.path();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(password_from_file(path, &lookup("h", 1, "d", "u")), None);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            password_from_file(path, &lookup("h", 1, "d", "u")).as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn missing_file_gives_no_password() {
        assert_eq!(
            password_from_file(Path::new("/nonexistent/.pgpass"), &lookup("h", 1, "d", "u")),
            None
        );
    }
}
