//! A server started on a data directory the lab did not create — a restored backup — so backup
//! and drill tests can check what a restore produced. It runs as the `postgres` OS user on a
//! free port with its own socket directory, ignores the copied config's port, sockets and WAL
//! archiving (command-line settings win over the config files), and is stopped (immediate) and
//! its socket/log directory removed when dropped. The data directory itself is the caller's.

use crate::error::LabError;
use crate::install::PgInstall;
use crate::node::{Node, Role};
use crate::process;
use crate::wait_until;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `pg_ctl` may take to start the server, recovery included.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How [`RestoredServer::start_with`] starts the server.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The source cluster's password file, for [`Node::dsn`] and `psql`; `None` when the caller
    /// connects another way (a DR drill authenticates through its own `hba_file`).
    pub passfile: Option<PathBuf>,
    /// Extra `-c name=value` settings; like the lab's own, they win over the copied config files.
    pub settings: Vec<(String, String)>,
    /// How long to wait until the server accepts connections (a hot standby's read-only ones
    /// count), recovery to consistency included.
    pub timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> StartOptions {
        StartOptions {
            passfile: None,
            settings: Vec::new(),
            timeout: START_TIMEOUT,
        }
    }
}

/// `value` quoted for the shell `pg_ctl` runs the server's command line through.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// The uid and gid servers run as (the `postgres` OS user when we are root, else ourselves):
/// the owner a restored data directory must have.
pub fn server_owner() -> Result<(u32, u32), LabError> {
    if !process::is_root() {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        return Ok(unsafe { (libc::getuid(), libc::getgid()) });
    }
    let probe = process::make_temp_dir(Path::new("/tmp"), "pgdbre-owner-")?;
    let owned = process::chown_to_server(&probe).and_then(|()| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&probe)
            .map(|metadata| (metadata.uid(), metadata.gid()))
            .map_err(|error| LabError::io("stat", &probe, error))
    });
    let _ = std::fs::remove_dir(&probe);
    owned
}

/// A running server on a restored data directory.
#[derive(Debug)]
pub struct RestoredServer {
    node: Node,
    dir: PathBuf,
}

impl RestoredServer {
    /// Starts `install`'s server on `data_dir` (owned by [`server_owner`], mode 0700) and waits
    /// until it accepts connections; `passfile` is the source cluster's password file (a
    /// restored cluster keeps its roles and passwords).
    pub fn start(
        install: &PgInstall,
        data_dir: &Path,
        passfile: &Path,
    ) -> Result<RestoredServer, LabError> {
        let options = StartOptions {
            passfile: Some(passfile.to_path_buf()),
            ..StartOptions::default()
        };
        RestoredServer::start_with(install, data_dir, &options)
    }

    /// Like [`RestoredServer::start`], with extra settings, another start timeout, and no
    /// password file if the caller has none.
    pub fn start_with(
        install: &PgInstall,
        data_dir: &Path,
        start: &StartOptions,
    ) -> Result<RestoredServer, LabError> {
        let dir = process::make_temp_dir(Path::new("/tmp"), "pgdbre-restored-")?;
        process::chown_to_server(&dir)?;
        let node = Node {
            name: "restored".to_string(),
            role: Role::Primary,
            port: process::free_port()?,
            node_dir: dir.clone(),
            data_dir: data_dir.to_path_buf(),
            socket_dir: dir.clone(),
            passfile: start.passfile.clone().unwrap_or_default(),
            ca_cert: None,
            install: install.clone(),
        };
        let server = RestoredServer { node, dir };
        let mut options = format!(
            "-p {} -c unix_socket_directories={} -c listen_addresses='' -c archive_mode=off -c ssl=off",
            server.node.port,
            server.dir.display()
        );
        for (name, value) in &start.settings {
            options.push_str(&format!(" -c {name}={}", shell_quote(value)));
        }
        let timeout = start.timeout.as_secs().max(1).to_string();
        process::run(
            process::server_command(&install.bindir, "pg_ctl")
                .args(["start", "-w", "-t", &timeout, "-D"])
                .arg(data_dir)
                .arg("-l")
                .arg(server.node.log_path())
                .arg("-o")
                .arg(options),
        )
        .map_err(|error| LabError::Start {
            node: "restored".to_string(),
            reason: error.to_string(),
            log: server.node.log_path(),
            log_tail: process::tail(&server.node.log_path(), 30),
        })?;
        Ok(server)
    }

    /// The server, for `dsn()`, `psql()`, `stop()` and the log.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Waits until recovery has ended and the server accepts writes.
    pub fn wait_for_promotion(&self, timeout: Duration) -> Result<(), LabError> {
        wait_until(timeout, "the restored server to finish recovery", || {
            (self.node.psql("SELECT pg_is_in_recovery()").ok()? == "f").then_some(())
        })
    }
}

impl Drop for RestoredServer {
    fn drop(&mut self) {
        if let Err(error) = self.node.kill() {
            eprintln!("stopping the restored server: {error}");
        }
        if std::env::var_os("PGDBRE_LAB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
