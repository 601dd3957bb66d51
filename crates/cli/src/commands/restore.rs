//! `pgdbre restore`: restore a backup into a data directory and set up its recovery. The work is
//! in `pgdbre_backup::restore`; this file parses the target options and prints the summary.

use super::backup::{exit_code, mib, runtime, RepoArgs, USAGE_ERROR};
use clap::{ArgGroup, Args, ValueEnum};
use pgdbre_backup::recovery::{RecoveryTarget, TargetAction};
use pgdbre_backup::{Owner, RestoreOptions, TablespaceMap};
use std::path::PathBuf;
use std::process::ExitCode;

/// What the server does at the recovery target.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActionArg {
    /// End recovery and accept writes.
    Promote,
    /// Pause replay so the result can be inspected (PostgreSQL's default).
    Pause,
    /// Stop the server.
    Shutdown,
}

/// `--target` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NamedTarget {
    /// Stop as soon as the backup is consistent.
    Immediate,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("recovery_target").args(["target_time", "target_lsn", "target_xid", "target_name", "target"])),
    after_help = "Without a target, recovery replays all WAL it can fetch. The restored directory \
gets backup_label, recovery.signal and, in postgresql.auto.conf, restore_command = 'pgdbre wal \
fetch ...' plus the target; start PostgreSQL on it to recover.\nExit status: 0 done, 1 the restore \
failed (a corrupt object is named), 3 bad input."
)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup to restore (default: the latest).
    #[arg(long, value_name = "LABEL")]
    pub set: Option<String>,
    /// Data directory to restore into: empty or missing, or an existing copy with --delta.
    #[arg(long, value_name = "DIR")]
    pub pgdata: PathBuf,
    /// Update an existing data directory in place: rewrite only chunks that differ.
    #[arg(long)]
    pub delta: bool,
    /// Recover up to this time (a timestamptz, e.g. '2026-11-25 18:15:00+00').
    #[arg(long, value_name = "TIME")]
    pub target_time: Option<String>,
    /// Recover up to this LSN.
    #[arg(long, value_name = "LSN")]
    pub target_lsn: Option<String>,
    /// Recover up to this transaction id.
    #[arg(long, value_name = "XID")]
    pub target_xid: Option<u64>,
    /// Recover up to this restore point (pg_create_restore_point()).
    #[arg(long, value_name = "NAME")]
    pub target_name: Option<String>,
    /// `immediate`: stop as soon as the backup is consistent.
    #[arg(long, value_enum)]
    pub target: Option<NamedTarget>,
    /// What to do at the target.
    #[arg(long, value_enum, requires = "recovery_target")]
    pub target_action: Option<ActionArg>,
    /// Files written in parallel.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// OS user that owns the restored files (default: the owner of --pgdata, or of its parent).
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
    /// Restore tablespace NAME (or OID) into DIR instead of its recorded location; repeatable.
    #[arg(long = "tablespace-map", value_name = "NAME=DIR", value_parser = parse_tablespace_map)]
    pub tablespace_map: Vec<(String, PathBuf)>,
    /// Restore every tablespace --tablespace-map does not name into DIR/<name>.
    #[arg(long, value_name = "DIR")]
    pub tablespace_map_all: Option<PathBuf>,
}

/// `NAME=DIR`, DIR made absolute (PostgreSQL's tablespace links are).
fn parse_tablespace_map(text: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = text
        .split_once('=')
        .filter(|(name, dir)| !name.is_empty() && !dir.is_empty())
        .ok_or_else(|| format!("expected NAME=DIR (a tablespace name or OID), got {text:?}"))?;
    let dir = std::path::absolute(dir).map_err(|error| format!("{dir}: {error}"))?;
    Ok((name.to_string(), dir))
}

pub fn run(args: RestoreArgs) -> ExitCode {
    let target = if let Some(time) = &args.target_time {
        RecoveryTarget::Time(time.clone())
    } else if let Some(lsn) = &args.target_lsn {
        match lsn.parse() {
            Ok(lsn) => RecoveryTarget::Lsn(lsn),
            Err(message) => return usage_error(&message),
        }
    } else if let Some(xid) = args.target_xid {
        RecoveryTarget::Xid(xid)
    } else if let Some(name) = &args.target_name {
        RecoveryTarget::Name(name.clone())
    } else if args.target.is_some() {
        RecoveryTarget::Immediate
    } else {
        RecoveryTarget::Latest
    };
    let owner = match args.owner.as_deref().map(lookup_user).transpose() {
        Ok(owner) => owner,
        Err(message) => return usage_error(&message),
    };
    let key = match args.repo.key() {
        Ok(key) => key,
        Err(error) => return usage_error(&error.to_string()),
    };
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pgdbre"));
    let options = RestoreOptions {
        repo: args.repo.repo.clone(),
        key,
        key_file: args.repo.encryption_key_file.clone(),
        set: args.set,
        pgdata: args.pgdata,
        delta: args.delta,
        target,
        target_action: args.target_action.map(|action| match action {
            ActionArg::Promote => TargetAction::Promote,
            ActionArg::Pause => TargetAction::Pause,
            ActionArg::Shutdown => TargetAction::Shutdown,
        }),
        jobs: args.jobs.max(1),
        owner,
        program,
        tablespaces: TablespaceMap {
            by_key: args.tablespace_map,
            all: match args.tablespace_map_all.as_deref().map(std::path::absolute) {
                Some(Ok(dir)) => Some(dir),
                Some(Err(error)) => {
                    return usage_error(&format!("--tablespace-map-all: {error}"));
                }
                None => None,
            },
        },
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&format!("cannot start the async runtime: {error}")),
    };
    let pgdata = options.pgdata.clone();
    match runtime.block_on(pgdbre_backup::restore(options)) {
        Ok(summary) => {
            println!(
                "restored backup {} into {} in {:.1} s: {} files written ({} MiB), {} unchanged; start PostgreSQL on it to recover",
                summary.label,
                pgdata.display(),
                summary.elapsed.as_secs_f64(),
                summary.files_written,
                mib(summary.bytes_written),
                summary.files_unchanged
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pgdbre restore: {error}");
            exit_code(&error)
        }
    }
}

/// The uid and gid of OS user `name` (or a numeric uid).
fn lookup_user(name: &str) -> Result<Owner, String> {
    let c_name = std::ffi::CString::new(name).map_err(|_| format!("invalid user name {name:?}"))?;
    // SAFETY: getpwnam/getpwuid get a valid C string or a plain number; the record is read at
    // once, before any other getpw* call in this single-threaded start-up could overwrite it.
    let record = unsafe {
        match name.parse::<u32>() {
            Ok(uid) => libc::getpwuid(uid),
            Err(_) => libc::getpwnam(c_name.as_ptr()),
        }
    };
    if record.is_null() {
        return Err(format!(
            "no OS user {name:?}; pass an existing user to --owner"
        ));
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*record).pw_uid, (*record).pw_gid) };
    Ok(Owner { uid, gid })
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("pgdbre restore: {message}");
    ExitCode::from(USAGE_ERROR)
}
