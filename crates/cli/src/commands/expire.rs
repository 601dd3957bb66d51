//! `pgdbre expire`: apply the retention policy and collect garbage. The decisions and the
//! safety rule for running backups are in `pgdbre_backup::expire`; this file parses and prints.

use super::backup::{exit_code, runtime, RepoArgs};
use clap::builder::TypedValueParser;
use clap::Args;
use pgdbre_backup::{expire, ExpireOptions, ExpireReport, OpenMode, Repository, Retention};
use std::process::ExitCode;
use std::time::Duration;

const USAGE_ERROR: u8 = 3;

/// Arguments of `pgdbre expire`.
#[derive(Debug, Args)]
#[command(
    after_help = "A backup set (a full backup and its incrementals) is expired only when \
every given rule allows it; the newest set is always kept. Then packs (the objects holding \
blocks) no remaining backup references are deleted (never while a backup is running, never younger than \
--pack-grace-minutes; a backup whose in-progress marker went 10 minutes without a refresh was \
killed, and its marker is removed), and WAL older than the oldest remaining backup's start \
(timeline history files are kept).\nExit status: 0 done, 1 failed, 3 bad input."
)]
pub struct ExpireArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Keep the newest N full backups with their incrementals.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub retain_full: Option<usize>,
    /// Keep what is needed to restore to any moment of the last D days.
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_days: Option<u64>,
    /// Unreferenced packs younger than this are kept.
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub pack_grace_minutes: u64,
    /// Print what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pgdbre expire`: 0 done, 1 failed, 3 bad input.
pub fn run(args: ExpireArgs) -> ExitCode {
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => {
            eprintln!("pgdbre expire: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let mut options = ExpireOptions::new(Retention {
        full: args.retain_full,
        days: args.retain_days,
    });
    options.dry_run = args.dry_run;
    options.pack_grace = Duration::from_secs(args.pack_grace_minutes.saturating_mul(60));
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pgdbre expire: cannot start the async runtime: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let result = runtime.block_on(async {
        let repository = Repository::open(&args.repo.repo, key, OpenMode::Existing).await?;
        expire(&repository, &options).await
    });
    match result {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report serialises")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", render(&report));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pgdbre expire: {error}");
            exit_code(&error)
        }
    }
}

fn render(report: &ExpireReport) -> String {
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = String::new();
    if report.expired.is_empty() {
        text.push_str("no backup expired\n");
    }
    for label in &report.expired {
        text.push_str(&format!(
            "expired backup {label}{}\n",
            if report.dry_run { " (dry run)" } else { "" }
        ));
    }
    text.push_str(&format!("retained {} backup(s)\n", report.retained.len()));
    for label in &report.stale_markers_removed {
        text.push_str(&format!(
            "{} stale marker of killed backup {label}\n",
            if report.dry_run {
                "would remove"
            } else {
                "removed"
            }
        ));
    }
    text.push_str(&format!(
        "{verb} {} unreferenced pack(s), {} bytes; kept {} unreferenced pack(s)\n",
        report.packs_deleted, report.pack_bytes_deleted, report.packs_kept
    ));
    if let Some(reason) = &report.packs_skipped_because {
        text.push_str(&format!("pack collection stopped: {reason}\n"));
    }
    text.push_str(&format!(
        "{verb} {} WAL file(s)\n",
        report.wal_deleted.len()
    ));
    text
}
