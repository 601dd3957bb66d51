//! Runs the selected checks against one target and collects their results.
//!
//! Checks run concurrently over a small number of sessions (`jobs`): tokio-postgres pipelines the
//! queries of one session, and a second session lets the server use a second core. Every session
//! gets a `lock_timeout` so a check can never queue behind the very lock it is reporting on, and
//! JIT off: compiling a one-off catalog query costs more than running it.

use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Role, Severity, Thresholds};
use futures::future::join_all;
use pgdbre_pg::{ConnConfig, Session};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Which checks to run.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Run only these ids (empty: all).
    pub only: Vec<String>,
    /// Never run these ids.
    pub skip: Vec<String>,
    /// Run only these categories (empty: all).
    pub categories: Vec<Category>,
}

impl Selection {
    /// Rejects ids that are not in the catalog, so a typo is not a silently skipped check.
    pub fn validate(&self, catalog: &[&'static dyn Check]) -> Result<(), String> {
        for id in self.only.iter().chain(&self.skip) {
            if !catalog.iter().any(|c| c.meta().id == id) {
                return Err(format!(
                    "unknown check id `{id}`; run `pgdbre check --list` to see the catalog"
                ));
            }
        }
        Ok(())
    }

    fn includes(&self, meta: &CheckMeta, thresholds: &Thresholds) -> bool {
        let listed = self.only.is_empty() || self.only.iter().any(|id| id == meta.id);
        let category = self.categories.is_empty() || self.categories.contains(&meta.category);
        listed
            && category
            && !self.skip.iter().any(|id| id == meta.id)
            && !thresholds.is_disabled(meta.id)
    }
}

/// How to run: parallel sessions and per-statement limits.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Sessions opened per target (checks are spread over them).
    pub jobs: usize,
    /// `statement_timeout` for each check query.
    pub statement_timeout: Duration,
    /// `lock_timeout` for each check query.
    pub lock_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: 2,
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(1),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    /// Ran; see the findings (none means healthy).
    Ran,
    /// Did not run here; `fix` says how to make it run (e.g. a GRANT).
    Skipped { reason: String, fix: Option<String> },
    /// Tried to run and failed.
    Error { message: String },
}

/// One check's result on one target.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub meta: &'static CheckMeta,
    #[serde(flatten)]
    pub status: Status,
    pub severity: Severity,
    pub findings: Vec<Finding>,
    pub duration_ms: f64,
}

impl CheckResult {
    /// A result with its findings worst first and its severity derived: the worst finding,
    /// `Ok` when there is none, `Unknown` when the check failed.
    pub fn new(
        meta: &'static CheckMeta,
        status: Status,
        mut findings: Vec<Finding>,
        duration_ms: f64,
    ) -> Self {
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let severity = match &status {
            Status::Error { .. } => Severity::Unknown,
            _ => findings
                .iter()
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Ok),
        };
        CheckResult {
            meta,
            status,
            severity,
            findings,
            duration_ms,
        }
    }
}

/// Everything the catalog found on one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Secret-free name of the target (`host:port/dbname`).
    pub target: String,
    pub server_version: Option<String>,
    /// `primary` or `standby`, once connected.
    pub role: Option<&'static str>,
    /// Set when the target could not be checked at all (connection failed).
    pub error: Option<String>,
    pub results: Vec<CheckResult>,
    pub duration_ms: f64,
}

impl TargetReport {
    /// The worst severity on this target; `Unknown` if it could not be checked.
    pub fn severity(&self) -> Severity {
        if self.error.is_some() {
            return Severity::Unknown;
        }
        self.results
            .iter()
            .map(|r| r.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }
}

/// Connects to `config` and runs every selected check of `catalog`.
pub async fn run_target(
    config: &ConnConfig,
    catalog: &[&'static dyn Check],
    selection: &Selection,
    thresholds: &Thresholds,
    options: &RunOptions,
) -> TargetReport {
    let started = Instant::now();
    let wanted = catalog
        .iter()
        .filter(|c| selection.includes(c.meta(), thresholds))
        .count();
    let jobs = options.jobs.clamp(1, wanted.max(1));
    let mut sessions = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        match open_session(config, options).await {
            Ok(session) => sessions.push(session),
            Err(message) => {
                return TargetReport {
                    target: config.target(),
                    server_version: None,
                    role: None,
                    error: Some(message),
                    results: Vec::new(),
                    duration_ms: elapsed_ms(started),
                }
            }
        }
    }
    let mut report = run_on_sessions(&sessions, catalog, selection, thresholds).await;
    report.duration_ms = elapsed_ms(started);
    report
}

/// Runs every selected check over already-open `sessions` (at least one), spreading checks
/// round-robin. A session that dies mid-run turns its remaining checks into errors, not a panic.
pub async fn run_on_sessions(
    sessions: &[Session],
    catalog: &[&'static dyn Check],
    selection: &Selection,
    thresholds: &Thresholds,
) -> TargetReport {
    let started = Instant::now();
    assert!(
        !sessions.is_empty(),
        "run_on_sessions needs at least one session"
    );
    let selected = catalog
        .iter()
        .copied()
        .filter(|c| selection.includes(c.meta(), thresholds));
    let runs = selected
        .enumerate()
        .map(|(i, check)| run_one(check, &sessions[i % sessions.len()], thresholds));
    let results = join_all(runs).await;
    let info = sessions[0].info();
    TargetReport {
        target: sessions[0].target().to_string(),
        server_version: Some(version_string(info.version.0)),
        role: Some(if info.in_recovery {
            "standby"
        } else {
            "primary"
        }),
        error: None,
        results,
        duration_ms: elapsed_ms(started),
    }
}

/// Opens one session prepared for running checks (timeouts set).
pub async fn open_session(config: &ConnConfig, options: &RunOptions) -> Result<Session, String> {
    let session = Session::connect(config).await.map_err(|e| e.to_string())?;
    let setup = format!(
        "SET statement_timeout = {}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = 0; SET jit = off",
        options.statement_timeout.as_millis(),
        options.lock_timeout.as_millis()
    );
    session
        .client()
        .batch_execute(&setup)
        .await
        .map_err(|e| format!("could not prepare session on {}: {e}", session.target()))?;
    Ok(session)
}

pub(crate) async fn run_one(
    check: &'static dyn Check,
    session: &Session,
    thresholds: &Thresholds,
) -> CheckResult {
    let meta = check.meta();
    let started = Instant::now();
    let status_findings = match skip_reason(meta, session) {
        Some(skipped) => Err(skipped),
        None => {
            let ctx = Context::new(session, meta, thresholds.for_check(meta.id));
            check
                .run(&ctx)
                .await
                .map_err(|e| error_status(e, meta, session))
        }
    };
    let (status, findings) = match status_findings {
        Ok(findings) => (Status::Ran, findings),
        Err(status) => (status, Vec::new()),
    };
    CheckResult::new(meta, status, findings, elapsed_ms(started))
}

/// Why `meta` cannot run on this session, decided from detected facts before any query.
fn skip_reason(meta: &CheckMeta, session: &Session) -> Option<Status> {
    let info = session.info();
    let req = &meta.requires;
    if info.version.major() < req.min_major {
        return Some(Status::Skipped {
            reason: format!(
                "needs PostgreSQL {} or newer (server is {})",
                req.min_major,
                info.version.major()
            ),
            fix: None,
        });
    }
    match (req.role, info.in_recovery) {
        (Role::Primary, true) => {
            return Some(Status::Skipped {
                reason: "applies to primaries only".into(),
                fix: None,
            })
        }
        (Role::Standby, false) => {
            return Some(Status::Skipped {
                reason: "applies to standbys only".into(),
                fix: None,
            })
        }
        _ => {}
    }
    if req.superuser && !info.is_superuser {
        return Some(Status::Skipped {
            reason: format!("role \"{}\" is not a superuser", info.user),
            fix: Some("run this check as a superuser".into()),
        });
    }
    if req.pg_monitor && !info.has_pg_monitor {
        return Some(Status::Skipped {
            reason: format!("role \"{}\" cannot read server-wide statistics", info.user),
            fix: Some(format!("GRANT pg_monitor TO \"{}\";", info.user)),
        });
    }
    None
}

fn error_status(error: CheckError, meta: &CheckMeta, session: &Session) -> Status {
    match error {
        CheckError::InsufficientPrivilege { message } => Status::Skipped {
            reason: format!("permission denied: {message}"),
            fix: Some(if meta.requires.superuser {
                "run this check as a superuser: it reads a superuser-only catalog".to_string()
            } else {
                format!("GRANT pg_monitor TO \"{}\";", session.info().user)
            }),
        },
        CheckError::NotApplicable(reason) => Status::Skipped { reason, fix: None },
        CheckError::Query { message, .. } => Status::Error { message },
    }
}

/// `150018` → `15.18`; `90624` → `9.6.24` (pre-10 numbering).
fn version_string(num: u32) -> String {
    if num >= 100_000 {
        format!("{}.{}", num / 10_000, num % 10_000)
    } else {
        format!("{}.{}.{}", num / 10_000, (num / 100) % 100, num % 100)
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
