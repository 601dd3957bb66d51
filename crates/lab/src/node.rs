//! One PostgreSQL server of a lab: its files, its connection strings, and the few operations
//! tests need (SQL through `psql`, start/stop/kill, settings, the server log).

use crate::error::LabError;
use crate::install::PgInstall;
use crate::process;
use crate::session::BackgroundSession;
use crate::wait_until;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long `pg_ctl` may take to start or stop a server.
const PG_CTL_TIMEOUT_SECONDS: &str = "60";
/// Lines of the server log quoted in start errors.
const LOG_TAIL_LINES: usize = 30;

/// What a node was set up as. A promoted replica keeps `Replica` here; ask the server
/// (`pg_is_in_recovery()`) when a test changes roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts writes; replicas stream from it.
    Primary,
    /// A hot standby streaming from the primary through a physical slot.
    Replica,
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        })
    }
}

/// How the server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `pg_ctl stop -m fast`: roll back sessions, checkpoint, exit cleanly.
    Fast,
    /// `pg_ctl stop -m immediate`: exit at once; the next start runs crash recovery.
    Immediate,
}

/// One server of a lab cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) port: u16,
    pub(crate) node_dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) socket_dir: PathBuf,
    pub(crate) passfile: PathBuf,
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) install: PgInstall,
}

impl Node {
    /// `primary`, `replica1`, `replica2`, ...
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the node was set up as.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The TCP port (on 127.0.0.1) and Unix-socket port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory of the Unix socket (short, under /tmp).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// PGDATA.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log (`pg_ctl -l`); the server writes here from its first line.
    pub fn log_path(&self) -> PathBuf {
        self.node_dir.join("server.log")
    }

    /// The installation the node runs.
    pub fn install(&self) -> &PgInstall {
        &self.install
    }

    /// The password file every DSN names (`passfile=`), readable by the caller.
    pub fn passfile(&self) -> &Path {
        &self.passfile
    }

    /// libpq conninfo for database `postgres` over the Unix socket, as user `postgres`.
    pub fn dsn(&self) -> String {
        self.dsn_for("postgres")
    }

    /// libpq conninfo for `dbname` over the Unix socket, as user `postgres`.
    pub fn dsn_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={} passfile={}",
            self.socket_dir.display(),
            self.port,
            quote_conninfo(dbname),
            self.passfile.display()
        )
    }

    /// libpq conninfo over TCP to 127.0.0.1 with host name `localhost` (which the server
    /// certificate names). When the lab has TLS it includes `sslrootcert=` with the lab CA, so
    /// appending `sslmode=verify-full` verifies the server.
    pub fn tcp_dsn(&self) -> String {
        let mut dsn = format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres passfile={}",
            self.port,
            self.passfile.display()
        );
        if let Some(ca_cert) = &self.ca_cert {
            dsn.push_str(&format!(" sslrootcert={}", ca_cert.display()));
        }
        dsn
    }

    /// Runs `sql` (any number of statements and psql meta-commands) in database `postgres` and
    /// returns the unaligned, tuples-only output, trimmed. Stops at the first error.
    pub fn psql(&self, sql: &str) -> Result<String, LabError> {
        self.psql_db("postgres", sql)
    }

    /// Like [`Node::psql`] in database `dbname`.
    pub fn psql_db(&self, dbname: &str, sql: &str) -> Result<String, LabError> {
        let mut command = self.psql_command(dbname);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| LabError::Command {
                command: process::describe(&command),
                status: format!("could not start: {error}"),
                output: String::new(),
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = sql.to_string();
        // A separate writer, so a large script cannot deadlock against a full stdout pipe.
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|error| LabError::io("wait for", "psql", error))?;
        // A failed write means psql exited early; its stderr (below) says why.
        let _ = writer.join();
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        Err(LabError::Sql {
            node: self.name.clone(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }

    /// `psql` for `dbname` with the harness's flags: no psqlrc, unaligned, tuples only, quiet,
    /// stop on the first error.
    pub(crate) fn psql_command(&self, dbname: &str) -> std::process::Command {
        let mut command = process::client_command(&self.install.bindir, "psql");
        command
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.dsn_for(dbname));
        command
    }

    /// Opens a `psql` session in `dbname` that stays connected, runs `sql` in it (for example
    /// `BEGIN; LOCK TABLE t;`) and returns once `sql` has completed. The session ends, with
    /// everything it holds, when the returned value is dropped.
    pub fn background_session(
        &self,
        dbname: &str,
        sql: &str,
    ) -> Result<BackgroundSession, LabError> {
        let mut session = BackgroundSession::open(self, dbname)?;
        if !sql.trim().is_empty() {
            session.execute(sql)?;
        }
        Ok(session)
    }

    /// Whether the postmaster of this node is alive.
    pub fn is_running(&self) -> bool {
        self.postmaster_pid().is_some_and(process::is_alive)
    }

    fn postmaster_pid(&self) -> Option<libc::pid_t> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Starts the server and waits until it accepts connections (a replica: read-only ones).
    pub fn start(&self) -> Result<(), LabError> {
        let result = process::run(
            process::server_command(&self.install.bindir, "pg_ctl")
                .args(["start", "-w", "-t", PG_CTL_TIMEOUT_SECONDS, "-D"])
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path()),
        );
        result.map(drop).map_err(|error| LabError::Start {
            node: self.name.clone(),
            reason: error.to_string(),
            log: self.log_path(),
            log_tail: process::tail(&self.log_path(), LOG_TAIL_LINES),
        })
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`) and waits for it; a stopped node is fine.
    pub fn stop(&self) -> Result<(), LabError> {
        self.stop_with(StopMode::Fast)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), like a crash: the next start runs
    /// crash recovery. A stopped node is fine.
    pub fn kill(&self) -> Result<(), LabError> {
        self.stop_with(StopMode::Immediate)
    }

    /// Stops (fast) and starts the server, e.g. after a setting that needs a restart.
    pub fn restart(&self) -> Result<(), LabError> {
        self.stop()?;
        self.start()
    }

    /// Stops the server in the given mode and waits until the postmaster has exited.
    pub fn stop_with(&self, mode: StopMode) -> Result<(), LabError> {
        if !self.is_running() {
            return Ok(());
        }
        let postmaster = self.postmaster_pid();
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        process::run(
            process::server_command(&self.install.bindir, "pg_ctl")
                .args(["stop", "-w", "-t", PG_CTL_TIMEOUT_SECONDS, "-m", mode, "-D"])
                .arg(self.data_dir()),
        )?;
        // pg_ctl returns once the pid file is gone, a moment before the process is.
        match postmaster {
            Some(pid) => wait_until(
                Duration::from_secs(10),
                &format!("the postmaster of {} (pid {pid}) to exit", self.name),
                || (!process::is_alive(pid)).then_some(()),
            ),
            None => Ok(()),
        }
    }

    /// Sets each `(name, value)` with `ALTER SYSTEM`, reloads, and waits until new sessions see
    /// the reloaded configuration. Settings that need a restart take effect after
    /// [`Node::restart`]; that choice is the caller's.
    pub fn set_settings(&self, settings: &[(&str, &str)]) -> Result<(), LabError> {
        let mut sql = String::new();
        for (name, value) in settings {
            sql.push_str(&format!(
                "ALTER SYSTEM SET {} = {};\n",
                quote_identifier(name),
                quote_literal(value)
            ));
        }
        sql.push_str("SELECT pg_conf_load_time();\nSELECT pg_reload_conf();\n");
        let output = self.psql(&sql)?;
        let loaded_before = output.lines().next().unwrap_or_default().to_string();
        // The postmaster reloads asynchronously; new backends inherit its load time.
        let check = format!(
            "SELECT pg_conf_load_time() > {}::timestamptz",
            quote_literal(&loaded_before)
        );
        wait_until(
            Duration::from_secs(10),
            &format!("{} to reload its configuration", self.name),
            || (self.psql(&check).ok()? == "t").then_some(()),
        )
    }

    /// The whole server log so far (lossy UTF-8; empty if it does not exist yet).
    pub fn log_contents(&self) -> String {
        std::fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

/// Quotes a conninfo value when it needs it (spaces, quotes, backslashes, empty).
fn quote_conninfo(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\']) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::{quote_conninfo, quote_identifier, quote_literal};

    #[test]
    fn quoting() {
        assert_eq!(quote_conninfo("postgres"), "postgres");
        assert_eq!(quote_conninfo("my db"), "'my db'");
        assert_eq!(quote_conninfo("it's"), r"'it\'s'");
        assert_eq!(quote_conninfo(""), "''");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_identifier("work_mem"), "\"work_mem\"");
    }
}
