//! `pgdbre check`: run the catalog and render the results.

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CheckArgs {}

pub fn run(_args: CheckArgs) -> ExitCode {
    ExitCode::SUCCESS
}
