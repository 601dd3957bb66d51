//! `pgdbre lab`: start, inspect and stop a local cluster (owned by the lab work).

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a primary and N streaming replicas.
    Up,
}

pub fn run(_command: LabCommand) -> ExitCode {
    ExitCode::SUCCESS
}
