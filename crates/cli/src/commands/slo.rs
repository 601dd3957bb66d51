//! `pgdbre slo`: SLOs as code. Validate a spec, explain it, generate Prometheus rules (and
//! promtool tests for them), and show budgets and burn rates from the state store or Prometheus.
//! All logic lives in `pgdbre-slo`; this file parses and prints.

use clap::{Args, Subcommand, ValueEnum};
use pgdbre_prometheus::Prometheus;
use pgdbre_slo::budget::format_number;
use pgdbre_slo::status::{self, PolicyCheck, SloStatus, WindowStatus};
use pgdbre_slo::{promtool_tests, rules, Evaluation, Spec};
use pgdbre_store::SqliteStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

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
    /// Error budgets and burn rates of each SLO, from what `pgdbre serve --store` recorded or
    /// from a Prometheus that scrapes `pgdbre serve`.
    #[command(
        after_help = "Missing data or fewer events than min_events is `unknown`, never met.\n\
Exit status: 0 evaluated (whatever the verdicts), 3 unusable spec, state store or Prometheus."
    )]
    Status {
        file: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Where `slo status` and `gate` read SLI counts from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The state store `pgdbre serve --store` writes (default: $XDG_STATE_HOME/pgdbre/state.db,
    /// else ~/.local/state/pgdbre/state.db).
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// Read the counts from this Prometheus (base URL of its HTTP API, e.g.
    /// http://localhost:9090), which scrapes `pgdbre serve`, instead of the state store.
    #[arg(long, value_name = "URL", conflicts_with = "store")]
    pub prometheus: Option<String>,
}

/// An opened source of SLI counts.
pub(crate) enum Source {
    Store(SqliteStore),
    Prometheus(Prometheus),
}

impl Source {
    /// Opens `--prometheus` or `--store` (or the default store path).
    pub(crate) fn open(args: &SourceArgs) -> Result<Source, String> {
        if let Some(url) = &args.prometheus {
            return Prometheus::new(url)
                .map(Source::Prometheus)
                .map_err(|e| e.to_string());
        }
        let path = match &args.store {
            Some(path) => path.clone(),
            None => pgdbre_store::default_path().ok_or(
                "no default state store path (neither XDG_STATE_HOME nor HOME is set); \
                 hint: pass --store PATH",
            )?,
        };
        SqliteStore::open_read_only(&path)
            .map(Source::Store)
            .map_err(|e| e.to_string())
    }

    /// `("store", path)` or `("prometheus", url without credentials)`.
    pub(crate) fn describe(&self) -> (&'static str, String) {
        match self {
            Source::Store(store) => ("store", store.path().display().to_string()),
            Source::Prometheus(prometheus) => ("prometheus", prometheus.url().to_string()),
        }
    }

    pub(crate) fn status(&self, spec: &Spec, now: SystemTime) -> Result<Vec<SloStatus>, String> {
        match self {
            Source::Store(store) => status::status(store, spec, now).map_err(|e| e.to_string()),
            Source::Prometheus(p) => status::status(p, spec, now).map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn check_policies(
        &self,
        spec: &Spec,
        now: SystemTime,
    ) -> Result<Vec<PolicyCheck>, String> {
        match self {
            Source::Store(store) => {
                status::check_policies(store, spec, now).map_err(|e| e.to_string())
            }
            Source::Prometheus(p) => {
                status::check_policies(p, spec, now).map_err(|e| e.to_string())
            }
        }
    }
}

/// Output format of `slo status` and `gate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
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
        SloCommand::Status {
            file,
            source,
            output,
        } => status_command(&file, &source, output),
    }
}

fn status_command(file: &Path, source: &SourceArgs, output: Output) -> ExitCode {
    let spec = match Spec::load(file) {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let source = match Source::open(source) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("pgdbre slo status: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let statuses = match source.status(&spec, SystemTime::now()) {
        Ok(statuses) => statuses,
        Err(error) => {
            eprintln!("pgdbre slo status: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let server = status::server_of(&spec);
    let (source_kind, source_name) = source.describe();
    match output {
        Output::Json => {
            let value = json!({
                "service": spec.service,
                source_kind: source_name,
                "server": server,
                "slos": statuses.iter().map(status_json).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Output::Text => {
            println!(
                "{}: service {}, {source_kind} {source_name}, server {}",
                file.display(),
                spec.service,
                server.unwrap_or("(all)")
            );
            for s in &statuses {
                print_status(s);
            }
        }
    }
    ExitCode::SUCCESS
}

/// `met`, `not met` or `unknown`.
pub(crate) fn verdict(w: &WindowStatus) -> &'static str {
    match (&w.evaluation, w.no_source) {
        (Evaluation::Known(r), None) if r.met => "met",
        (Evaluation::Known(_), None) => "not met",
        _ => "unknown",
    }
}

fn print_status(s: &SloStatus) {
    let slo = &s.slo;
    let w = &s.window;
    println!(
        "\n{}: {} {}, objective {} over {}",
        slo.name, slo.kind, slo.target, slo.objective, slo.window
    );
    let event = slo.kind.event();
    match w.unknown_reason() {
        Some(reason) => println!(
            "  status: unknown ({reason}); {} good of {} {event}s",
            w.counts.good, w.counts.total
        ),
        None => {
            let sli = w.counts.good as f64 * 100.0 / w.counts.total as f64;
            println!(
                "  status: {}; SLI {}% ({} good of {} {event}s)",
                verdict(w),
                format_number(sli),
                w.counts.good,
                w.counts.total
            );
        }
    }
    if let Evaluation::Known(r) = &w.evaluation {
        println!(
            "  budget: {} bad {event}s allowed, {} spent ({}%), {}% remaining",
            format_number(r.allowed_bad),
            r.counts.bad(),
            format_number(r.spent * 100.0),
            format_number(r.remaining * 100.0)
        );
    }
    let reasons: Vec<Option<String>> = s.burn.iter().map(WindowStatus::unknown_reason).collect();
    if let Some(Some(first)) = reasons.first() {
        if reasons.iter().all(|r| r.as_ref() == Some(first)) {
            println!("  burn rate: unknown in every window ({first})");
            return;
        }
    }
    let burns: Vec<String> = s
        .burn
        .iter()
        .map(|b| match b.evaluation.burn_rate() {
            Some(rate) if b.no_source.is_none() => format!("{} {}x", b.window, format_number(rate)),
            _ => format!(
                "{} unknown ({})",
                b.window,
                b.unknown_reason().unwrap_or_default()
            ),
        })
        .collect();
    println!("  burn rate: {}", burns.join(", "));
}

fn window_json(w: &WindowStatus) -> Value {
    let known = match (&w.evaluation, w.no_source) {
        (Evaluation::Known(r), None) => Some(r),
        _ => None,
    };
    json!({
        "window": w.window.to_string(),
        "status": verdict(w),
        "reason": w.unknown_reason(),
        "good": w.counts.good,
        "total": w.counts.total,
        "sli": known.map(|r| r.counts.good as f64 / r.counts.total as f64),
        "burn_rate": known.map(|r| r.burn_rate),
    })
}

fn status_json(s: &SloStatus) -> Value {
    let mut value = window_json(&s.window);
    let known = match (&s.window.evaluation, s.window.no_source) {
        (Evaluation::Known(r), None) => Some(r),
        _ => None,
    };
    value["name"] = json!(s.slo.name);
    value["sli_kind"] = json!(s.slo.kind.to_string());
    value["target"] = json!(s.slo.target.to_string());
    value["objective"] = json!(s.slo.objective.percent());
    value["min_events"] = json!(s.slo.min_events);
    value["budget"] = match known {
        Some(r) => json!({
            "allowed_bad": r.allowed_bad,
            "spent_bad": r.counts.bad(),
            "spent": r.spent,
            "remaining": r.remaining,
        }),
        None => Value::Null,
    };
    value["burn_rates"] = Value::Array(s.burn.iter().map(window_json).collect());
    value
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
