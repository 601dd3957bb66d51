//! `pgdbre verify`: check every manifest, block and WAL file of a repository; exit 1 naming each
//! damaged object and the backups it breaks. The checking is `pgdbre_backup::verify`.

use super::backup::{exit_code, runtime, RepoArgs, FAILURE, USAGE_ERROR};
use super::info::Output;
use clap::Args;
use pgdbre_backup::{OpenMode, Repository};
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 every object verified, 1 damage found (or the repository \
could not be read), 3 bad input."
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Objects read in parallel.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(args: VerifyArgs) -> ExitCode {
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => {
            eprintln!("pgdbre verify: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pgdbre verify: cannot start the async runtime: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let result = runtime.block_on(async {
        let repository = Repository::open(&args.repo.repo, key, OpenMode::Existing).await?;
        pgdbre_backup::verify(&repository, args.jobs.max(1)).await
    });
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("pgdbre verify: {error}");
            return exit_code(&error);
        }
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => {
            for problem in &report.problems {
                println!(
                    "DAMAGED {}: {}; backups affected: {}",
                    problem.object,
                    problem.what,
                    problem.backups.join(", ")
                );
            }
            println!(
                "{}: {} backups, {} blocks, {} WAL files checked, {} problems",
                if report.is_ok() { "OK" } else { "FAILED" },
                report.backups.len(),
                report.blocks_checked,
                report.wal_checked,
                report.problems.len()
            );
        }
    }
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    }
}
