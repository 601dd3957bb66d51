//! `pgdbre serve`: the Prometheus exporter and the HTML dashboard. Parses and validates the
//! arguments (every DSN, the `--slo` spec), before binding anything, then hands over to
//! `pgdbre_observe::serve`.

use clap::Args;
use pgdbre_observe::{parse_duration, DashboardConfig, ProbeOptions, ScrapeOptions, ServeConfig};
use pgdbre_pg::ConnConfig;
use pgdbre_slo::Spec;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for bad input (an unparsable DSN or duration) or an address that cannot be bound.
const USAGE_ERROR: u8 = 3;

#[derive(Debug, Args)]
#[command(
    after_help = "Endpoints: /metrics (every --dsn), /probe?target=<name or DSN>, /healthz, and / (the\n\
dashboard: SLOs from --slo and --store, check findings, replica lag; see docs/dashboard.md).\n\
Without --dsn the connection comes from PGHOST, PGPORT, PGUSER, PGDATABASE, ... as for psql.\n\
Metric names follow postgres_exporter 0.11; see docs/metrics.md."
)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9187", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Connection string or URI (libpq syntax); repeat for several servers.
    #[arg(short = 'd', long = "dsn", value_name = "DSN")]
    pub dsns: Vec<String>,
    /// How long opening a session may take; a server that is down reports pg_up 0 within it.
    #[arg(long, default_value = "3s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
    /// How long each collector may take (also its statement_timeout).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub collector_timeout: Duration,
    /// Slow collectors (database sizes) are re-run at most this often; 0: on every scrape.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub slow_interval: Duration,
    /// How often the check catalog runs in the background (exported as pgdbre_check_*); 0 disables it.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub check_interval: Duration,
    /// Per-table series (pg_stat_user_tables_*) only for this many tables, the largest first.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub table_limit: u32,
    /// Only tables whose schema.table matches this PostgreSQL regular expression.
    #[arg(long, value_name = "REGEX")]
    pub table_include: Option<String>,
    /// Never tables whose schema.table matches this PostgreSQL regular expression.
    #[arg(long, value_name = "REGEX")]
    pub table_exclude: Option<String>,
    /// pg_stat_statements series (pgdbre_stat_statements_*) only for this many statements, the
    /// most total execution time first; 0 disables them.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub statements_limit: u32,
    /// PgBouncer admin console to scrape into pgbouncer_* (dbname=pgbouncer, an admin_users or
    /// stats_users role); repeat for several.
    #[arg(long = "pgbouncer", value_name = "DSN")]
    pub pgbouncers: Vec<String>,
    /// How often the synthetic read and commit probes run on each server (pgdbre_probe_*,
    /// pgdbre_replica_lag_seconds); 0 disables them. The commit probe writes pgdbre.heartbeat;
    /// the interval is also the resolution of the replica lag, hence a short default.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub probe_interval: Duration,
    /// How long one probe may take before it counts as an error of class "timeout".
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub probe_timeout: Duration,
    /// State store the probes record their per-minute counts into, read by `pgdbre slo status`
    /// and `pgdbre gate` (default: $XDG_STATE_HOME/pgdbre/state.db, else
    /// ~/.local/state/pgdbre/state.db); `none` disables it.
    #[arg(long, value_name = "PATH")]
    pub store: Option<String>,
    /// SLO spec (YAML, see docs/slo.md) whose budgets and burn rates the dashboard at / shows,
    /// evaluated from --store; checked at start like `pgdbre slo validate`.
    #[arg(long = "slo", value_name = "FILE")]
    pub slo: Option<PathBuf>,
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

/// Opens the state store at `path` for the probes to write.
fn open_store(path: &std::path::Path) -> Result<pgdbre_observe::probes::Recorder, String> {
    let store = pgdbre_store::SqliteStore::open(path).map_err(|e| e.to_string())?;
    Ok(pgdbre_observe::probes::Recorder::new(Box::new(store)))
}

pub fn run(args: ServeArgs) -> ExitCode {
    // The spec first: a typo in it is reported as FILE:LINE before anything else happens.
    let slo = match &args.slo {
        None => None,
        Some(file) => match Spec::load(file) {
            Ok(spec) => Some((file.clone(), spec)),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(USAGE_ERROR);
            }
        },
    };
    let dsns: Vec<Option<&str>> = if args.dsns.is_empty() {
        vec![None]
    } else {
        args.dsns.iter().map(|d| Some(d.as_str())).collect()
    };
    let mut targets = Vec::with_capacity(dsns.len());
    for dsn in dsns {
        match ConnConfig::resolve(dsn) {
            Ok(config) => targets.push(config),
            Err(error) => {
                eprintln!("pgdbre serve: {error}");
                return ExitCode::from(USAGE_ERROR);
            }
        }
    }
    if args.probe_timeout.is_zero() {
        eprintln!("pgdbre serve: --probe-timeout must be more than 0");
        return ExitCode::from(USAGE_ERROR);
    }
    let mut pgbouncers = Vec::with_capacity(args.pgbouncers.len());
    for dsn in &args.pgbouncers {
        match ConnConfig::resolve(Some(dsn)) {
            Ok(config) if config.dbname() == "pgbouncer" => pgbouncers.push(config),
            Ok(config) => {
                eprintln!(
                    "pgdbre serve: --pgbouncer {} names database `{}`, not the admin console; \
                     hint: add dbname=pgbouncer",
                    config.target(),
                    config.dbname()
                );
                return ExitCode::from(USAGE_ERROR);
            }
            Err(error) => {
                eprintln!("pgdbre serve: --pgbouncer: {error}");
                return ExitCode::from(USAGE_ERROR);
            }
        }
    }
    if args.connect_timeout.is_zero() || args.collector_timeout.is_zero() {
        eprintln!("pgdbre serve: --connect-timeout and --collector-timeout must be more than 0");
        return ExitCode::from(USAGE_ERROR);
    }
    let store = match store_path(args.store.as_deref()) {
        Ok(store) => store,
        // Nothing would read or write it.
        Err(_) if args.probe_interval.is_zero() && slo.is_none() => None,
        Err(error) => {
            eprintln!("pgdbre serve: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    // Without probes nothing is written, but the dashboard still reads what the store holds.
    let recorder = match store.as_deref().filter(|_| !args.probe_interval.is_zero()) {
        None => None,
        Some(path) => match open_store(path) {
            Ok(recorder) => Some(recorder),
            Err(error) => {
                eprintln!("pgdbre serve: {error}");
                return ExitCode::from(USAGE_ERROR);
            }
        },
    };
    let config = ServeConfig {
        listen: args.listen,
        targets,
        options: ScrapeOptions {
            connect_timeout: args.connect_timeout,
            collector_timeout: args.collector_timeout,
            slow_interval: args.slow_interval,
            table_limit: args.table_limit,
            table_include: args.table_include,
            table_exclude: args.table_exclude,
            statements_limit: args.statements_limit,
        },
        check_interval: (!args.check_interval.is_zero()).then_some(args.check_interval),
        pgbouncers,
        probes: (!args.probe_interval.is_zero()).then_some(ProbeOptions {
            interval: args.probe_interval,
            timeout: args.probe_timeout,
            connect_timeout: args.connect_timeout,
            recorder,
        }),
        dashboard: DashboardConfig { slo, store },
    };
    // One thread: a scrape waits on the server, not the CPU, and its collectors already run
    // concurrently on the session; every extra worker thread costs a malloc arena of RSS.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pgdbre serve: cannot start the runtime: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match runtime.block_on(pgdbre_observe::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "pgdbre serve: cannot listen on {}: {error}; hint: pick another --listen address",
                args.listen
            );
            ExitCode::from(USAGE_ERROR)
        }
    }
}
