//! `pgdbre drill`: a DR drill — restore a backup into a scratch server, prove it answers, measure
//! RTO and RPO, judge them against targets and record the evidence in the state store; and
//! `pgdbre drill --history`, the recorded drills. The work is in `pgdbre_drill`; this file parses,
//! opens the store and renders.

use super::backup::{runtime, RepoArgs, USAGE_ERROR};
use super::restore::NamedTarget;
use clap::{ArgGroup, Args, ValueEnum};
use pgdbre_backup::format_utc;
use pgdbre_backup::recovery::RecoveryTarget;
use pgdbre_drill::{format_seconds, parse_duration, DrillOptions, Smoke, Verdict};
use pgdbre_store::{SqliteStore, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code of a failed drill.
const FAILED: u8 = 1;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("recovery_target").args(["target_time", "target_lsn", "target_xid", "target_name", "target"])),
    group(ArgGroup::new("smoke").args(["smoke_sql", "smoke_file"])),
    after_help = "Restores the backup (default: the latest) into a fresh directory under --work-dir, \
starts PostgreSQL on it (server OS user, free port, Unix socket only, archiving off), waits for \
recovery to reach the target and promote, runs the smoke SQL, then stops the server and removes \
the directory (unless --keep).\n\
RTO = drill start to the first successful smoke query (restore, startup, recovery and smoke phases \
reported separately). RPO = the target time (--target-time) or else the drill start, minus the \
commit time of the last replayed transaction (the backup's end if none was replayed).\n\
Evidence (times, LSNs, verdict, targets, a redacted server-log excerpt) goes into the state store; \
`pgdbre drill --history` lists it and restore_time SLOs count it (docs/drill.md).\n\
Exit status: 0 passed, 1 failed (restore, start, recovery or smoke failed, or a target missed), \
3 bad input or unusable state store."
)]
pub struct DrillArgs {
    /// Repository: a directory, file:///path or s3://bucket/prefix.
    #[arg(
        long,
        env = "PGDBRE_REPO",
        value_name = "LOCATION",
        required_unless_present = "history"
    )]
    pub repo: Option<String>,
    /// File holding the repository encryption key (else PGDBRE_REPO_KEY).
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Backup to drill (default: the latest).
    #[arg(long, value_name = "LABEL")]
    pub set: Option<String>,
    /// Recover up to this time (a timestamptz, e.g. '2026-11-25 18:15:00+00').
    #[arg(long, value_name = "TIME")]
    pub target_time: Option<String>,
    /// Recover up to this LSN.
    #[arg(long, value_name = "LSN")]
    pub target_lsn: Option<String>,
    /// Recover up to this transaction id.
    #[arg(long, value_name = "XID")]
    pub target_xid: Option<u64>,
    /// Recover up to this restore point.
    #[arg(long, value_name = "NAME")]
    pub target_name: Option<String>,
    /// `immediate`: stop as soon as the backup is consistent (no archived WAL needed).
    #[arg(long, value_enum)]
    pub target: Option<NamedTarget>,
    /// Smoke SQL to run instead of the default (catalog counts and SELECT 1 in every database).
    #[arg(long, value_name = "SQL")]
    pub smoke_sql: Option<String>,
    /// File of smoke SQL to run instead of the default.
    #[arg(long, value_name = "FILE")]
    pub smoke_file: Option<PathBuf>,
    /// Database the custom smoke SQL runs in.
    #[arg(long, value_name = "DBNAME", default_value = "postgres")]
    pub smoke_db: String,
    /// Recovery time objective (15m, 90s, 250ms, or `none`).
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub rto_target: String,
    /// Recovery point objective (5m, 30s, or `none`).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub rpo_target: String,
    /// State store for the evidence (default: $XDG_STATE_HOME/pgdbre/state.db, else
    /// ~/.local/state/pgdbre/state.db); `none` records nothing.
    #[arg(long, value_name = "PATH|none")]
    pub store: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Keep the scratch directory (restored data, server log) and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// The whole drill must finish within this (restore included).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub timeout: String,
    /// Directory the scratch directory is created in (the postgres OS user must be able to
    /// enter it; default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// PostgreSQL bin directory (default: an installed one of the backup's major version).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// Role to connect as (the restored cluster's superuser).
    #[arg(long, value_name = "ROLE", default_value = "postgres")]
    pub user: String,
    /// Files restored in parallel.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// List the drills recorded in the state store instead of running one.
    #[arg(long, conflicts_with_all = ["recovery_target", "smoke", "set", "keep"])]
    pub history: bool,
    /// With --history: how many of the newest drills to list.
    #[arg(long, value_name = "N", default_value_t = 20, requires = "history")]
    pub limit: usize,
}

pub fn run(args: DrillArgs) -> ExitCode {
    let store = match store_path(args.store.as_deref()) {
        Ok(store) => store,
        Err(message) => return usage_error(&message),
    };
    if args.history {
        return history(store, args.limit, args.output);
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => return usage_error(&message),
    };
    // Open the store first: a drill whose evidence cannot be kept is not worth running.
    let mut store = match store.as_deref().map(SqliteStore::open).transpose() {
        Ok(store) => store,
        Err(error) => return usage_error(&error.to_string()),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&format!("cannot start the async runtime: {error}")),
    };
    let mut report = runtime.block_on(pgdbre_drill::drill(&options));
    let mut evidence = None;
    if let Some(store) = store.as_mut() {
        match pgdbre_drill::record(&mut report, store) {
            Ok(id) => evidence = Some(format!("drill #{id} in {}", store.path().display())),
            Err(error) => {
                render(&report, args.output, None);
                eprintln!("pgdbre drill: the evidence was not recorded: {error}");
                return ExitCode::from(FAILED);
            }
        }
    }
    render(&report, args.output, evidence.as_deref());
    match report.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(FAILED),
    }
}

fn render(report: &pgdbre_drill::DrillReport, output: Output, evidence: Option<&str>) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).expect("a report serialises")
        ),
        Output::Text => {
            print!("{}", report.render_text());
            match evidence {
                Some(evidence) => println!("  evidence  {evidence}"),
                None => println!("  evidence  not recorded (--store none)"),
            }
        }
    }
}

/// The drill options from the arguments; every input problem as one sentence.
fn options(args: &DrillArgs) -> Result<DrillOptions, String> {
    let repo = args
        .repo
        .clone()
        .ok_or("pass the repository with --repo LOCATION (or PGDBRE_REPO)")?;
    let repo_args = RepoArgs {
        repo: repo.clone(),
        encryption_key_file: args.encryption_key_file.clone(),
    };
    let key = repo_args.key().map_err(|error| error.to_string())?;
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pgdbre"));
    let mut options = DrillOptions::new(&repo, program);
    options.key = key;
    options.key_file = args.encryption_key_file.clone();
    options.set = args.set.clone();
    options.target = if let Some(time) = &args.target_time {
        RecoveryTarget::Time(time.clone())
    } else if let Some(lsn) = &args.target_lsn {
        RecoveryTarget::Lsn(lsn.parse()?)
    } else if let Some(xid) = args.target_xid {
        RecoveryTarget::Xid(xid)
    } else if let Some(name) = &args.target_name {
        RecoveryTarget::Name(name.clone())
    } else if args.target.is_some() {
        RecoveryTarget::Immediate
    } else {
        RecoveryTarget::Latest
    };
    options.smoke = if let Some(sql) = &args.smoke_sql {
        Smoke::Custom {
            sql: sql.clone(),
            database: args.smoke_db.clone(),
        }
    } else if let Some(file) = &args.smoke_file {
        let sql = std::fs::read_to_string(file)
            .map_err(|error| format!("cannot read --smoke-file {}: {error}", file.display()))?;
        Smoke::Custom {
            sql,
            database: args.smoke_db.clone(),
        }
    } else {
        Smoke::Default
    };
    options.rto_target = optional_duration("--rto-target", &args.rto_target)?;
    options.rpo_target = optional_duration("--rpo-target", &args.rpo_target)?;
    options.timeout =
        parse_duration(&args.timeout).map_err(|error| format!("--timeout: {error}"))?;
    if let Some(dir) = &args.work_dir {
        options.work_dir = dir.clone();
    }
    options.keep = args.keep;
    options.pg_bin = args.pg_bin.clone();
    options.user = args.user.clone();
    options.jobs = args.jobs.max(1);
    Ok(options)
}

fn optional_duration(flag: &str, text: &str) -> Result<Option<Duration>, String> {
    if text == "none" {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|error| format!("{flag}: {error}"))
}

/// The state store `--store` names; `Ok(None)` for `--store none`.
fn store_path(store: Option<&str>) -> Result<Option<PathBuf>, String> {
    match store {
        Some("none") => Ok(None),
        Some(path) => Ok(Some(PathBuf::from(path))),
        None => pgdbre_store::default_path().map(Some).ok_or_else(|| {
            "no default state store path (neither XDG_STATE_HOME nor HOME is set); \
             hint: pass --store PATH or --store none"
                .to_string()
        }),
    }
}

/// `pgdbre drill --history`: the newest `limit` drills, oldest first.
fn history(store: Option<PathBuf>, limit: usize, output: Output) -> ExitCode {
    let Some(path) = store else {
        return usage_error("--history reads the state store; pass --store PATH instead of none");
    };
    let drills = match SqliteStore::open_read_only(&path)
        .and_then(|store| store.drills(i64::MIN, i64::MAX))
    {
        Ok(drills) => drills,
        Err(error) => return usage_error(&error.to_string()),
    };
    let newest = &drills[drills.len().saturating_sub(limit)..];
    let seconds = |value: Option<f64>| value.map_or_else(|| "-".to_string(), format_seconds);
    match output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = newest
                .iter()
                .map(|drill| {
                    serde_json::json!({
                        "id": drill.id,
                        "started_unix_ms": drill.started_unix_ms,
                        "finished_unix_ms": drill.finished_unix_ms,
                        "repository": drill.repository,
                        "backup_label": drill.backup_label,
                        "target": drill.target,
                        "verdict": drill.verdict,
                        "reasons": drill.reasons.lines().collect::<Vec<_>>(),
                        "rto_seconds": drill.rto_seconds,
                        "rpo_seconds": drill.rpo_seconds,
                        "rto_target_seconds": drill.rto_target_seconds,
                        "rpo_target_seconds": drill.rpo_target_seconds,
                        "phases": {
                            "restore_seconds": drill.restore_seconds,
                            "startup_seconds": drill.startup_seconds,
                            "recovery_seconds": drill.recovery_seconds,
                            "smoke_seconds": drill.smoke_seconds,
                        },
                        "backup_stop_lsn": drill.backup_stop_lsn,
                        "replay_lsn": drill.replay_lsn,
                        "recovered_to_unix_ms": drill.recovered_to_unix_ms,
                        "log_excerpt": drill.log_excerpt.lines().collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).expect("rows serialise")
            );
        }
        Output::Text if newest.is_empty() => println!("no drills recorded in {}", path.display()),
        Output::Text => {
            println!(
                "{:>4}  {:<23}  {:<7}  {:<17}  {:<12}  {:>9}  {:>9}  {:<12}  reason",
                "id", "started", "verdict", "backup", "target", "RTO", "RPO", "replayed to"
            );
            for drill in newest {
                println!(
                    "{:>4}  {:<23}  {:<7}  {:<17}  {:<12}  {:>9}  {:>9}  {:<12}  {}",
                    drill.id,
                    format_utc(drill.started_unix_ms.saturating_mul(1_000_000)),
                    drill.verdict,
                    drill.backup_label.as_deref().unwrap_or("-"),
                    drill.target,
                    seconds(drill.rto_seconds),
                    seconds(drill.rpo_seconds),
                    drill.replay_lsn.as_deref().unwrap_or("-"),
                    drill.reasons.lines().next().unwrap_or("")
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("pgdbre drill: {message}");
    ExitCode::from(USAGE_ERROR)
}
