//! `pgdbre backup`: a full or incremental backup of PGDATA into the repository. The work is in
//! `pgdbre_backup::backup`; this file parses, draws the progress line and prints the summary.
//! Also holds the repository arguments every backup command shares.

use clap::{Args, ValueEnum};
use pgdbre_backup::{BackupError, BackupOptions, BackupType, Progress, RepoKey};
use pgdbre_pg::ConnConfig;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit code of a failed command.
pub const FAILURE: u8 = 1;
/// Exit code of bad input (arguments, key file, repository location).
pub const USAGE_ERROR: u8 = 3;

/// Where the repository is and how to open it.
#[derive(Debug, Args, Clone)]
pub struct RepoArgs {
    /// Repository: a directory, file:///path or s3://bucket/prefix (S3 settings from
    /// PGDBRE_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
    #[arg(long, env = "PGDBRE_REPO", value_name = "LOCATION")]
    pub repo: String,
    /// File holding the repository encryption key (at least 16 random bytes); without it the
    /// key comes from PGDBRE_REPO_KEY. A repository created with a key is encrypted
    /// (AES-256-GCM); the key is never logged.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

impl RepoArgs {
    /// The key from the file or the environment.
    pub fn key(&self) -> Result<Option<RepoKey>, BackupError> {
        RepoKey::load(self.encryption_key_file.as_deref())
    }
}

/// Full or incremental, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    /// Read and store every file.
    Full,
    /// Read only files changed since the last backup; store only changed chunks.
    Incr,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The connection comes from DSN, else PGHOST, PGPORT, PGUSER, ... as for psql; \
the role must be allowed to run pg_backup_start() (a superuser, or granted EXECUTE). Run on the \
database host: files are read from PGDATA.\nFrom a standby: point DSN at a hot standby and run on its \
host; the repository is the primary's (same system identifier). A standby cannot switch WAL \
segments, so the backup waits (up to 60 s) until the primary finishes the segment holding the \
backup's end: on a quiet primary set archive_timeout there, or run SELECT pg_switch_wal() on it. \
The backup holds everything the standby had replayed when it stopped.\nExit status: 0 done, 1 the \
backup failed, 3 bad input."
)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup type.
    #[arg(long = "type", value_enum, default_value_t = TypeArg::Full)]
    pub backup_type: TypeArg,
    /// Files read, compressed and stored in parallel.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Request an immediate checkpoint rather than waiting for a spread one.
    #[arg(long)]
    pub fast: bool,
    /// zstd compression level for new objects (default: the repository's, 3 for a new one).
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compress_level: Option<i32>,
    /// The data directory (default: the server's data_directory).
    #[arg(long, value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// Connection string or URI (libpq syntax).
    #[arg(value_name = "DSN")]
    pub dsn: Option<String>,
}

/// Exit code for a library error: bad input is 3, anything else 1.
pub fn exit_code(error: &BackupError) -> ExitCode {
    let usage = matches!(
        error,
        BackupError::BadKey(_)
            | BackupError::Storage(pgdbre_storage::StorageError::InvalidLocation { .. })
    );
    ExitCode::from(if usage { USAGE_ERROR } else { FAILURE })
}

/// A small multi-threaded runtime for one command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

pub fn run(args: BackupArgs) -> ExitCode {
    let connection = match ConnConfig::resolve(args.dsn.as_deref()) {
        Ok(connection) => connection,
        Err(error) => return usage_error(&error.to_string()),
    };
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => return usage_error(&error.to_string()),
    };
    let mut options = BackupOptions::new(&args.repo.repo);
    options.key = key;
    options.pgdata = args.pgdata;
    options.backup_type = match args.backup_type {
        TypeArg::Full => BackupType::Full,
        TypeArg::Incr => BackupType::Incremental,
    };
    options.jobs = args.jobs.max(1);
    options.fast = args.fast;
    options.compress_level = args.compress_level;
    let line = std::io::stderr().is_terminal().then(ProgressLine::new);
    if let Some(line) = &line {
        let line = line.clone();
        options.progress = Some(Arc::new(move |progress| line.draw(progress)));
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&format!("cannot start the async runtime: {error}")),
    };
    let result = runtime.block_on(pgdbre_backup::backup(&connection, options));
    if line.is_some() {
        eprintln!();
    }
    match result {
        Ok(summary) => {
            let manifest = &summary.manifest;
            let kind = match manifest.backup_type {
                BackupType::Full => "full",
                BackupType::Incremental => "incremental",
            };
            println!(
                "backup {} ({kind}{}) complete in {:.1} s: {} files, {} MiB; read {} MiB, stored +{} MiB; LSN {} - {}, timeline {}",
                manifest.label,
                if manifest.from_standby {
                    ", from a standby"
                } else {
                    ""
                },
                summary.elapsed.as_secs_f64(),
                manifest.totals.files,
                mib(manifest.totals.bytes),
                mib(manifest.totals.bytes_read),
                mib(manifest.totals.new_stored_bytes),
                manifest.start_lsn,
                manifest.stop_lsn,
                manifest.timeline.0
            );
            for bad in &manifest.bad_pages {
                eprintln!(
                    "pgdbre backup: WARNING: page checksum failure in {} block {}",
                    bad.path, bad.block
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pgdbre backup: {error}");
            exit_code(&error)
        }
    }
}

/// Bytes in MiB with one decimal, for humans.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("pgdbre backup: {message}");
    ExitCode::from(USAGE_ERROR)
}

/// One self-overwriting progress line on stderr, redrawn at most ten times a second.
#[derive(Clone)]
struct ProgressLine {
    last: Arc<Mutex<Option<Instant>>>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine {
            last: Arc::new(Mutex::new(None)),
        }
    }

    fn draw(&self, progress: Progress) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let done = progress.files_done == progress.files_total;
        if !done && last.is_some_and(|at| at.elapsed() < Duration::from_millis(100)) {
            return;
        }
        *last = Some(Instant::now());
        let percent = if progress.bytes_total == 0 {
            100.0
        } else {
            progress.bytes_done as f64 * 100.0 / progress.bytes_total as f64
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r{:5.1}%  {}/{} files  {}/{} MiB ",
            percent.min(100.0),
            progress.files_done,
            progress.files_total,
            mib(progress.bytes_done),
            mib(progress.bytes_total)
        );
        let _ = stderr.flush();
    }
}
