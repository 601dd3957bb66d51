//! The `pgdbre` binary: argument parsing and dispatch only; every command lives in `commands/`.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away (`pgdbre ... | head`)
    // instead of panicking on a broken pipe.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = commands::Cli::parse();
    commands::init_logging(cli.verbose);
    commands::run(cli)
}
