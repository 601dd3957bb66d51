//! A `psql` session that stays open in the background while a test runs, to hold locks, sit
//! idle in a transaction, or block behind another session.
//!
//! The session runs in its own process group, so dropping it ends psql and anything psql started
//! with one signal, and the server sees the client vanish (releasing its locks and transaction).

use crate::error::LabError;
use crate::node::Node;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`BackgroundSession::execute`] waits for its SQL to complete.
const EXECUTE_TIMEOUT: Duration = Duration::from_secs(60);

/// An open `psql` session; see [`Node::background_session`]. Dropping it kills the session.
#[derive(Debug)]
pub struct BackgroundSession {
    node: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    backend_pid: i32,
    markers_sent: u64,
}

impl BackgroundSession {
    pub(crate) fn open(node: &Node, dbname: &str) -> Result<BackgroundSession, LabError> {
        let mut command = node.psql_command(dbname);
        command
            .env("PGAPPNAME", "pgdbre-lab-background")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|error| LabError::Session {
            node: node.name().to_string(),
            reason: format!("could not start psql: {error}"),
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stderr_pipe.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                stderr_sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let mut session = BackgroundSession {
            node: node.name().to_string(),
            child,
            stdin,
            lines,
            stderr,
            backend_pid: 0,
            markers_sent: 0,
        };
        let pid = session.execute("SELECT pg_backend_pid();")?;
        session.backend_pid = pid.trim().parse().map_err(|_| LabError::Session {
            node: session.node.clone(),
            reason: format!("expected a backend pid from psql, got {pid:?}"),
        })?;
        Ok(session)
    }

    /// The server process id of this session (`pg_backend_pid()`), to find it in
    /// `pg_stat_activity` or `pg_locks`.
    pub fn pid(&self) -> i32 {
        self.backend_pid
    }

    /// Sends complete statements (each ending in `;`) and waits until they have completed;
    /// returns what they printed (unaligned, tuples only), trimmed. Fails if psql reports an
    /// error, since the session stops at the first one.
    pub fn execute(&mut self, sql: &str) -> Result<String, LabError> {
        self.markers_sent += 1;
        // psql runs its input in order, so the echo appears once the statements are done.
        let marker = format!("__pgdbre_lab_done_{}__", self.markers_sent);
        self.send(&format!("{sql}\n\\echo {marker}"))?;
        let deadline = Instant::now() + EXECUTE_TIMEOUT;
        let mut output = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == marker => return Ok(output.join("\n").trim().to_string()),
                Ok(line) => output.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!(
                        "statements did not complete within {EXECUTE_TIMEOUT:?} (blocked? use \
                         send() for statements that are meant to wait)"
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure("psql exited"));
                }
            }
        }
    }

    /// Sends complete statements without waiting for them, e.g. one that will block on a lock;
    /// poll `pg_stat_activity` for [`BackgroundSession::pid`] to see it waiting.
    pub fn send(&mut self, sql: &str) -> Result<(), LabError> {
        let written = self
            .stdin
            .write_all(format!("{sql}\n").as_bytes())
            .and_then(|()| self.stdin.flush());
        written.map_err(|error| self.failure(&format!("could not write to psql: {error}")))
    }

    fn failure(&self, reason: &str) -> LabError {
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        LabError::Session {
            node: self.node.clone(),
            reason: format!("{reason}; psql said: {}", stderr.trim()),
        }
    }
}

impl Drop for BackgroundSession {
    fn drop(&mut self) {
        // The group id is psql's pid (process_group(0)); the whole group goes.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: signalling a process group we created; no memory is involved.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
