//! The drill's scratch space: a fresh directory (restored data in `pgdata/`, the drill's own
//! `hba_file`) and the server running on it. Dropping it stops the server and removes the
//! directory — also when the drill fails, times out or panics — unless the drill is `--keep`.
//!
//! Authentication: the restored cluster keeps the source's roles and passwords, which a drill
//! must not need. The server runs with `hba_file` pointing at a file of ours that trusts local
//! connections only; its socket lives in a private directory under `/tmp` and it listens on no
//! TCP address, so only this host's root and the server user can reach it. The restored
//! `pg_hba.conf` is left untouched (a kept copy starts with the source's rules).

use crate::error::DrillError;
use pgdbre_lab::restored::{RestoredServer, StartOptions};
use pgdbre_lab::{LabError, PgInstall};
use pgdbre_pg::{quote_value, ConnConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines of the server log kept as evidence.
pub(crate) const LOG_EXCERPT_LINES: usize = 30;

/// The scratch directory and its server. Field order is drop order: the server stops before the
/// directory under it is removed.
pub(crate) struct Scratch {
    server: Option<RestoredServer>,
    /// The log tail a failed start reported (the server's own directory is gone by then).
    failed_start_log: Option<String>,
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates `<work_dir>/pgdbre-drill-XXXXXX`, enterable by the server's OS user.
    pub(crate) fn create(work_dir: &Path) -> Result<Scratch, DrillError> {
        let dir = tempfile::Builder::new()
            .prefix("pgdbre-drill-")
            .tempdir_in(work_dir)
            .map_err(|source| DrillError::Io {
                action: "create a scratch directory in",
                path: work_dir.to_path_buf(),
                source,
            })?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(
            |source| DrillError::Io {
                action: "set permissions of",
                path: dir.path().to_path_buf(),
                source,
            },
        )?;
        Ok(Scratch {
            server: None,
            failed_start_log: None,
            dir,
        })
    }

    /// Where the backup is restored.
    pub(crate) fn pgdata(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    /// Where the backup's tablespaces are restored (`<this>/<name>`).
    pub(crate) fn tablespaces(&self) -> PathBuf {
        self.dir.path().join("tablespaces")
    }

    /// Starts the server on the restored data and waits (up to `timeout`) until it accepts
    /// connections. `pg_ctl` blocks, so it runs on the blocking pool.
    pub(crate) async fn start(
        &mut self,
        install: PgInstall,
        timeout: Duration,
    ) -> Result<(), DrillError> {
        let hba_file = self.dir.path().join("drill_hba.conf");
        std::fs::write(
            &hba_file,
            "# pgdbre drill: local connections only, over a private socket\nlocal all all trust\n",
        )
        .and_then(|()| std::fs::set_permissions(&hba_file, std::fs::Permissions::from_mode(0o644)))
        .map_err(|source| DrillError::Io {
            action: "write",
            path: hba_file.clone(),
            source,
        })?;
        let options = StartOptions {
            passfile: None,
            settings: vec![
                ("hba_file".into(), hba_file.display().to_string()),
                // Read-only connections during recovery, so the drill can watch it.
                ("hot_standby".into(), "on".into()),
                // The log goes to the file the drill reads, whatever the source configured.
                ("logging_collector".into(), "off".into()),
                ("log_destination".into(), "stderr".into()),
            ],
            timeout,
        };
        let pgdata = self.pgdata();
        let started = tokio::task::spawn_blocking(move || {
            RestoredServer::start_with(&install, &pgdata, &options)
        })
        .await
        .map_err(|error| DrillError::Start {
            reason: format!("the start-up task failed: {error}"),
        })?;
        match started {
            Ok(server) => {
                self.server = Some(server);
                Ok(())
            }
            Err(LabError::Start {
                reason, log_tail, ..
            }) => {
                self.failed_start_log = Some(log_tail);
                // The server's own words beat pg_ctl's "could not start server".
                Err(match self.last_fatal() {
                    Some(last_error) => DrillError::ServerExited {
                        phase: "start-up",
                        last_error,
                    },
                    None => DrillError::Start { reason },
                })
            }
            Err(other) => Err(DrillError::Lab(other)),
        }
    }

    /// Connection settings for `database` on the running server (trust over the private socket;
    /// no `PG*` variable or password file of the caller applies).
    pub(crate) fn connection(&self, user: &str, database: &str) -> Option<ConnConfig> {
        let node = self.server.as_ref()?.node();
        let dsn = format!(
            "host={} port={} user={} dbname={} sslmode=disable connect_timeout=10 application_name=pgdbre-drill",
            quote_value(&node.socket_dir().display().to_string()),
            node.port(),
            quote_value(user),
            quote_value(database)
        );
        ConnConfig::resolve_with_env(Some(&dsn), &|_| None).ok()
    }

    /// Whether the server is still running.
    pub(crate) fn server_running(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|server| server.node().is_running())
    }

    /// Waits up to `grace` for the server to stop; whether it has.
    pub(crate) async fn wait_for_exit(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        while self.server_running() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// The whole server log so far (of a failed start: the tail it reported).
    fn log(&self) -> String {
        match (&self.server, &self.failed_start_log) {
            (Some(server), _) => server.node().log_contents(),
            (None, Some(tail)) => tail.clone(),
            (None, None) => String::new(),
        }
    }

    /// The last lines of the server log, secrets redacted.
    pub(crate) fn log_excerpt(&self) -> Vec<String> {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_EXCERPT_LINES)..]
            .iter()
            .map(|line| redact_line(line))
            .collect()
    }

    /// The last FATAL or PANIC line of the server log: why a server stopped on its own.
    pub(crate) fn last_fatal(&self) -> Option<String> {
        self.log()
            .lines()
            .rev()
            .find(|line| line.contains("FATAL:") || line.contains("PANIC:"))
            .map(redact_line)
    }

    /// Stops the server and removes the directory; with `keep`, stops it cleanly instead, copies
    /// its log next to the data and returns the directory.
    pub(crate) fn finish(mut self, keep: bool) -> Option<PathBuf> {
        if !keep {
            return None; // Drop stops the server (immediate) and removes the directory.
        }
        if let Some(server) = self.server.take() {
            if let Err(error) = server.node().stop() {
                tracing::warn!("stopping the drill server: {error}");
            }
            // The log lives in the server's socket directory, removed with `server`.
            let _ = std::fs::write(
                self.dir.path().join("server.log"),
                server.node().log_contents(),
            );
        }
        Some(self.dir.keep())
    }
}

/// `line` with passwords masked: conninfo and URI passwords (`pgdbre_pg::redact`) and the
/// literal after `PASSWORD` in logged SQL (`ALTER ROLE app PASSWORD 'secret'`).
fn redact_line(line: &str) -> String {
    let line = pgdbre_pg::redact(line);
    let lower = line.to_ascii_lowercase();
    let Some(at) = lower.find("password ") else {
        return line;
    };
    let after = at + "password ".len();
    let rest = &line[after..];
    let literal_start = rest.find('\'').filter(|start| {
        rest[..*start].trim().is_empty() || rest[..*start].trim().eq_ignore_ascii_case("e")
    });
    match literal_start {
        Some(start) => format!("{}'{}'", &line[..after + start], pgdbre_pg::MASK),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::redact_line;

    #[test]
    fn passwords_in_logged_sql_and_conninfo_are_masked() {
        assert_eq!(
            redact_line("LOG:  statement: ALTER ROLE app PASSWORD 'hunter2';"),
            "LOG:  statement: ALTER ROLE app PASSWORD '********'"
        );
        assert!(!redact_line("DETAIL: host=a password=hunter2 user=b").contains("hunter2"));
        assert_eq!(
            redact_line("LOG:  checkpoint complete"),
            "LOG:  checkpoint complete"
        );
        assert_eq!(
            redact_line("FATAL:  password authentication failed for user \"x\""),
            "FATAL:  password authentication failed for user \"x\""
        );
    }
}
