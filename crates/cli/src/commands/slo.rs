//! `pgdbre slo`: SLOs as code. Validate a spec, explain it, and generate Prometheus rules (and
//! promtool tests for them). All logic lives in `pgdbre-slo`; this file parses and prints.

use clap::Subcommand;
use pgdbre_slo::{promtool_tests, rules, Spec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for an unusable spec (same as `pgdbre check`'s bad input: Nagios UNKNOWN).
const USAGE_ERROR: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum SloCommand {
    /// Validate an SLO spec; print one line per SLO (SLI, objective, window, error budget).
    #[command(
        after_help = "Exit status: 0 valid, 3 invalid (each problem as FILE:LINE: key: what is wrong)."
    )]
    Validate {
        /// The SLO spec (YAML); see docs/slo.md.
        file: PathBuf,
    },
    /// Explain each SLO: what an event is, what is good, the budget and the alerts.
    Explain {
        file: PathBuf,
        /// Only this SLO.
        slo: Option<String>,
    },
    /// Print a Prometheus rule file: error-ratio recording rules and burn-rate alerts.
    Rules {
        file: PathBuf,
        /// Print a `promtool test rules` file for the generated rules instead.
        #[arg(long)]
        tests: bool,
        /// Path of the rule file as the test file should reference it.
        #[arg(
            long,
            value_name = "PATH",
            default_value = "slo.rules.yaml",
            requires = "tests"
        )]
        rule_file: String,
    },
}

pub fn run(command: SloCommand) -> ExitCode {
    match command {
        SloCommand::Validate { file } => with_spec(&file, |spec| {
            println!(
                "{}: service {}, {} SLOs, alerting profile {}",
                file.display(),
                spec.service,
                spec.slos.len(),
                spec.profile.name
            );
            for slo in &spec.slos {
                println!("  {slo}");
            }
            for policy in &spec.burn_policies {
                let scope = if policy.slos.is_empty() {
                    "all SLOs".to_string()
                } else {
                    policy.slos.join(", ")
                };
                println!(
                    "  policy: burn rate {} over {} on {scope}: {}",
                    policy.condition(),
                    policy.over,
                    policy.action.label()
                );
            }
        }),
        SloCommand::Explain { file, slo } => with_spec(&file, |spec| {
            let selected: Vec<_> = spec
                .slos
                .iter()
                .filter(|s| slo.as_ref().is_none_or(|n| &s.name == n))
                .collect();
            if selected.is_empty() {
                eprintln!(
                    "pgdbre slo explain: no SLO named `{}` in {}",
                    slo.as_deref().unwrap_or(""),
                    file.display()
                );
                return;
            }
            for slo in selected {
                println!("{}\n", rules::explain(slo));
                println!("  runbook: {}", rules::runbook(slo));
                for pair in &spec.profile.pairs {
                    if slo.kind == pgdbre_slo::SliKind::RestoreTime {
                        break;
                    }
                    println!(
                        "  {} {}/{}: {}",
                        pair.severity,
                        pair.long,
                        pair.short,
                        rules::burn_annotations(&spec, slo, pair)["summary"]
                    );
                }
                println!();
            }
        }),
        SloCommand::Rules {
            file,
            tests,
            rule_file,
        } => with_spec(&file, |spec| {
            if tests {
                print!("{}", promtool_tests::render(&spec, &rule_file));
            } else {
                print!("{}", rules::render(&spec, &file.display().to_string()));
            }
        }),
    }
}

fn with_spec(file: &Path, then: impl FnOnce(Spec)) -> ExitCode {
    match Spec::load(file) {
        Ok(spec) => {
            then(spec);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}
