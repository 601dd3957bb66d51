//! Subcommands. Each file renders one command; domain logic lives in the capability crates.

pub mod backup;
pub mod check;
pub mod drill;
pub mod expire;
pub mod gate;
pub mod info;
pub mod lab;
pub mod restore;
pub mod serve;
pub mod slo;
pub mod verify;
pub mod wal;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// pgdbre: the PostgreSQL reliability toolkit.
#[derive(Debug, Parser)]
#[command(name = "pgdbre", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the health-check catalog against one or more servers.
    Check(check::CheckArgs),
    /// Back up PGDATA into a deduplicating, compressed, checksummed repository.
    Backup(backup::BackupArgs),
    /// Restore a backup into a data directory and set up its recovery.
    Restore(restore::RestoreArgs),
    /// List the backups in a repository with sizes, LSN ranges and ratios.
    Info(info::InfoArgs),
    /// Check every manifest, block and WAL file of a repository.
    Verify(verify::VerifyArgs),
    /// Archive and restore WAL: `wal push` for archive_command, `wal fetch` for restore_command.
    #[command(subcommand)]
    Wal(wal::WalCommand),
    /// Apply backup retention and delete what no retained or running backup needs.
    Expire(expire::ExpireArgs),
    /// DR drill: restore into a scratch server, run smoke SQL, measure RTO/RPO, record evidence.
    Drill(drill::DrillArgs),
    /// Local PostgreSQL clusters (primary + streaming replicas) from the installed binaries.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Serve Prometheus metrics (and more) for one or more servers.
    Serve(serve::ServeArgs),
    /// Deploy/migration gate: exit 1 when an SLO burn policy says freeze.
    Gate(gate::GateArgs),
    /// SLOs as code: validate a spec, print budgets, generate Prometheus rules.
    #[command(subcommand)]
    Slo(slo::SloCommand),
}

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the verbosity flag.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the parsed command and maps its outcome to a process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Drill(args) => drill::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Info(args) => info::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Wal(command) => wal::run(command),
        Command::Expire(args) => expire::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Lab(command) => lab::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Slo(command) => slo::run(command),
    }
}
