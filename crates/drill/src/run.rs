//! The drill itself: restore → start → recovery → smoke → measure, each phase timed, under one
//! `--timeout`. Whatever happens, the result is a [`DrillReport`] (a failure is a verdict, not an
//! error) and the scratch directory is cleaned up.

use crate::error::DrillError;
use crate::measure::{judge, recovery_point, RpoReference};
use crate::options::{describe_target, DrillOptions};
use crate::report::{DrillReport, Phases, Verdict};
use crate::scratch::Scratch;
use crate::smoke;
use pgdbre_backup::recovery::{RecoveryTarget, TargetAction};
use pgdbre_backup::wal::Lsn;
use pgdbre_backup::{
    restore, BackupError, OpenMode, Owner, Repository, RestoreOptions, TablespaceMap,
};
use pgdbre_lab::restored::server_owner;
use pgdbre_lab::{LabError, PgInstall};
use pgdbre_pg::Session;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often recovery progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a server whose connection failed gets to finish exiting before the drill decides
/// whether it died (and reads why from its log) or is alive and refused.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// Runs a drill as `options` say. Never fails: problems become the reasons of a failed verdict.
pub async fn drill(options: &DrillOptions) -> DrillReport {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut report = DrillReport {
        started_unix_ms: unix_ms(started),
        finished_unix_ms: 0,
        repository: pgdbre_pg::redact(&options.repo),
        backup_label: None,
        pg_version: None,
        backup_stop_lsn: None,
        backup_stop_unix_ms: None,
        target: describe_target(&options.target),
        verdict: Verdict::Fail,
        reasons: Vec::new(),
        rto_seconds: None,
        rto_target_seconds: options.rto_target.map(|target| target.as_secs_f64()),
        rpo: None,
        rpo_target_seconds: options.rpo_target.map(|target| target.as_secs_f64()),
        phases: Phases::default(),
        replay_lsn: None,
        smoke: Vec::new(),
        kept_dir: None,
        log_excerpt: Vec::new(),
        evidence_id: None,
    };
    match Scratch::create(&options.work_dir) {
        Ok(mut scratch) => {
            let mut phase = "reading the repository";
            let outcome = tokio::time::timeout(
                options.timeout,
                phases(options, &mut scratch, &mut report, &mut phase, clock),
            )
            .await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error),
                Err(_) => Some(DrillError::Timeout {
                    phase,
                    seconds: options.timeout.as_secs(),
                }),
            };
            if let Some(error) = failure {
                tracing::info!("drill failed: {error}");
                report.reasons.push(error.to_string());
            }
            report.log_excerpt = scratch.log_excerpt();
            report.kept_dir = scratch.finish(options.keep);
        }
        Err(error) => report.reasons.push(error.to_string()),
    }
    report.reasons.extend(judge(
        report.rto_seconds,
        report.rpo.as_ref(),
        options.rto_target,
        options.rpo_target,
    ));
    report.verdict = if report.reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    report.finished_unix_ms = unix_ms(SystemTime::now());
    report
}

/// The phases in order; `phase` names the one running (for a timeout's message).
async fn phases(
    options: &DrillOptions,
    scratch: &mut Scratch,
    report: &mut DrillReport,
    phase: &mut &'static str,
    clock: Instant,
) -> Result<(), DrillError> {
    let repository =
        Repository::open(&options.repo, options.key.clone(), OpenMode::Existing).await?;
    // Without a key file the server's `wal fetch` could not read the archive, and recovery would
    // quietly end at the backup's own WAL: refuse instead of passing a drill that skipped the archive.
    if repository.config().encrypted
        && options.key_file.is_none()
        && options.target != RecoveryTarget::Immediate
    {
        return Err(DrillError::KeyFileNeeded);
    }
    let label = match &options.set {
        Some(label) => label.clone(),
        None => repository
            .labels()
            .await?
            .pop()
            .ok_or(BackupError::NoBackups)?,
    };
    report.backup_label = Some(label.clone());
    let manifest = repository.manifest(&label).await?;
    report.pg_version = Some(manifest.pg_version.clone());
    report.backup_stop_lsn = Some(manifest.stop_lsn);
    let backup_stop_unix_ms = manifest.stop_unix_ns.div_euclid(1_000_000);
    report.backup_stop_unix_ms = Some(backup_stop_unix_ms);
    let major = manifest.pg_version_num / 10_000;
    let install =
        PgInstall::find(options.pg_bin.as_deref(), Some(major)).map_err(|error| match error {
            LabError::InstallNotFound { detail } => DrillError::NoInstall { major, detail },
            other => DrillError::Lab(other),
        })?;

    *phase = "restoring the backup";
    let restore_started = Instant::now();
    let (uid, gid) = server_owner()?;
    restore(RestoreOptions {
        repo: options.repo.clone(),
        key: options.key.clone(),
        key_file: options.key_file.clone(),
        set: Some(label),
        pgdata: scratch.pgdata(),
        delta: false,
        target: options.target.clone(),
        // With a target, end recovery there and promote: a drill proves the copy can become the
        // primary. Without one, recovery ends (and promotes) when the archive has no more WAL.
        target_action: (options.target != RecoveryTarget::Latest).then_some(TargetAction::Promote),
        jobs: options.jobs.max(1),
        owner: Some(Owner { uid, gid }),
        program: options.program.clone(),
        // The live cluster's tablespace directories are in use: the drill's go in its scratch.
        tablespaces: TablespaceMap {
            by_key: Vec::new(),
            all: Some(scratch.tablespaces()),
        },
    })
    .await?;
    report.phases.restore_seconds = Some(restore_started.elapsed().as_secs_f64());

    *phase = "starting the restored server";
    let startup_started = Instant::now();
    let remaining = options.timeout.saturating_sub(clock.elapsed());
    scratch.start(install, remaining).await?;
    report.phases.startup_seconds = Some(startup_started.elapsed().as_secs_f64());

    *phase = "waiting for recovery to reach the target";
    let recovery_started = Instant::now();
    let session = connect(scratch, &options.user).await?;
    wait_for_promotion(scratch, &session).await?;
    report.phases.recovery_seconds = Some(recovery_started.elapsed().as_secs_f64());

    *phase = "running the smoke SQL";
    let smoke_started = Instant::now();
    let outcome = smoke::run(scratch, &options.user, &options.smoke).await?;
    report.rto_seconds = Some(outcome.first_success.duration_since(clock).as_secs_f64());
    report.phases.smoke_seconds = Some(smoke_started.elapsed().as_secs_f64());
    report.smoke = outcome.results;

    *phase = "reading what recovery replayed";
    let query_error =
        |error: tokio_postgres::Error| DrillError::Query(session.query_error(&error).to_string());
    // Both functions keep their values after recovery has ended.
    let row = session
        .client()
        .query_one(
            "SELECT pg_last_wal_replay_lsn()::text, \
             (extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000)::float8",
            &[],
        )
        .await
        .map_err(query_error)?;
    report.replay_lsn = row
        .get::<_, Option<String>>(0)
        .and_then(|text| text.parse::<Lsn>().ok());
    let last_commit = row.get::<_, Option<f64>>(1).map(|ms| ms.round() as i64);
    let (reference, reference_unix_ms) = match &options.target {
        RecoveryTarget::Time(time) => {
            // Parsed by the restored server, exactly as it parsed recovery_target_time.
            let row = session
                .client()
                .query_one(
                    "SELECT (extract(epoch FROM $1::text::timestamptz) * 1000)::float8",
                    &[time],
                )
                .await
                .map_err(query_error)?;
            (
                RpoReference::TargetTime,
                row.get::<_, f64>(0).round() as i64,
            )
        }
        _ => (RpoReference::DrillStart, report.started_unix_ms),
    };
    report.rpo = Some(recovery_point(
        reference,
        reference_unix_ms,
        last_commit,
        backup_stop_unix_ms,
    ));
    Ok(())
}

/// A session on the restored server (database `postgres`, else `template1`).
async fn connect(scratch: &Scratch, user: &str) -> Result<Session, DrillError> {
    let mut last = None;
    for database in ["postgres", "template1"] {
        let Some(config) = scratch.connection(user, database) else {
            break;
        };
        match Session::connect(&config).await {
            Ok(session) => return Ok(session),
            Err(error) => last = Some(error),
        }
    }
    // A server that accepted connections and then failed (a recovery target beyond the archive
    // ends recovery with FATAL) may still be shutting down: give it a moment to be seen as such.
    if scratch.wait_for_exit(EXIT_GRACE).await {
        return Err(exited(
            scratch,
            "recovery",
            last.map(|error| error.to_string()),
        ));
    }
    match last {
        Some(error) => Err(DrillError::Connect(error)),
        None => Err(exited(scratch, "start-up", None)),
    }
}

/// Polls until recovery has ended (the server promoted itself at the target or at the end of
/// the archive); a server that stops instead is an error carrying its last FATAL line.
async fn wait_for_promotion(scratch: &Scratch, session: &Session) -> Result<(), DrillError> {
    loop {
        match session
            .client()
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
        {
            Ok(row) if !row.get::<_, bool>(0) => return Ok(()),
            Ok(_) => {}
            Err(error) => {
                let message = session.query_error(&error).to_string();
                if scratch.wait_for_exit(EXIT_GRACE).await {
                    return Err(exited(scratch, "recovery", Some(message)));
                }
                return Err(DrillError::Query(message));
            }
        }
        if !scratch.server_running() {
            return Err(exited(scratch, "recovery", None));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn exited(scratch: &Scratch, phase: &'static str, fallback: Option<String>) -> DrillError {
    DrillError::ServerExited {
        phase,
        last_error: scratch
            .last_fatal()
            .or(fallback)
            .unwrap_or_else(|| "no FATAL line in its log".to_string()),
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
