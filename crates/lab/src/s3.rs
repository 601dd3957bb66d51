//! A real S3-compatible server (`s3s-fs`) for the backup repository's tests and `pgdbre lab`.
//!
//! `s3s-fs` speaks the S3 protocol over plain HTTP, checks SigV4 signatures against one access
//! key pair and stores each bucket as a directory under its root, each object as a file, so a
//! test can corrupt an object on disk through [`S3Server::root_dir`]. It listens on 127.0.0.1 on
//! a free port with freshly generated credentials, in its own temp directory; it is killed and
//! the directory removed on drop, also while unwinding from a panic. It is installed by
//! `./scripts/setup.sh` (`cargo install s3s-fs@0.14.1 --features binary`).

use crate::error::LabError;
use crate::process;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program, looked up in `PATH`, then in cargo's bin directory.
const PROGRAM: &str = "s3s-fs";

/// How long the server may take to accept connections.
const DEADLINE: Duration = Duration::from_secs(15);

/// How often to try another port when the free one was taken before the server bound it.
const PORT_ATTEMPTS: usize = 3;

/// The region the environment from [`S3Server::env`] names (s3s-fs accepts any).
const REGION: &str = "us-east-1";

/// A running `s3s-fs` with one bucket; killed when dropped.
pub struct S3Server {
    dir: PathBuf,
    port: u16,
    access_key: String,
    secret_key: String,
    bucket: String,
    child: Child,
}

impl S3Server {
    /// Starts `s3s-fs` on a free port with generated credentials and a bucket named `pgdbre`,
    /// and waits until it accepts connections.
    pub fn start() -> Result<S3Server, LabError> {
        let program = find_program()?;
        let dir = process::make_temp_dir(&std::env::temp_dir(), "pgdbre-s3-")?;
        let access_key = format!("AK{}", process::random_hex(8)?.to_uppercase());
        let secret_key = process::random_hex(20)?;
        let bucket = "pgdbre".to_string();
        let root = dir.join("data");
        let bucket_dir = root.join(&bucket);
        std::fs::create_dir_all(&bucket_dir)
            .map_err(|error| LabError::io("create directory", &bucket_dir, error))?;

        let log_path = dir.join("s3s-fs.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = process::free_port()?;
            let mut child = match spawn(&program, &root, port, &access_key, &secret_key, &log_path)
            {
                Ok(child) => child,
                Err(error) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(error);
                }
            };
            match wait_ready(&mut child, port, &log_path) {
                Ok(()) => {
                    let server = S3Server {
                        dir,
                        port,
                        access_key,
                        secret_key,
                        bucket,
                        child,
                    };
                    tracing::debug!(endpoint = %server.endpoint(), "s3s-fs is up");
                    return Ok(server);
                }
                // Most likely another process took the port first: try a new one.
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = Some(error);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error.expect("at least one attempt was made"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The access key id the server accepts.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key the server accepts.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://BUCKET/PREFIX`, the repository location for pgdbre (`prefix` may be empty).
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{prefix}", self.bucket)
        }
    }

    /// The environment that points pgdbre at this server: `PGDBRE_S3_ENDPOINT`,
    /// `PGDBRE_S3_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("PGDBRE_S3_ENDPOINT", self.endpoint()),
            ("PGDBRE_S3_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The server's data directory: bucket `B`'s object `K` is the file `root_dir()/B/K`.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("s3s-fs.log")
    }
}

/// Starts `s3s-fs` on 127.0.0.1:`port`, its output appended to `log_path`.
fn spawn(
    program: &Path,
    root: &Path,
    port: u16,
    access_key: &str,
    secret_key: &str,
    log_path: &Path,
) -> Result<Child, LabError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|error| LabError::io("open", log_path, error))?;
    let log_err = log
        .try_clone()
        .map_err(|error| LabError::io("open", log_path, error))?;
    let mut command = Command::new(program);
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", access_key, "--secret-key", secret_key])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    command.spawn().map_err(|error| LabError::Command {
        // Not process::describe: the command line holds the secret key.
        command: format!("{} --host 127.0.0.1 --port {port} …", program.display()),
        status: format!("could not start: {error}"),
        output: String::new(),
    })
}

/// Polls until the server accepts TCP connections, failing early if it exits.
fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> Result<(), LabError> {
    let start_error = |reason: String| LabError::Start {
        node: PROGRAM.into(),
        reason,
        log: log_path.to_path_buf(),
        log_tail: process::tail(log_path, 20),
    };
    let started = Instant::now();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut interval = Duration::from_millis(5);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(start_error(format!("exited with {status}")));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if started.elapsed() >= DEADLINE {
            return Err(start_error(format!(
                "not accepting connections on {address} after {DEADLINE:?}"
            )));
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // The data belongs to the test and is removed with the directory, so no graceful
        // shutdown is needed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `s3s-fs` from `PATH`, `$CARGO_HOME/bin` or `~/.cargo/bin`.
fn find_program() -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_bins = [
        std::env::var_os("CARGO_HOME").map(|home| PathBuf::from(home).join("bin")),
        std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin")),
    ];
    std::env::split_paths(&path)
        .chain(cargo_bins.into_iter().flatten())
        .map(|dir| dir.join(PROGRAM))
        .find(|program| program.is_file())
        .ok_or_else(|| LabError::Command {
            command: PROGRAM.into(),
            status: "not found in PATH or ~/.cargo/bin".into(),
            output: "run ./scripts/setup.sh (it runs `cargo install s3s-fs@0.14.1 --features \
                     binary`)"
                .into(),
        })
}
