//! `pgdbre gate`: the deploy/migration gate. Evaluates the spec's `burn_policies` on what
//! `pgdbre serve --store` recorded (or on Prometheus, `--prometheus`) and exits non-zero when a
//! policy says freeze. The evaluation is `pgdbre_slo::status::check_policies`; this file decides
//! and prints.

use super::slo::{Output, Source, SourceArgs};
use clap::{Args, ValueEnum};
use pgdbre_slo::budget::format_number;
use pgdbre_slo::status::PolicyCheck;
use pgdbre_slo::{Action, Spec};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// Exit codes: 0 ship, 1 a policy freezes, 2 unknown data with --fail-on-unknown, 3 bad input.
const FREEZE: u8 = 1;
const UNKNOWN: u8 = 2;
const USAGE_ERROR: u8 = 3;

/// Which change is being gated: only the matching freeze action blocks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Change {
    Deploy,
    Migration,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 the change may ship; 1 a burn policy says freeze (one line \
says which SLO, burn rate, window and policy); 2 some data is unknown and --fail-on-unknown is \
set; 3 unusable spec, state store or Prometheus (unreachable, or a query error).\nUnknown data (no samples, fewer than min_events) does not \
block by default; the output says so."
)]
pub struct GateArgs {
    /// The SLO spec whose `burn_policies` decide.
    #[arg(long = "policy", value_name = "FILE")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only the freeze action for this kind of change blocks (freeze-deploys or
    /// freeze-migrations); without it either blocks.
    #[arg(long, value_enum, value_name = "KIND")]
    pub change: Option<Change>,
    /// Block (exit 2) when a policy cannot be evaluated for lack of data.
    #[arg(long)]
    pub fail_on_unknown: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Whether a triggered policy with `action` blocks this change.
fn blocks(action: Action, change: Option<Change>) -> bool {
    !matches!(
        (action, change),
        (Action::Notify, _)
            | (Action::FreezeDeploys, Some(Change::Migration))
            | (Action::FreezeMigrations, Some(Change::Deploy))
    )
}

fn policy_name(check: &PolicyCheck) -> String {
    format!(
        "burn_policies[{}]: {} over {} -> {}",
        check.index,
        check.policy.condition(),
        check.policy.over,
        check.policy.action.label()
    )
}

fn unknown_line(check: &PolicyCheck) -> String {
    format!(
        "{} over {}: unknown ({}) ({})",
        check.slo,
        check.policy.over,
        check.status.unknown_reason().unwrap_or_default(),
        policy_name(check)
    )
}

pub fn run(args: GateArgs) -> ExitCode {
    let spec = match Spec::load(&args.policy) {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let source = match Source::open(&args.source) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("pgdbre gate: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let checks = match source.check_policies(&spec, SystemTime::now()) {
        Ok(checks) => checks,
        Err(error) => {
            eprintln!("pgdbre gate: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let relevant = |c: &&PolicyCheck| blocks(c.policy.action, args.change);
    // The triggered blocking check furthest over its threshold decides the message.
    let freeze = checks
        .iter()
        .filter(relevant)
        .filter(|c| c.triggered)
        .max_by(|a, b| {
            let over = |c: &PolicyCheck| {
                c.status.evaluation.burn_rate().unwrap_or(0.0) / c.policy.threshold.max(1e-12)
            };
            over(a).total_cmp(&over(b))
        });
    let unknown: Vec<&PolicyCheck> = checks
        .iter()
        .filter(relevant)
        .filter(|c| c.status.unknown_reason().is_some())
        .collect();
    let notified: Vec<&PolicyCheck> = checks
        .iter()
        .filter(|c| c.triggered && !blocks(c.policy.action, args.change))
        .collect();

    let (decision, code, line) = if let Some(c) = freeze {
        let rate = c.status.evaluation.burn_rate().unwrap_or(0.0);
        (
            "freeze",
            FREEZE,
            format!(
                "pgdbre gate: FREEZE: SLO {} burns its error budget at {}x over {} ({} good of {}), \
                 policy {}",
                c.slo,
                format_number((rate * 100.0).round() / 100.0),
                c.policy.over,
                c.status.counts.good,
                c.status.counts.total,
                policy_name(c)
            ),
        )
    } else if args.fail_on_unknown && !unknown.is_empty() {
        (
            "unknown",
            UNKNOWN,
            format!(
                "pgdbre gate: BLOCKED (--fail-on-unknown): cannot tell: {}",
                unknown_line(unknown[0])
            ),
        )
    } else if checks.is_empty() {
        (
            "ship",
            0,
            format!(
                "pgdbre gate: ok to ship: {} has no burn_policies, nothing to gate on",
                args.policy.display()
            ),
        )
    } else {
        let evaluated = checks.iter().filter(relevant).count() - unknown.len();
        let mut line =
            format!("pgdbre gate: ok to ship: {evaluated} policy checks within their burn limits");
        if !unknown.is_empty() {
            line.push_str(&format!(
                "; {} unknown, not blocking (--fail-on-unknown to block)",
                unknown.len()
            ));
        }
        ("ship", 0, line)
    };

    match args.output {
        Output::Json => {
            let value = json!({
                "decision": decision,
                "exit_code": code,
                "message": line,
                "checks": checks.iter().map(|c| json!({
                    "policy": c.index,
                    "condition": c.policy.condition(),
                    "over": c.policy.over.to_string(),
                    "action": c.policy.action.label(),
                    "blocks": blocks(c.policy.action, args.change),
                    "slo": c.slo,
                    "status": if c.triggered { "triggered" } else if c.status.unknown_reason().is_some() { "unknown" } else { "ok" },
                    "burn_rate": c.status.evaluation.burn_rate().filter(|_| c.status.no_source.is_none()),
                    "reason": c.status.unknown_reason(),
                    "good": c.status.counts.good,
                    "total": c.status.counts.total,
                })).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Output::Text => {
            println!("{line}");
            if code == 0 {
                for c in &unknown {
                    eprintln!("note: {}", unknown_line(c));
                }
            }
            for c in &notified {
                eprintln!(
                    "notify: SLO {} burns at {}x over {} ({})",
                    c.slo,
                    format_number(c.status.evaluation.burn_rate().unwrap_or(0.0)),
                    c.policy.over,
                    policy_name(c)
                );
            }
        }
    }
    ExitCode::from(code)
}
