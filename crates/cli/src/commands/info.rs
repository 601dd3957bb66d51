//! `pgdbre info`: the backups in a repository with sizes, LSN ranges and ratios, as text or
//! JSON. The numbers come from `pgdbre_backup::info`.

use super::backup::{exit_code, mib, runtime, RepoArgs, USAGE_ERROR};
use clap::{Args, ValueEnum};
use pgdbre_backup::{format_utc, BackupType, OpenMode, Repository, RepositoryInfo};
use std::process::ExitCode;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(args: InfoArgs) -> ExitCode {
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => return usage_error(&error.to_string()),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&format!("cannot start the async runtime: {error}")),
    };
    let result = runtime.block_on(async {
        let repository = Repository::open(&args.repo.repo, key, OpenMode::Existing).await?;
        pgdbre_backup::info(&repository).await
    });
    match result {
        Ok(info) => {
            match args.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&info).unwrap_or_default()
                ),
                Output::Text => print!("{}", text(&info)),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pgdbre info: {error}");
            exit_code(&error)
        }
    }
}

fn text(info: &RepositoryInfo) -> String {
    let mut out = format!(
        "repository {} (format {}, system identifier {}, {}{})\n",
        info.location,
        info.format_version,
        info.system_identifier,
        info.compression,
        if info.encrypted { ", encrypted" } else { "" }
    );
    if info.backups.is_empty() {
        out.push_str("no backups\n");
    }
    for backup in &info.backups {
        let mut kind = match backup.backup_type {
            BackupType::Full => "full".to_string(),
            BackupType::Incremental => {
                format!("incr of {}", backup.parent.as_deref().unwrap_or("?"))
            }
        };
        if backup.from_standby {
            kind.push_str(" (from standby)");
        }
        out.push_str(&format!(
            "  {}  {kind}  {}  PG {}  LSN {} - {} (timeline {})  {} MiB, {} files, read {} MiB, stored +{} MiB{}\n",
            backup.label,
            format_utc(backup.start_unix_ns),
            backup.pg_version,
            backup.start_lsn,
            backup.stop_lsn,
            backup.timeline.0,
            mib(backup.bytes),
            backup.files,
            mib(backup.bytes_read),
            mib(backup.new_stored_bytes),
            if backup.bad_pages > 0 {
                format!(", {} bad pages", backup.bad_pages)
            } else {
                String::new()
            }
        ));
    }
    out.push_str(&format!(
        "total: {} MiB in backups, {} MiB distinct, {} MiB stored blocks, {} MiB WAL, {} MiB repository; dedup {:.2}x, compression {:.2}x\n",
        mib(info.logical_bytes),
        mib(info.unique_bytes),
        mib(info.stored_block_bytes),
        mib(info.stored_wal_bytes),
        mib(info.repository_bytes),
        info.dedup_ratio,
        info.compression_ratio
    ));
    if let Some((first, last)) = &info.wal_range {
        out.push_str(&format!("WAL archive: {first} - {last}\n"));
    }
    out
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("pgdbre info: {message}");
    ExitCode::from(USAGE_ERROR)
}
