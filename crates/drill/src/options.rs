//! What a drill does: which backup, which recovery target, which smoke SQL, which targets it is
//! judged against. Parsed once at the edge (the CLI) into [`DrillOptions`].

use pgdbre_backup::recovery::RecoveryTarget;
use pgdbre_backup::RepoKey;
use std::path::PathBuf;
use std::time::Duration;

/// The smoke SQL that proves the restored data is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Smoke {
    /// In every database that allows connections: count the catalog's relations and the user
    /// tables (reads the catalog of each database), then `SELECT 1`.
    Default,
    /// The user's SQL (one or more statements), run in `database`; success is no error.
    Custom {
        /// The SQL.
        sql: String,
        /// The database it runs in.
        database: String,
    },
}

/// Everything a drill needs.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Repository location.
    pub repo: String,
    /// Repository key (encrypted repositories).
    pub key: Option<RepoKey>,
    /// The key file, named (never inlined) in the restored `restore_command`.
    pub key_file: Option<PathBuf>,
    /// Backup label; `None` drills the latest backup.
    pub set: Option<String>,
    /// Recovery target.
    pub target: RecoveryTarget,
    /// Smoke SQL.
    pub smoke: Smoke,
    /// Recovery time objective the drill must meet.
    pub rto_target: Option<Duration>,
    /// Recovery point objective the drill must meet.
    pub rpo_target: Option<Duration>,
    /// Directory the scratch directory is created in (the server's OS user must be able to
    /// enter it).
    pub work_dir: PathBuf,
    /// Keep the scratch directory (restored data and server log) instead of removing it.
    pub keep: bool,
    /// The whole drill, restore included, must finish within this.
    pub timeout: Duration,
    /// The `pgdbre` executable the restored `restore_command` runs (`wal fetch`).
    pub program: PathBuf,
    /// PostgreSQL `bin` directory; default: an installed one of the backup's major version.
    pub pg_bin: Option<PathBuf>,
    /// Role the drill connects as (over a private Unix socket, trust authentication).
    pub user: String,
    /// Files restored in parallel.
    pub jobs: usize,
}

impl DrillOptions {
    /// A drill of the latest backup in `repo` to the end of the archive, with the default smoke
    /// SQL, targets RTO 15 min / RPO 5 min, a 30 min timeout, in the system temp directory.
    pub fn new(repo: &str, program: PathBuf) -> DrillOptions {
        DrillOptions {
            repo: repo.to_string(),
            key: None,
            key_file: None,
            set: None,
            target: RecoveryTarget::Latest,
            smoke: Smoke::Default,
            rto_target: Some(Duration::from_secs(15 * 60)),
            rpo_target: Some(Duration::from_secs(5 * 60)),
            work_dir: std::env::temp_dir(),
            keep: false,
            timeout: Duration::from_secs(30 * 60),
            program,
            pg_bin: None,
            user: "postgres".to_string(),
            jobs: 2,
        }
    }
}

/// The recovery target as a report shows it: `latest`, `immediate`, `time 2026-…`, `lsn 0/…`.
pub(crate) fn describe_target(target: &RecoveryTarget) -> String {
    match target {
        RecoveryTarget::Latest => "latest".to_string(),
        RecoveryTarget::Immediate => "immediate".to_string(),
        RecoveryTarget::Time(time) => format!("time {time}"),
        RecoveryTarget::Lsn(lsn) => format!("lsn {lsn}"),
        RecoveryTarget::Xid(xid) => format!("xid {xid}"),
        RecoveryTarget::Name(name) => format!("name {name}"),
    }
}

/// Parses `15m`, `90s`, `1.5h`, `250ms`, `2d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected a number and a unit, e.g. 15m, 90s, 250ms")
    })?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?}; use ms, s, m, h or d"
            ))
        }
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration("5 weeks")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn targets_are_described_as_given() {
        assert_eq!(describe_target(&RecoveryTarget::Latest), "latest");
        assert_eq!(describe_target(&RecoveryTarget::Xid(42)), "xid 42");
        assert_eq!(
            describe_target(&RecoveryTarget::Time("2026-11-25 18:00:00+00".into())),
            "time 2026-11-25 18:00:00+00"
        );
    }
}
