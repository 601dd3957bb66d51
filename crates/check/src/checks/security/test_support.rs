//! Helpers the security checks' tests share: running a server-side program the way the lab does.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// `program` from `bindir` as a command that runs as the `postgres` OS user when this process is
/// root (PostgreSQL's server tools refuse to run as root, and the data directory is theirs).
pub fn server_command(bindir: &Path, program: &str) -> Command {
    let is_root = std::fs::metadata("/proc/self").map(|meta| meta.uid() == 0).unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bindir.join(program));
        command
    } else {
        Command::new(bindir.join(program))
    }
}
