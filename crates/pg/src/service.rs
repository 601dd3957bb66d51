//! Connection service files (`pg_service.conf`), read as libpq's `parseServiceInfo` reads them.
//!
//! A service is an INI-style section of `key=value` lines. libpq looks in the per-user file
//! (`PGSERVICEFILE`, else `~/.pg_service.conf`) first and in `$PGSYSCONFDIR/pg_service.conf`
//! second; the first file that defines the service supplies it, and its values only fill in
//! keywords the DSN left unset.

use crate::conninfo::{keyword, Options};
use crate::PgError;
use std::path::{Path, PathBuf};

/// Where libpq looks for the system-wide file when `PGSYSCONFDIR` is unset (Debian's build).
pub(crate) const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// Fills the keywords of `service` that `options` does not set yet, from the first of `files`
/// that defines it.
pub(crate) fn apply(
    service: &str,
    files: &[PathBuf],
    options: &mut Options,
) -> Result<(), PgError> {
    for path in files {
        let contents = match std::fs::read_to_string(path) {
            Ok(contents) => contents,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(PgError::Config(format!(
                    "could not read service file \"{}\": {error}; hint: check its permissions",
                    path.display()
                )))
            }
        };
        if let Some(entries) = find_service(&contents, service, path)? {
            for (name, value) in entries {
                if options.get(name).is_none() {
                    options.set(name, value);
                }
            }
            return Ok(());
        }
    }
    let searched = files
        .iter()
        .map(|path| format!("\"{}\"", path.display()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(PgError::Config(format!(
        "definition of service \"{service}\" not found; hint: add a [{service}] section to one of {searched} \
         or set PGSERVICEFILE"
    )))
}

/// The `key=value` entries of section `[service]`, or `None` when the file does not define it.
fn find_service(
    contents: &str,
    service: &str,
    path: &Path,
) -> Result<Option<Vec<(&'static str, String)>>, PgError> {
    let mut in_section = false;
    let mut found = false;
    let mut entries = Vec::new();
    for (index, raw) in contents.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            if found {
                break;
            }
            in_section = name.strip_suffix(']') == Some(service);
            found = in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let at = || format!("\"{}\" line {}", path.display(), index + 1);
        let Some((name, value)) = line.split_once('=') else {
            return Err(PgError::InvalidDsn(format!(
                "syntax error in service file {}: expected key=value; hint: fix that line",
                at()
            )));
        };
        let name = name.trim();
        if name == "service" {
            return Err(PgError::InvalidDsn(format!(
                "nested service specifications are not supported in service file {}; hint: remove it",
                at()
            )));
        }
        let Some(keyword) = keyword(name) else {
            return Err(PgError::InvalidDsn(format!(
                "unknown keyword \"{name}\" in service file {}; hint: see the libpq connection parameter list",
                at()
            )));
        };
        entries.push((keyword.name, value.trim().to_owned()));
    }
    Ok(found.then_some(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# services\n\
                        [other]\n\
                        host=elsewhere\n\
                        \n\
                        [app]\n\
                        host = db1\n\
                        port=5433\n\
                        dbname=app db\n";

    #[test]
    fn finds_the_named_section_only() {
        let entries = find_service(FILE, "app", Path::new("f"))
            .expect("parses")
            .expect("defined");
        assert_eq!(
            entries,
            vec![
                ("host", "db1".into()),
                ("port", "5433".into()),
                ("dbname", "app db".into())
            ]
        );
        assert!(find_service(FILE, "missing", Path::new("f"))
            .expect("parses")
            .is_none());
    }

    #[test]
    fn service_values_fill_only_unset_keywords() {
        let dir = tempfile::tempdir().expect("temp dir");
        let user_file = dir.path().join("user.conf");
        let system_file = dir.path().join("pg_service.conf");
        std::fs::write(&system_file, FILE).expect("write");
        let mut options = Options::default();
        options.set("port", "6000".into());
        apply("app", &[user_file, system_file], &mut options).expect("applies");
        assert_eq!(options.get("host"), Some("db1"));
        assert_eq!(options.get("port"), Some("6000"));
    }

    #[test]
    fn first_file_defining_the_service_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = dir.path().join("a.conf");
        let second = dir.path().join("b.conf");
        std::fs::write(&first, "[app]\nhost=from-first\n").expect("write");
        std::fs::write(&second, FILE).expect("write");
        let mut options = Options::default();
        apply("app", &[first, second], &mut options).expect("applies");
        assert_eq!(options.get("host"), Some("from-first"));
        assert_eq!(options.get("port"), None);
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let text = find_service("[app]\nbogus=1\n", "app", Path::new("svc.conf"))
            .expect_err("unknown keyword")
            .to_string();
        assert!(
            text.contains("\"bogus\"") && text.contains("svc.conf") && text.contains("line 2"),
            "{text}"
        );
        let missing = apply(
            "nope",
            &[PathBuf::from("/nonexistent/x.conf")],
            &mut Options::default(),
        )
        .expect_err("not found")
        .to_string();
        assert!(missing.contains("\"nope\" not found"), "{missing}");
    }
}
