//! A real PgBouncer in front of a lab node, for the tests of the `pgbouncer` collector.
//!
//! It listens on 127.0.0.1 on a free port and in its own Unix socket directory, sends every
//! database (`* =`) to the node's socket, and logs in as the lab's `postgres` user with the lab
//! password (SCRAM on both sides; the password reaches PgBouncer through its `auth_file`, kept in
//! its own mode-0700 directory). `postgres` is an admin user, so the admin console (database
//! `pgbouncer`) answers `SHOW POOLS`. Statistics are published every second (`stats_period`), not
//! every minute. Like the servers it runs as the `postgres` OS user when we are root; it stops
//! (SIGTERM, then waiting for the process to exit) and its directory is removed on drop.

use crate::error::LabError;
use crate::node::Node;
use crate::process;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `pgbouncer` package puts the program.
const KNOWN_BINDIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"];

/// How long PgBouncer may take to accept connections, or to exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(15);

/// A running PgBouncer; stopped when dropped.
pub struct Pgbouncer {
    dir: PathBuf,
    port: u16,
    passfile: PathBuf,
    child: Child,
}

impl Pgbouncer {
    /// Starts PgBouncer in front of `node` and waits until it accepts TCP connections.
    pub fn start(node: &Node) -> Result<Pgbouncer, LabError> {
        let bindir = find_bindir()?;
        let password = read_password(node.passfile())?;
        let dir = process::make_temp_dir(&std::env::temp_dir(), "pgdbre-bouncer-")?;
        process::create_dir(&dir, 0o700, true)?;
        let port = process::free_port()?;
        let auth_file = dir.join("userlist.txt");
        process::write_file(
            &auth_file,
            &format!("\"postgres\" \"{password}\"\n"),
            0o600,
            true,
        )?;
        let ini = format!(
            "[databases]\n\
             * = host={socket_dir} port={node_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir = {dir}\n\
             auth_type = scram-sha-256\n\
             auth_file = {auth_file}\n\
             admin_users = postgres\n\
             pool_mode = session\n\
             max_client_conn = 100\n\
             default_pool_size = 10\n\
             stats_period = 1\n\
             ignore_startup_parameters = extra_float_digits\n\
             pidfile = {dir}/pgbouncer.pid\n\
             logfile = {dir}/pgbouncer.log\n",
            socket_dir = node.socket_dir().display(),
            node_port = node.port(),
            dir = dir.display(),
            auth_file = auth_file.display(),
        );
        let ini_path = dir.join("pgbouncer.ini");
        process::write_file(&ini_path, &ini, 0o600, true)?;

        let mut command = process::server_command(&bindir, "pgbouncer");
        command
            .arg(&ini_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().map_err(|error| LabError::Command {
            command: process::describe(&command),
            status: format!("could not start: {error}"),
            output: String::new(),
        })?;
        let mut bouncer = Pgbouncer {
            dir,
            port,
            passfile: node.passfile().to_path_buf(),
            child,
        };
        bouncer.wait_ready()?;
        Ok(bouncer)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PgBouncer's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("pgbouncer.log")
    }

    /// libpq conninfo for database `dbname` through PgBouncer, as user `postgres`.
    pub fn dsn_for(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname} sslmode=disable passfile={}",
            self.port,
            self.passfile.display()
        )
    }

    /// libpq conninfo for the admin console (database `pgbouncer`).
    pub fn admin_dsn(&self) -> String {
        self.dsn_for("pgbouncer")
    }

    fn wait_ready(&mut self) -> Result<(), LabError> {
        let started = Instant::now();
        let mut interval = Duration::from_millis(5);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("exited with {status}")));
            }
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() >= DEADLINE {
                return Err(self.start_error(format!(
                    "not accepting connections on 127.0.0.1:{} after {DEADLINE:?}",
                    self.port
                )));
            }
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_millis(100));
        }
    }

    fn start_error(&self, reason: String) -> LabError {
        LabError::Start {
            node: "pgbouncer".into(),
            reason,
            log: self.log_path(),
            log_tail: process::tail(&self.log_path(), 20),
        }
    }

    /// The PgBouncer process itself (the child may be `runuser` around it).
    fn pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let pid = self.pid();
        for pid in pid.into_iter().chain([self.child.id() as libc::pid_t]) {
            // SAFETY: kill has no memory-safety preconditions; a stale pid at worst gets ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + DEADLINE;
        while pid.is_some_and(process::is_alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(pid) = pid.filter(|pid| process::is_alive(*pid)) {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `pgbouncer`: `PATH` first, then where distributions install it.
fn find_bindir() -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(KNOWN_BINDIRS.iter().map(PathBuf::from))
        .find(|dir| dir.join("pgbouncer").is_file())
        .ok_or_else(|| LabError::Command {
            command: "pgbouncer".into(),
            status: "not found in PATH or /usr/sbin".into(),
            output: "install it: apt-get install pgbouncer (scripts/setup.sh does)".into(),
        })
}

/// The lab password of `postgres` from a password file (`host:port:db:user:password` lines).
fn read_password(passfile: &Path) -> Result<String, LabError> {
    let text =
        std::fs::read_to_string(passfile).map_err(|error| LabError::io("read", passfile, error))?;
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            (fields.len() == 5 && matches!(fields[3], "postgres" | "*"))
                .then(|| fields[4].to_owned())
        })
        .next()
        .ok_or_else(|| LabError::Command {
            command: format!("read {}", passfile.display()),
            status: "no entry for user postgres".into(),
            output: String::new(),
        })
}
