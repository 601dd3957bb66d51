//! `pgdbre check`: run the catalog against one or more servers and render the results.

use clap::{Args, ValueEnum};
use pgdbre_check::{checks, render, Check, RunOptions, Selection, Thresholds};
use pgdbre_pg::ConnConfig;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when the run could not happen at all (bad DSN, bad thresholds file): Nagios UNKNOWN.
const USAGE_ERROR: u8 = 3;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status follows the Nagios convention for every output format: \
0 ok, 1 warning, 2 critical, 3 unknown (a target or check could not be evaluated, or bad input).\n\
Without --dsn the connection comes from PGHOST, PGPORT, PGUSER, PGDATABASE, ... as for psql."
)]
pub struct CheckArgs {
    /// Connection string or URI (libpq syntax); repeat for several servers, checked concurrently.
    #[arg(short = 'd', long = "dsn", value_name = "DSN")]
    pub dsns: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Run only these checks (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Skip these checks (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub skip: Vec<String>,
    /// Run only these categories (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CATEGORY,...")]
    pub category: Vec<String>,
    /// YAML file of per-check thresholds (see `pgdbre check --list` for ids and parameters).
    #[arg(short, long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Override one threshold: CHECK.PARAM=VALUE (repeatable), applied after --thresholds.
    #[arg(long = "set", value_name = "CHECK.PARAM=VALUE")]
    pub set: Vec<String>,
    /// List the catalog (ids, categories, parameters with defaults) and exit.
    #[arg(long)]
    pub list: bool,
    /// Print a thresholds file with every check's parameters at their defaults, and exit.
    #[arg(long)]
    pub print_thresholds: bool,
    /// Print one check's description, thresholds and runbook, and exit.
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// Sessions per server; checks are spread over them.
    #[arg(short, long, default_value_t = 2)]
    pub jobs: usize,
    /// statement_timeout for each check query, in seconds.
    #[arg(long, default_value_t = 30)]
    pub statement_timeout: u64,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Output formats of `pgdbre check`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Nagios,
    Prometheus,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

pub fn run(args: CheckArgs) -> ExitCode {
    let catalog = checks::all();
    if args.list {
        print!("{}", render::catalog::list(&catalog));
        return ExitCode::SUCCESS;
    }
    if args.print_thresholds {
        print!("{}", render::catalog::default_thresholds(&catalog));
        return ExitCode::SUCCESS;
    }
    if let Some(id) = &args.explain {
        return match catalog.iter().find(|c| c.meta().id == id) {
            Some(check) => {
                print!("{}", render::catalog::explain(*check));
                ExitCode::SUCCESS
            }
            None => usage_error(&format!(
                "unknown check id `{id}`; run `pgdbre check --list` to see the catalog"
            )),
        };
    }
    let prepared = match prepare(&args, &catalog) {
        Ok(p) => p,
        Err(message) => return usage_error(&message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(&format!("cannot start the async runtime: {e}")),
    };
    let (configs, selection, thresholds) = prepared;
    let options = RunOptions {
        jobs: args.jobs.max(1),
        statement_timeout: Duration::from_secs(args.statement_timeout),
        ..RunOptions::default()
    };
    let reports = runtime.block_on(async {
        let runs = configs
            .iter()
            .map(|c| pgdbre_check::run_target(c, &catalog, &selection, &thresholds, &options));
        pgdbre_check::join_all(runs).await
    });
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let rendered = match args.output {
        Output::Text => render::text(&reports, color),
        Output::Json => render::json(&reports) + "\n",
        Output::Nagios => render::nagios(&reports),
        Output::Prometheus => render::prometheus(&reports),
    };
    print!("{rendered}");
    ExitCode::from(render::exit_code(&reports))
}

type Prepared = (Vec<ConnConfig>, Selection, Thresholds);

/// Validates every input before connecting anywhere, so bad input fails fast and alone.
fn prepare(args: &CheckArgs, catalog: &[&'static dyn Check]) -> Result<Prepared, String> {
    let mut thresholds = match &args.thresholds {
        Some(path) => Thresholds::load(path, catalog).map_err(|e| format!("{e}"))?,
        None => Thresholds::default(),
    };
    for assignment in &args.set {
        thresholds
            .set(assignment, catalog)
            .map_err(|e| e.to_string())?;
    }
    let mut categories = Vec::new();
    for name in &args.category {
        let found = catalog
            .iter()
            .map(|c| c.meta().category)
            .find(|c| c.name() == name);
        match found {
            Some(c) => categories.push(c),
            None => {
                let mut names: Vec<&str> =
                    catalog.iter().map(|c| c.meta().category.name()).collect();
                names.dedup();
                return Err(format!(
                    "unknown category `{name}`; categories are: {}",
                    names.join(", ")
                ));
            }
        }
    }
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
        categories,
    };
    selection.validate(catalog)?;
    let configs = if args.dsns.is_empty() {
        vec![ConnConfig::resolve(None).map_err(|e| e.to_string())?]
    } else {
        args.dsns
            .iter()
            .map(|d| ConnConfig::resolve(Some(d)).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?
    };
    Ok((configs, selection, thresholds))
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("pgdbre check: {message}");
    ExitCode::from(USAGE_ERROR)
}
