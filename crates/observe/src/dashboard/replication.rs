//! The replica-lag section and the server list, read from the families of a scrape — the same
//! series `/metrics` exports, so the page and Prometheus never disagree:
//!
//! * each primary's `pg_stat_replication` (collector `stat-replication`): per standby its state,
//!   replay lag in seconds and WAL not yet replayed;
//! * each configured standby's heartbeat lag (the probes, `pgdbre_replica_lag_seconds`): what the
//!   replica-lag SLO counts. A standby without a heartbeat measurement is a row of "no data".

use super::model::{Health, LagRow, TargetRow};
use crate::Family;
use pgdbre_slo::metrics;
use pgdbre_slo::Target as SloTarget;

/// When a lag is coloured warning or bad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagLimits {
    pub warning_seconds: f64,
    pub critical_seconds: f64,
    /// The target of the spec's replica-lag SLO: a lag it calls bad is bad here too.
    pub slo: Option<SloTarget>,
}

impl LagLimits {
    /// The defaults of the `replication-lag` check (the catalog `serve` runs), and the SLO's
    /// target when the spec has a replica-lag SLO.
    pub fn from_catalog(slo: Option<SloTarget>) -> LagLimits {
        let meta = pgdbre_check::checks::all()
            .into_iter()
            .map(|check| check.meta())
            .find(|meta| meta.id == "replication-lag");
        let param = |name: &str, fallback: f64| {
            meta.and_then(|m| m.param(name))
                .map_or(fallback, |p| p.default)
        };
        LagLimits {
            warning_seconds: param("warning_seconds", 30.0),
            critical_seconds: param("critical_seconds", 300.0),
            slo,
        }
    }

    fn health(&self, lag: Option<f64>) -> Health {
        let Some(lag) = lag else {
            return Health::Unknown;
        };
        let breaks_slo = self.slo.is_some_and(|target| !target.is_good(lag));
        if breaks_slo || lag >= self.critical_seconds {
            Health::Bad
        } else if lag >= self.warning_seconds {
            Health::Warning
        } else {
            Health::Good
        }
    }
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn family<'a>(
    families: &'a [Family],
    name: &'a str,
) -> impl Iterator<Item = &'a crate::Sample> + 'a {
    families
        .iter()
        .filter(move |f| f.name == name)
        .flat_map(|f| f.samples.iter())
}

/// The value of `name` whose labels include every pair of `wanted`.
fn value(families: &[Family], name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    family(families, name)
        .find(|s| wanted.iter().all(|(k, v)| label(&s.labels, k) == Some(*v)))
        .map(|s| s.value)
}

/// Whether each configured server answered the scrape, and its role.
pub fn targets(names: &[String], families: &[Family]) -> Vec<TargetRow> {
    names
        .iter()
        .map(|name| {
            let server = [("server", name.as_str())];
            let up = value(families, "pg_up", &server) == Some(1.0);
            let role = match value(families, "pg_replication_is_replica", &server) {
                Some(1.0) => Some("standby"),
                Some(_) => Some("primary"),
                None => None,
            };
            TargetRow {
                name: name.clone(),
                role: role.filter(|_| up),
                up,
            }
        })
        .collect()
}

/// One row per standby each primary reports, then one per configured standby's heartbeat.
pub fn lag_rows(families: &[Family], limits: &LagLimits) -> Vec<LagRow> {
    let mut rows = Vec::new();
    for sample in family(families, "pg_stat_replication_pg_wal_lsn_diff") {
        let server = label(&sample.labels, "server").unwrap_or_default();
        let name = label(&sample.labels, "application_name").unwrap_or_default();
        let address = label(&sample.labels, "client_addr").unwrap_or_default();
        let replay = [
            ("server", server),
            ("application_name", name),
            ("client_addr", address),
            ("stage", "replay"),
        ];
        let lag = value(families, "pgdbre_standby_lag_seconds", &replay);
        let standby = match (name.is_empty(), address.is_empty()) {
            (false, false) => format!("{name} ({address})"),
            (false, true) => name.to_owned(),
            (true, false) => address.to_owned(),
            (true, true) => "(unnamed, local socket)".to_owned(),
        };
        rows.push(LagRow {
            standby,
            source: format!("pg_stat_replication on {server}"),
            state: label(&sample.labels, "state").map(str::to_owned),
            lag_seconds: lag,
            bytes_behind: value(families, "pgdbre_standby_lag_bytes", &replay)
                .or(Some(sample.value)),
            health: limits.health(lag),
        });
    }
    for sample in family(families, "pg_replication_is_replica").filter(|s| s.value == 1.0) {
        let server = label(&sample.labels, "server").unwrap_or_default();
        let lag = value(
            families,
            metrics::REPLICA_LAG_SECONDS,
            &[("server", server)],
        );
        rows.push(LagRow {
            standby: server.to_owned(),
            source: "heartbeat probe (pgdbre.heartbeat)".to_owned(),
            state: None,
            lag_seconds: lag,
            bytes_behind: None,
            health: limits.health(lag),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LagLimits {
        LagLimits {
            warning_seconds: 30.0,
            critical_seconds: 300.0,
            slo: None,
        }
    }

    fn scraped() -> Vec<Family> {
        let replica = [
            ("server", "db1:5432/app"),
            ("application_name", "replica1"),
            ("client_addr", ""),
        ];
        let staged = |stage| {
            let mut labels = replica.to_vec();
            labels.push(("stage", stage));
            labels
        };
        let mut with_state = replica.to_vec();
        with_state.push(("state", "streaming"));
        vec![
            Family::gauge("pg_up", "")
                .with(&[("server", "db1:5432/app")], 1.0)
                .with(&[("server", "db2:5432/app")], 1.0)
                .with(&[("server", "db3:5432/app")], 0.0),
            Family::gauge("pg_replication_is_replica", "")
                .with(&[("server", "db1:5432/app")], 0.0)
                .with(&[("server", "db2:5432/app")], 1.0),
            Family::gauge("pg_stat_replication_pg_wal_lsn_diff", "").with(&with_state, 4096.0),
            Family::gauge("pgdbre_standby_lag_seconds", "")
                .with(&staged("write"), 0.1)
                .with(&staged("replay"), 42.0),
            Family::gauge("pgdbre_standby_lag_bytes", "").with(&staged("replay"), 8192.0),
            Family::gauge(metrics::REPLICA_LAG_SECONDS, "").with(
                &[("server", "db2:5432/app"), ("standby", "db2:5432/app")],
                0.4,
            ),
        ]
    }

    #[test]
    fn a_row_per_standby_and_source() {
        let rows = lag_rows(&scraped(), &limits());
        assert_eq!(
            rows,
            vec![
                LagRow {
                    standby: "replica1".into(),
                    source: "pg_stat_replication on db1:5432/app".into(),
                    state: Some("streaming".into()),
                    lag_seconds: Some(42.0),
                    bytes_behind: Some(8192.0),
                    health: Health::Warning,
                },
                LagRow {
                    standby: "db2:5432/app".into(),
                    source: "heartbeat probe (pgdbre.heartbeat)".into(),
                    state: None,
                    lag_seconds: Some(0.4),
                    bytes_behind: None,
                    health: Health::Good,
                },
            ]
        );
    }

    #[test]
    fn a_standby_without_heartbeat_is_unknown_not_zero() {
        let families: Vec<Family> = scraped()
            .into_iter()
            .filter(|f| f.name != metrics::REPLICA_LAG_SECONDS)
            .collect();
        let rows = lag_rows(&families, &limits());
        assert_eq!(rows[1].lag_seconds, None);
        assert_eq!(rows[1].health, Health::Unknown);
    }

    #[test]
    fn the_slo_target_makes_a_lag_bad() {
        let target = SloTarget::parse(pgdbre_slo::SliKind::ReplicaLag, "<= 5").unwrap();
        let strict = LagLimits {
            slo: Some(target),
            ..limits()
        };
        assert_eq!(strict.health(Some(5.0)), Health::Good);
        assert_eq!(strict.health(Some(5.5)), Health::Bad);
        assert_eq!(limits().health(Some(5.5)), Health::Good);
        assert_eq!(limits().health(Some(300.0)), Health::Bad);
    }

    #[test]
    fn catalog_limits_come_from_the_replication_lag_check() {
        let limits = LagLimits::from_catalog(None);
        assert!(limits.warning_seconds > 0.0);
        assert!(limits.critical_seconds > limits.warning_seconds);
    }

    #[test]
    fn servers_up_down_and_role() {
        let names = vec![
            "db1:5432/app".to_string(),
            "db2:5432/app".to_string(),
            "db3:5432/app".to_string(),
        ];
        let rows = targets(&names, &scraped());
        let summary: Vec<(bool, Option<&str>)> = rows.iter().map(|r| (r.up, r.role)).collect();
        assert_eq!(
            summary,
            vec![
                (true, Some("primary")),
                (true, Some("standby")),
                (false, None)
            ]
        );
    }
}
