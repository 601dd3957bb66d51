//! Running PostgreSQL's programs and preparing files for them.
//!
//! Server-side programs must not run as root, so when we are root they run as the `postgres` OS
//! user through `runuser`, and the files they touch are chowned to it. Clients run as the caller.
//! Every child gets an environment without `PG*` variables, so a developer's `PGHOST` or
//! `PGSSLMODE` can never point the harness at the wrong server.

use crate::error::LabError;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The OS user that runs the servers when we are root.
const SERVER_USER: &str = "postgres";

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A command for a program in `bindir` that runs as the server user.
pub(crate) fn server_command(bindir: &Path, program: &str) -> Command {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", SERVER_USER, "--"])
            .arg(bindir.join(program));
        command
    } else {
        Command::new(bindir.join(program))
    };
    clean_environment(&mut command);
    // The server user may not be allowed into the caller's working directory.
    command.current_dir("/");
    command
}

/// A command for a client program in `bindir` that runs as the caller.
pub(crate) fn client_command(bindir: &Path, program: &str) -> Command {
    let mut command = Command::new(bindir.join(program));
    clean_environment(&mut command);
    command
}

fn clean_environment(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.as_bytes().starts_with(b"PG") {
            command.env_remove(name);
        }
    }
}

/// Renders a command line for error messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `command` to completion with no stdin and returns its stdout; fails on a non-zero exit.
pub(crate) fn run(command: &mut Command) -> Result<String, LabError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| LabError::Command {
            command: describe(command),
            status: format!("could not start: {error}"),
            output: String::new(),
        })?;
    check_output(command, output)
}

fn check_output(command: &Command, output: Output) -> Result<String, LabError> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    Err(LabError::Command {
        command: describe(command),
        status: output.status.to_string(),
        output: text.to_string(),
    })
}

fn server_user_ids() -> Option<(libc::uid_t, libc::gid_t)> {
    static IDS: OnceLock<Option<(libc::uid_t, libc::gid_t)>> = OnceLock::new();
    *IDS.get_or_init(|| {
        let name = CString::new(SERVER_USER).expect("static user name has no NUL");
        // SAFETY: getpwnam gets a valid C string; the returned record is read before any other
        // getpw* call can overwrite it (only this once-initialised closure calls it).
        unsafe {
            let record = libc::getpwnam(name.as_ptr());
            if record.is_null() {
                None
            } else {
                Some(((*record).pw_uid, (*record).pw_gid))
            }
        }
    })
}

/// Gives `path` to the server user (when we are root; otherwise the files are already ours).
pub(crate) fn chown_to_server(path: &Path) -> Result<(), LabError> {
    if !is_root() {
        return Ok(());
    }
    let (uid, gid) = server_user_ids().ok_or_else(|| LabError::InstallNotFound {
        detail: format!(
            "running as root, but there is no `{SERVER_USER}` OS user to run the servers as; \
             create it (installing the postgresql package does)"
        ),
    })?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|error| LabError::io("change the owner of", path, error))
}

/// Creates a directory (and parents) with `mode`, optionally owned by the server user.
pub(crate) fn create_dir(path: &Path, mode: u32, server_owned: bool) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(|error| LabError::io("create directory", path, error))?;
    set_mode(path, mode)?;
    if server_owned {
        chown_to_server(path)?;
    }
    Ok(())
}

/// Writes a whole file with `mode`, optionally owned by the server user.
pub(crate) fn write_file(
    path: &Path,
    contents: &str,
    mode: u32,
    server_owned: bool,
) -> Result<(), LabError> {
    std::fs::write(path, contents).map_err(|error| LabError::io("write", path, error))?;
    set_mode(path, mode)?;
    if server_owned {
        chown_to_server(path)?;
    }
    Ok(())
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|error| LabError::io("set permissions of", path, error))
}

/// Creates a fresh, uniquely named directory `<parent>/<prefix>XXXXXX` with mode 0755.
pub(crate) fn make_temp_dir(parent: &Path, prefix: &str) -> Result<PathBuf, LabError> {
    let template = parent.join(format!("{prefix}XXXXXX"));
    let mut bytes = template.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: `bytes` is a NUL-terminated, writable buffer that mkdtemp fills in place.
    let result = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if result.is_null() {
        return Err(LabError::io(
            "create a temporary directory like",
            template,
            std::io::Error::last_os_error(),
        ));
    }
    bytes.pop();
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    // Servers run as another user and must be able to enter it.
    set_mode(&path, 0o755)?;
    Ok(path)
}

/// `bytes` random bytes from the kernel, hex-encoded.
pub(crate) fn random_hex(bytes: usize) -> Result<String, LabError> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut buffer))
        .map_err(|error| LabError::io("read", "/dev/urandom", error))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A TCP port on 127.0.0.1 that was free a moment ago; callers retry if a server takes it first.
pub(crate) fn free_port() -> Result<u16, LabError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| LabError::io("bind a free port on", "127.0.0.1:0", error))?;
    let port = listener
        .local_addr()
        .map_err(|error| LabError::io("read the address of", "127.0.0.1:0", error))?
        .port();
    Ok(port)
}

/// Whether process `pid` exists and is not a zombie (an exited child nobody reaped yet).
pub(crate) fn is_alive(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The last `lines` lines of a text file, or a note saying why it could not be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(could not read {}: {error})", path.display()),
    }
}
