//! `pgdbre wal push|fetch`: PostgreSQL's `archive_command` and `restore_command`. The work is
//! in `pgdbre_backup::archive`; this file parses and maps outcomes to the exit codes PostgreSQL
//! acts on.

use super::backup::{runtime, RepoArgs};
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};
use pgdbre_backup::archive::{self, ArchiveError, FetchOptions, FetchOutcome, PushOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// `wal fetch`: the archive does not have the file (PostgreSQL then tries streaming or ends
/// recovery), and a failure PostgreSQL should retry later.
const NOT_IN_ARCHIVE: u8 = 1;
const FETCH_FAILED: u8 = 2;
/// `wal fetch`: the archive can never serve the file (damaged or foreign data, no repository,
/// wrong key). PostgreSQL aborts recovery on an exit status above 125 instead of taking the
/// file as absent and promoting early.
const PERMANENT_FAILURE: u8 = 126;
/// `wal push` failed; PostgreSQL keeps the file and calls again.
const PUSH_FAILED: u8 = 1;
/// Bad input (key file, repository location).
const USAGE_ERROR: u8 = 3;

/// `pgdbre wal` subcommands.
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Archive one WAL file (for archive_command).
    #[command(
        after_help = "In postgresql.conf (the server's environment may carry PGDBRE_REPO and \
PGDBRE_REPO_KEY instead of the flags):\n  archive_mode = on\n  archive_command = 'pgdbre wal push \
--repo /var/lib/pgdbre/repo %p'\nEach call also stores up to 4x--jobs files PostgreSQL has marked \
.ready, in parallel, and records them in the spool so their own calls return at once. 0 is \
returned only once the file is durably in the repository.\nExit status: 0 archived (or already \
archived with identical contents); 1 not archived (PostgreSQL retries), e.g. a different file is \
already archived under that name; 3 bad input."
    )]
    Push(PushArgs),
    /// Restore one archived WAL file (for restore_command).
    #[command(
        after_help = "In postgresql.conf (pgdbre restore writes it):\n  restore_command = \
'pgdbre wal fetch --repo /var/lib/pgdbre/repo %f %p'\nEach call also fetches the next --prefetch \
segments into the spool in parallel, so recovery does not wait for one round trip per segment.\n\
Exit status: 0 restored; 1 not in the archive (quietly: that is how PostgreSQL finds the end of \
the archive); 2 the repository failed (PostgreSQL retries); 126 the archived file is corrupt or \
belongs to another cluster, or the repository is missing or the key is wrong (PostgreSQL stops \
recovery instead of ending it early); 3 bad input."
    )]
    Fetch(FetchArgs),
}

/// Arguments of `pgdbre wal push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Spool directory carrying state between calls (default: pg_wal/pgdbre-spool/push).
    #[arg(long, value_name = "DIR", env = "PGDBRE_WAL_SPOOL")]
    pub spool: Option<PathBuf>,
    /// Files compressed and stored in parallel; 1 stores only the requested file.
    #[arg(long, default_value_t = archive::DEFAULT_JOBS, value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    pub jobs: usize,
    /// Run as the background worker a call starts (stores the `.ready` files ahead of their
    /// calls); internal.
    #[arg(long, hide = true)]
    pub worker: bool,
    /// The WAL file to archive (PostgreSQL's %p).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Arguments of `pgdbre wal fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Spool directory for prefetched segments (default: pg_wal/pgdbre-spool/fetch).
    #[arg(long, value_name = "DIR", env = "PGDBRE_WAL_SPOOL")]
    pub spool: Option<PathBuf>,
    /// Segments fetched ahead in parallel; 0 turns prefetching off.
    #[arg(long, value_name = "K", default_value_t = archive::DEFAULT_PREFETCH, value_parser = clap::value_parser!(u16).range(0..=64).map(usize::from))]
    pub prefetch: usize,
    /// The WAL file name wanted (PostgreSQL's %f).
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Where to write it (PostgreSQL's %p).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Runs `pgdbre wal push|fetch` and maps the outcome to the exit codes above.
pub fn run(command: WalCommand) -> ExitCode {
    match command {
        WalCommand::Push(args) => push(args),
        WalCommand::Fetch(args) => fetch(args),
    }
}

fn push(args: PushArgs) -> ExitCode {
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => return fail("wal push", &error.to_string(), USAGE_ERROR),
    };
    let mut options = PushOptions::new(&args.repo.repo);
    options.key = key;
    options.spool = args.spool;
    options.jobs = args.jobs;
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(
                "wal push",
                &format!("cannot start the async runtime: {error}"),
                PUSH_FAILED,
            )
        }
    };
    if args.worker {
        return match runtime.block_on(archive::run_worker(&args.path, &options)) {
            Ok(summary) => {
                tracing::info!(
                    stored = summary.stored,
                    failed = summary.failed,
                    "wal push worker done"
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail("wal push worker", &error.to_string(), PUSH_FAILED),
        };
    }
    // The worker is this same command, started again with the same arguments and environment.
    options.worker = std::env::current_exe().ok().map(|program| {
        std::iter::once(program.into_os_string())
            .chain(std::env::args_os().skip(1))
            .chain(std::iter::once("--worker".into()))
            .collect()
    });
    match runtime.block_on(archive::push(&args.path, &options)) {
        Ok(summary) => {
            tracing::info!(file = %summary.file, outcome = ?summary.outcome, stored_ahead = summary.stored_ahead, "archived");
            ExitCode::SUCCESS
        }
        Err(error) => fail("wal push", &error.to_string(), PUSH_FAILED),
    }
}

fn fetch(args: FetchArgs) -> ExitCode {
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => return fail("wal fetch", &error.to_string(), USAGE_ERROR),
    };
    let mut options = FetchOptions::new(&args.repo.repo);
    options.key = key;
    options.spool = args.spool;
    options.prefetch = args.prefetch;
    let result = match runtime() {
        Ok(runtime) => runtime.block_on(archive::fetch(&args.file, &args.path, &options)),
        Err(error) => {
            return fail(
                "wal fetch",
                &format!("cannot start the async runtime: {error}"),
                FETCH_FAILED,
            )
        }
    };
    match result {
        Ok(FetchOutcome::Restored {
            from_spool,
            prefetched,
        }) => {
            tracing::info!(file = %args.file, from_spool, prefetched, "restored");
            ExitCode::SUCCESS
        }
        // Not an error: PostgreSQL asks for files past the archive's end on purpose.
        Ok(FetchOutcome::Missing) => ExitCode::from(NOT_IN_ARCHIVE),
        Err(error) => {
            let code = match &error {
                error if error.is_permanent() => PERMANENT_FAILURE,
                ArchiveError::NotWalFile(_) => USAGE_ERROR,
                _ => FETCH_FAILED,
            };
            fail("wal fetch", &error.to_string(), code)
        }
    }
}

fn fail(command: &str, message: &str, code: u8) -> ExitCode {
    eprintln!("pgdbre {command}: {message}");
    ExitCode::from(code)
}
