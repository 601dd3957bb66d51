//! The `pgdbre` binary: argument parsing and dispatch only; every command lives in `commands/`.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    commands::init_logging(cli.verbose);
    commands::run(cli)
}
