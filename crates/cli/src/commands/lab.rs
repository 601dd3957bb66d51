//! `pgdbre lab`: start, inspect and stop a local cluster (a primary and streaming replicas) from
//! the installed PostgreSQL. The cluster itself is `pgdbre_lab`, the same harness the tests use;
//! this file only parses arguments and renders.

use anyhow::Context;
use clap::{Args, Subcommand};
use pgdbre_lab::{Cluster, LabOptions, Node, PgInstall};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Where the lab lives unless `--dir` or `PGDBRE_LAB_DIR` say otherwise.
const DEFAULT_DIR: &str = "/tmp/pgdbre-lab";

/// Subcommands of `pgdbre lab`.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a primary and N streaming replicas and leave them running.
    Up(UpArgs),
    /// Show each node: role, port, whether it runs, replication state and lag.
    Status(DirArgs),
    /// Print `export PG...` lines for a node, for `eval "$(pgdbre lab env)"`.
    Env(EnvArgs),
    /// Run psql against a node (arguments after `--` go to psql).
    Psql(PsqlArgs),
    /// Stop every node and remove the lab directory.
    Down(DirArgs),
}

/// The lab directory option shared by every subcommand.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// Lab directory (state file, data, logs, sockets).
    #[arg(long, env = "PGDBRE_LAB_DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Arguments of `pgdbre lab up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Number of streaming replicas.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// PostgreSQL major version to run (default: the newest found).
    #[arg(long, value_name = "MAJOR")]
    pub pg_version: Option<u32>,
    /// bin directory of the PostgreSQL to run (default: PG_BINDIR, pg_config, known paths).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// Extra server setting NAME=VALUE (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
}

/// Arguments of `pgdbre lab env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Node to point at.
    #[arg(long, default_value = "primary")]
    pub node: String,
}

/// Arguments of `pgdbre lab psql`.
#[derive(Debug, Args)]
pub struct PsqlArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Node to connect to.
    #[arg(default_value = "primary")]
    pub node: String,
    /// Arguments passed to psql unchanged.
    #[arg(last = true)]
    pub psql_args: Vec<String>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!(
            "expected NAME=VALUE, e.g. work_mem=64MB, got {text:?}"
        )),
    }
}

/// Runs one `pgdbre lab` subcommand; errors are printed as one line with what to do.
pub fn run(command: LabCommand) -> ExitCode {
    let outcome = match command {
        LabCommand::Up(args) => up(args),
        LabCommand::Status(args) => status(&args.dir),
        LabCommand::Env(args) => env(&args),
        LabCommand::Psql(args) => psql(&args),
        LabCommand::Down(args) => down(&args.dir),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let install = PgInstall::find(args.pg_bin.as_deref(), args.pg_version)?;
    let mut options = LabOptions::new(install)
        .replicas(args.replicas)
        .dir(&args.dir.dir);
    options.settings = args.settings;
    let started = Instant::now();
    let cluster = Cluster::start(options)?;
    let elapsed = started.elapsed();
    // Persist before printing anything: if stdout goes away mid-print, the lab is still recorded.
    let dir = cluster.dir().to_path_buf();
    cluster.persist()?;
    let cluster = Cluster::load(&dir)?;
    println!(
        "PostgreSQL {} lab up in {:.1}s: {}",
        cluster.install().major,
        elapsed.as_secs_f64(),
        cluster.dir().display()
    );
    print_nodes(&cluster)?;
    println!();
    println!(
        "Connect:  eval \"$(pgdbre lab env --dir {})\"; psql",
        dir.display()
    );
    println!("Stop:     pgdbre lab down --dir {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Exit status 1 when a node is down, so scripts can wait on it.
fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(dir)?;
    println!(
        "PostgreSQL {} lab in {}",
        cluster.install().major,
        cluster.dir().display()
    );
    let all_running = print_nodes(&cluster)?;
    Ok(if all_running {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the node table; returns whether every node runs.
fn print_nodes(cluster: &Cluster) -> anyhow::Result<bool> {
    let replication = if cluster.primary().is_running() {
        cluster.replication_status().ok()
    } else {
        None
    };
    println!(
        "{:<10} {:<8} {:>6}  {:<8} REPLICATION",
        "NODE", "ROLE", "PORT", "RUNNING"
    );
    let mut all_running = true;
    for node in cluster.nodes() {
        let running = node.is_running();
        all_running &= running;
        let state = match (&replication, node.role()) {
            (_, pgdbre_lab::Role::Primary) => "-".to_string(),
            (None, _) => "unknown (primary down)".to_string(),
            (Some(replicas), _) => match replicas.iter().find(|r| r.name == node.name()) {
                Some(replica) => match replica.replay_lag_bytes {
                    Some(lag) => format!("{}, replay lag {lag} bytes", replica.state),
                    None => replica.state.clone(),
                },
                None => "not connected".to_string(),
            },
        };
        println!(
            "{:<10} {:<8} {:>6}  {:<8} {state}",
            node.name(),
            node.role().to_string(),
            node.port(),
            if running { "yes" } else { "no" },
        );
    }
    Ok(all_running)
}

fn env(args: &EnvArgs) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(&args.dir.dir)?;
    let node = cluster.node(&args.node)?;
    for (name, value) in client_environment(node) {
        println!("export {name}={}", shell_quote(&value));
    }
    println!("# DSN: {}", node.dsn());
    Ok(ExitCode::SUCCESS)
}

fn psql(args: &PsqlArgs) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(&args.dir.dir)?;
    let node = cluster.node(&args.node)?;
    if !node.is_running() {
        anyhow::bail!(
            "{} is not running; see `pgdbre lab status --dir {}`",
            node.name(),
            args.dir.dir.display()
        );
    }
    let program = node.install().bindir.join("psql");
    let error = std::process::Command::new(&program)
        .envs(client_environment(node))
        .args(&args.psql_args)
        .exec();
    Err(error).with_context(|| format!("run {}", program.display()))
}

fn down(dir: &Path) -> anyhow::Result<ExitCode> {
    let cluster = match Cluster::load(dir) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("nothing to stop: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let nodes = cluster.nodes().count();
    let dir = cluster.dir().to_path_buf();
    cluster.shutdown()?;
    println!("stopped {nodes} nodes and removed {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The libpq environment that points a client at `node`.
fn client_environment(node: &Node) -> Vec<(&'static str, String)> {
    vec![
        ("PGHOST", node.socket_dir().display().to_string()),
        ("PGPORT", node.port().to_string()),
        ("PGUSER", "postgres".to_string()),
        ("PGDATABASE", "postgres".to_string()),
        ("PGPASSFILE", node.passfile().display().to_string()),
    ]
}

/// Quotes for POSIX shells when the value has anything beyond safe characters.
fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-:=@%+,".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_setting, shell_quote};

    #[test]
    fn settings_parse() {
        assert_eq!(
            parse_setting("work_mem=64MB").unwrap(),
            ("work_mem".to_string(), "64MB".to_string())
        );
        assert_eq!(
            parse_setting("search_path=a,b=c").unwrap().1,
            "a,b=c".to_string()
        );
        assert!(parse_setting("work_mem").is_err());
        assert!(parse_setting("=1").is_err());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/tmp/pgdbre-lab/sock"), "/tmp/pgdbre-lab/sock");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
