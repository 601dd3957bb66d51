//! Prometheus rule generation: recording rules for the bad-event ratio over every window the
//! alerts and burn policies use, multiwindow multi-burn-rate alerts, no-data alerts and
//! restore-time alerts. Output is a rule file `promtool check rules` accepts.
//!
//! Recording rules are named `slo:pgdbre_error_ratio:rate<window>` and labelled `slo`, `service`.

use crate::budget::format_number;
use crate::duration::Span;
use crate::metrics;
use crate::profile::WindowPair;
use crate::sli::{Comparison, SliKind};
use crate::spec::{BurnPolicy, Slo, Spec};
use serde::Serialize;
use std::collections::BTreeMap;

/// Alert names, stable: dashboards and Alertmanager routes match on them.
pub const ALERT_BURN: &str = "PgdbreErrorBudgetBurn";
pub const ALERT_NO_DATA: &str = "PgdbreSLONoData";
pub const ALERT_POLICY: &str = "PgdbreBurnPolicyTriggered";
pub const ALERT_DRILL: &str = "PgdbreDrillRestoreOverTarget";

/// How long an SLI must have no data before the no-data alert fires.
pub const NO_DATA_FOR: Span = Span::TEN_MINUTES;

/// Name of the recording rule for the bad ratio over `window`.
pub fn ratio_record(window: Span) -> String {
    format!("slo:pgdbre_error_ratio:rate{window}")
}

#[derive(Debug, Serialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    fn alert(
        name: &str,
        expr: String,
        hold: Option<Span>,
        labels: BTreeMap<String, String>,
    ) -> Rule {
        Rule {
            record: None,
            alert: Some(name.to_string()),
            expr,
            hold: hold.map(|h| h.to_string()),
            labels,
            annotations: BTreeMap::new(),
        }
    }
}

/// Label matchers inside `{}` (without braces), selector first.
fn matchers(spec: &Spec, extra: &[(&str, String)]) -> String {
    let mut parts: Vec<String> = extra
        .iter()
        .map(|(k, v)| match k.strip_suffix("=~") {
            Some(name) => format!("{name}=~\"{v}\""),
            None => format!("{k}=\"{v}\""),
        })
        .collect();
    parts.extend(spec.selector.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
    parts.join(",")
}

fn selector(metric: &str, matchers: &str) -> String {
    if matchers.is_empty() {
        metric.to_string()
    } else {
        format!("{metric}{{{matchers}}}")
    }
}

/// The `bool` comparison that is 1 for a *bad* measurement.
fn bad_comparison(slo: &Slo) -> &'static str {
    match slo.target.comparison {
        Comparison::AtMost => ">",
        Comparison::Below => ">=",
    }
}

/// Which events the `counted` series of [`SliSeries::Events`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Good,
    Bad,
}

/// What an SLI counts, as PromQL selectors: the one description the recording rules, the
/// `min_events` guard and `pgdbre slo status --prometheus` ([`count_exprs`]) are built from, so
/// they cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub enum SliSeries {
    /// Counted events: `total` selects the counter of every event, `counted` the good ones
    /// (latency: the histogram bucket at the target) or the bad ones (errors).
    Events {
        counted: String,
        kind: Counted,
        total: String,
    },
    /// One-minute time slices: `worst` is the worst value of the last minute (an instant
    /// expression, absent when nothing was sampled), `bad_minute` is 1 for a bad minute, 0 for a
    /// good one.
    Minutes { worst: String, bad_minute: String },
}

/// The series of `slo`; `None` for restore time (drills are events far rarer than any
/// alerting window, and not counted by Prometheus).
pub fn sli_series(spec: &Spec, slo: &Slo) -> Option<SliSeries> {
    let total = metrics::PROBE_TOTAL;
    match slo.kind {
        SliKind::Latency { probe, .. } => Some(SliSeries::Events {
            counted: selector(
                &format!("{}_bucket", metrics::PROBE_DURATION_SECONDS),
                &matchers(
                    spec,
                    &[
                        ("probe", probe.label().into()),
                        ("le=~", metrics::le_matcher(slo.target.value)),
                    ],
                ),
            ),
            kind: Counted::Good,
            total: selector(total, &matchers(spec, &[("probe", probe.label().into())])),
        }),
        SliKind::ErrorRate => Some(SliSeries::Events {
            counted: selector(
                total,
                &matchers(spec, &[("result", metrics::RESULT_ERROR.into())]),
            ),
            kind: Counted::Bad,
            total: selector(total, &matchers(spec, &[])),
        }),
        SliKind::ReplicaLag => {
            // A minute is bad when the worst standby's worst sample in it misses the target.
            let lag = selector(metrics::REPLICA_LAG_SECONDS, &matchers(spec, &[]));
            let worst = format!("max(max_over_time({lag}[1m]))");
            let bad_minute = format!(
                "{worst} {} bool {}",
                bad_comparison(slo),
                format_number(slo.target.value)
            );
            Some(SliSeries::Minutes { worst, bad_minute })
        }
        SliKind::RestoreTime => None,
    }
}

/// PromQL for the bad-event ratio of `slo` over `window`; `None` for restore time.
pub fn bad_ratio_expr(spec: &Spec, slo: &Slo, window: Span) -> Option<String> {
    Some(match sli_series(spec, slo)? {
        // Failed probes are in the total but not in the histogram: they count as slow.
        SliSeries::Events {
            counted,
            kind: Counted::Good,
            total,
        } => format!(
            "1 - ((sum(rate({counted}[{window}])) or vector(0)) / sum(rate({total}[{window}])))"
        ),
        SliSeries::Events {
            counted,
            kind: Counted::Bad,
            total,
        } => {
            format!("(sum(rate({counted}[{window}])) or vector(0)) / sum(rate({total}[{window}]))")
        }
        // Bad minutes / minutes with a sample.
        SliSeries::Minutes { bad_minute, .. } => {
            format!("avg_over_time(({bad_minute})[{window}:1m])")
        }
    })
}

/// PromQL counting the SLO's events over `window` (probes, or minutes with a sample), for the
/// `min_events` guard.
pub fn events_expr(spec: &Spec, slo: &Slo, window: Span) -> Option<String> {
    Some(match sli_series(spec, slo)? {
        SliSeries::Events { total, .. } => format!("sum(increase({total}[{window}]))"),
        SliSeries::Minutes { worst, .. } => format!("count_over_time({worst}[{window}:1m])"),
    })
}

/// PromQL for the counts of one SLO over one window, each an instant query returning at most
/// one sample (none when there is no series at all).
#[derive(Debug, Clone, PartialEq)]
pub enum CountExprs {
    /// `counted` good (or bad, per `kind`) events and `total` events.
    Events {
        counted: String,
        kind: Counted,
        total: String,
    },
    /// Bad minutes and minutes with a sample.
    Minutes { bad: String, observed: String },
}

/// The count queries of `slo` over `window`; `None` for restore time.
pub fn count_exprs(spec: &Spec, slo: &Slo, window: Span) -> Option<CountExprs> {
    let observed = events_expr(spec, slo, window)?;
    Some(match sli_series(spec, slo)? {
        SliSeries::Events { counted, kind, .. } => CountExprs::Events {
            counted: format!("sum(increase({counted}[{window}]))"),
            kind,
            total: observed,
        },
        SliSeries::Minutes { bad_minute, .. } => CountExprs::Minutes {
            bad: format!("sum_over_time(({bad_minute})[{window}:1m])"),
            observed,
        },
    })
}

fn slo_labels(spec: &Spec, slo: &Slo) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("service".to_string(), spec.service.clone()),
        ("slo".to_string(), slo.name.clone()),
    ])
}

fn recorded(spec: &Spec, slo: &Slo, window: Span) -> String {
    format!(
        "{}{{slo=\"{}\",service=\"{}\"}}",
        ratio_record(window),
        slo.name,
        spec.service
    )
}

/// Windows recorded for `slo`: the profile's and its burn policies', shortest first.
pub fn recorded_windows(spec: &Spec, slo: &Slo) -> Vec<Span> {
    let mut windows = spec.profile.windows();
    windows.extend(policies_for(spec, slo).map(|p| p.over));
    windows.sort();
    windows.dedup();
    windows
}

fn policies_for<'a>(spec: &'a Spec, slo: &'a Slo) -> impl Iterator<Item = &'a BurnPolicy> {
    spec.burn_policies
        .iter()
        .filter(|p| p.applies_to(&slo.name))
}

fn guard(spec: &Spec, slo: &Slo, window: Span) -> String {
    match events_expr(spec, slo, window) {
        Some(events) if slo.min_events > 0 => {
            format!("\nand on() ({events} >= {})", slo.min_events)
        }
        _ => String::new(),
    }
}

/// The alert labels of one burn-rate alert.
pub fn burn_labels(spec: &Spec, slo: &Slo, pair: &WindowPair) -> BTreeMap<String, String> {
    let mut labels = slo_labels(spec, slo);
    labels.insert("severity".into(), pair.severity.label().into());
    labels.insert("long_window".into(), pair.long.to_string());
    labels.insert("short_window".into(), pair.short.to_string());
    labels
}

/// Summary, description and runbook of a burn-rate alert (`pgdbre slo explain` text).
pub fn burn_annotations(spec: &Spec, slo: &Slo, pair: &WindowPair) -> BTreeMap<String, String> {
    let threshold = slo.objective.bad_ratio_at(pair.burn_rate);
    let share = pair.burn_rate * pair.long.as_secs_f64() / slo.window.as_secs_f64() * 100.0;
    let lasts = Span::human_secs(slo.window.as_secs_f64() / pair.burn_rate);
    let mut out = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "{} {}: error budget burning over {}x ({} and {} windows)",
                spec.service,
                slo.name,
                format_number(pair.burn_rate),
                pair.long,
                pair.short
            ),
        ),
        (
            "description".to_string(),
            format!(
                "{} Over both the last {} and the last {}, more than {}% of {}s were bad: a burn rate above {}x, which spends {}% of the {} error budget every {} and would exhaust all of it in {}.",
                explain(slo),
                pair.long,
                pair.short,
                format_number(threshold * 100.0),
                slo.kind.event(),
                format_number(pair.burn_rate),
                format_number((share * 100.0).round() / 100.0),
                slo.window,
                pair.long,
                lasts
            ),
        ),
        ("runbook".to_string(), runbook(slo).to_string()),
    ]);
    if let Some(url) = &slo.runbook_url {
        out.insert("runbook_url".into(), url.clone());
    }
    out
}

/// One paragraph: what the SLO promises and what counts as good.
pub fn explain(slo: &Slo) -> String {
    let mut text = format!(
        "SLO {}: {} of {}s are good over {} (good = {}; budget {}% of {}s).",
        slo.name,
        slo.objective,
        slo.kind.event(),
        slo.window,
        slo.kind.good_definition(&slo.target),
        format_number(slo.objective.budget_ratio() * 100.0),
        slo.kind.event()
    );
    if let Some(description) = &slo.description {
        text = format!("{text} {description}");
    }
    text
}

/// What to look at first, per SLI kind.
pub fn runbook(slo: &Slo) -> &'static str {
    match slo.kind {
        SliKind::Latency { .. } => "Probes are slow or failing. Run `pgdbre check -d DSN` for blocking locks, long transactions, checkpoint pressure and connection saturation; check host CPU and I/O; a failing probe counts as slow.",
        SliKind::ErrorRate => "Probes fail. Is the server up and accepting connections (`pgdbre check -d DSN`)? Look for max_connections reached, a failover in progress, a full disk or authentication changes.",
        SliKind::ReplicaLag => "A standby lags. Run `pgdbre check -d DSN` on the primary for replication lag and slots; look for long queries or conflicts on the standby, WAL volume spikes, and network or disk limits on the standby.",
        SliKind::RestoreTime => "The latest DR drill restored slower than the target. Review the drill evidence: backup size, WAL to replay, repository throughput and parallelism.",
    }
}

fn no_data_annotations(spec: &Spec, slo: &Slo) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "summary".to_string(),
            format!("{} {}: no SLI data", spec.service, slo.name),
        ),
        (
            "description".to_string(),
            format!(
                "{} There is no data to evaluate it: no data is never a met SLO. Check that `pgdbre serve` is running, reachable by Prometheus and probing this service.",
                explain(slo)
            ),
        ),
    ])
}

/// The rule file for a spec.
pub fn generate(spec: &Spec) -> RuleFile {
    let mut recording = Vec::new();
    let mut alerts = Vec::new();
    for slo in &spec.slos {
        if slo.kind == SliKind::RestoreTime {
            alerts.extend(drill_alerts(spec, slo));
            continue;
        }
        for window in recorded_windows(spec, slo) {
            recording.push(Rule {
                record: Some(ratio_record(window)),
                alert: None,
                expr: bad_ratio_expr(spec, slo, window).expect("burn-rate kinds have a ratio"),
                hold: None,
                labels: slo_labels(spec, slo),
                annotations: BTreeMap::new(),
            });
        }
        for pair in &spec.profile.pairs {
            let threshold = format_number(slo.objective.bad_ratio_at(pair.burn_rate));
            let expr = format!(
                "(\n  {} > {threshold}\nand\n  {} > {threshold}\n){}",
                recorded(spec, slo, pair.long),
                recorded(spec, slo, pair.short),
                guard(spec, slo, pair.long)
            );
            let mut rule = Rule::alert(ALERT_BURN, expr, pair.hold, burn_labels(spec, slo, pair));
            rule.annotations = burn_annotations(spec, slo, pair);
            alerts.push(rule);
        }
        let shortest = spec.profile.windows()[0];
        let series = recorded(spec, slo, shortest);
        let mut labels = slo_labels(spec, slo);
        labels.insert("severity".into(), "ticket".into());
        // `x != x` keeps NaN samples: a ratio of 0/0 when probes stopped counting.
        let mut rule = Rule::alert(
            ALERT_NO_DATA,
            format!("absent({series}) or ({series} != {series})"),
            Some(NO_DATA_FOR),
            labels,
        );
        rule.annotations = no_data_annotations(spec, slo);
        alerts.push(rule);
        for policy in policies_for(spec, slo) {
            alerts.push(policy_alert(spec, slo, policy));
        }
    }
    let mut groups = Vec::new();
    if !recording.is_empty() {
        groups.push(Group {
            name: format!("pgdbre-slo-{}-recording", spec.service),
            rules: recording,
        });
    }
    groups.push(Group {
        name: format!("pgdbre-slo-{}-alerts", spec.service),
        rules: alerts,
    });
    RuleFile { groups }
}

fn policy_alert(spec: &Spec, slo: &Slo, policy: &BurnPolicy) -> Rule {
    let op = if policy.inclusive { ">=" } else { ">" };
    let threshold = format_number(slo.objective.bad_ratio_at(policy.threshold));
    let mut labels = slo_labels(spec, slo);
    labels.insert("severity".into(), "info".into());
    labels.insert("action".into(), policy.action.label().into());
    labels.insert("over".into(), policy.over.to_string());
    let mut rule = Rule::alert(
        ALERT_POLICY,
        format!(
            "{} {op} {threshold}{}",
            recorded(spec, slo, policy.over),
            guard(spec, slo, policy.over)
        ),
        None,
        labels,
    );
    rule.annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "{} {}: burn rate {} over {}: {}",
                spec.service,
                slo.name,
                policy.condition(),
                policy.over,
                policy.action.label()
            ),
        ),
        (
            "description".to_string(),
            format!(
                "{} The burn policy `if_burn_rate: {}` over {} asks for `{}` (enforced by `pgdbre gate`).",
                explain(slo),
                policy.condition(),
                policy.over,
                policy.action.label()
            ),
        ),
    ]);
    rule
}

fn drill_alerts(spec: &Spec, slo: &Slo) -> Vec<Rule> {
    let gauge = selector(metrics::DRILL_RESTORE_SECONDS, &matchers(spec, &[]));
    let mut labels = slo_labels(spec, slo);
    labels.insert("severity".into(), "ticket".into());
    let mut over = Rule::alert(
        ALERT_DRILL,
        format!(
            "max({gauge}) {} {}",
            bad_comparison(slo),
            format_number(slo.target.value)
        ),
        None,
        labels.clone(),
    );
    over.annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "{} {}: the latest DR drill missed the restore-time target {}",
                spec.service, slo.name, slo.target
            ),
        ),
        ("description".to_string(), explain(slo)),
        ("runbook".to_string(), runbook(slo).to_string()),
    ]);
    let mut absent = Rule::alert(
        ALERT_NO_DATA,
        format!("absent_over_time({gauge}[{}])", slo.window),
        Some(NO_DATA_FOR),
        labels,
    );
    absent.annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!("{} {}: no DR drill in the last {}", spec.service, slo.name, slo.window),
        ),
        (
            "description".to_string(),
            format!("{} No drill reported a restore time in the window: no data is never a met SLO. Run `pgdbre drill`.", explain(slo)),
        ),
    ]);
    vec![over, absent]
}

/// The rule file as YAML, with a header naming its source.
pub fn render(spec: &Spec, source: &str) -> String {
    let body = serde_norway::to_string(&generate(spec)).expect("rule files serialize");
    format!("# Generated by `pgdbre slo rules {source}`; edit the spec, not this file.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "\
service: payments-db
slos:
  - name: read-latency
    sli: read_latency_p99
    target: \"< 40\"
    window: 30d
  - name: errors
    sli: error_rate
    target: \"< 0.1\"
    window: 30d
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
  - name: restore
    sli: restore_time
    target: \"< 600\"
    window: 90d
burn_policies:
  - if_burn_rate: \"> 2.0x\"
    over: 1h
    action: freeze-deploys
";

    fn spec() -> Spec {
        Spec::parse(SPEC, "slo.yaml").unwrap()
    }

    fn rules() -> RuleFile {
        generate(&spec())
    }

    #[test]
    fn records_every_profile_window_per_burn_slo() {
        let file = rules();
        let recording = &file.groups[0].rules;
        // 3 burn-rate SLOs × 7 windows (the 1h policy window is already in the profile).
        assert_eq!(recording.len(), 21);
        let names: Vec<&str> = recording[..7]
            .iter()
            .map(|r| r.record.as_deref().unwrap())
            .collect();
        assert_eq!(names[0], "slo:pgdbre_error_ratio:rate5m");
        assert_eq!(names[6], "slo:pgdbre_error_ratio:rate3d");
        assert_eq!(recording[0].labels["slo"], "read-latency");
        assert_eq!(recording[0].labels["service"], "payments-db");
    }

    #[test]
    fn latency_ratio_reads_the_bucket_and_all_probes() {
        let spec = spec();
        let expr = bad_ratio_expr(&spec, &spec.slos[0], "5m".parse().unwrap()).unwrap();
        assert_eq!(
            expr,
            "1 - ((sum(rate(pgdbre_probe_duration_seconds_bucket{probe=\"read\",le=~\"0\\\\.04\"}[5m])) or vector(0)) / sum(rate(pgdbre_probe_total{probe=\"read\"}[5m])))"
        );
    }

    #[test]
    fn error_and_lag_ratios() {
        let spec = spec();
        let w: Span = "1h".parse().unwrap();
        assert_eq!(
            bad_ratio_expr(&spec, &spec.slos[1], w).unwrap(),
            "(sum(rate(pgdbre_probe_total{result=\"error\"}[1h])) or vector(0)) / sum(rate(pgdbre_probe_total[1h]))"
        );
        assert_eq!(
            bad_ratio_expr(&spec, &spec.slos[2], w).unwrap(),
            "avg_over_time((max(max_over_time(pgdbre_replica_lag_seconds[1m])) > bool 5)[1h:1m])"
        );
        assert_eq!(bad_ratio_expr(&spec, &spec.slos[3], w), None);
    }

    #[test]
    fn count_queries_share_the_selectors_of_the_rules() {
        let spec = spec();
        let w: Span = "1h".parse().unwrap();
        assert_eq!(
            count_exprs(&spec, &spec.slos[0], w).unwrap(),
            CountExprs::Events {
                counted: "sum(increase(pgdbre_probe_duration_seconds_bucket{probe=\"read\",le=~\"0\\\\.04\"}[1h]))".into(),
                kind: Counted::Good,
                total: "sum(increase(pgdbre_probe_total{probe=\"read\"}[1h]))".into(),
            }
        );
        assert_eq!(
            count_exprs(&spec, &spec.slos[2], w).unwrap(),
            CountExprs::Minutes {
                bad: "sum_over_time((max(max_over_time(pgdbre_replica_lag_seconds[1m])) > bool 5)[1h:1m])".into(),
                observed: "count_over_time(max(max_over_time(pgdbre_replica_lag_seconds[1m]))[1h:1m])".into(),
            }
        );
        assert_eq!(count_exprs(&spec, &spec.slos[3], w), None);
    }

    #[test]
    fn selector_reaches_every_metric() {
        let text = format!("selector:\n  server: db1\n{SPEC}");
        let spec = Spec::parse(&text, "s").unwrap();
        let rendered = render(&spec, "s");
        for line in rendered
            .lines()
            .filter(|l| l.contains("pgdbre_") && l.contains("expr"))
        {
            if line.contains("slo:pgdbre") {
                continue;
            }
            assert!(
                line.contains("server=\\\"db1\\\"") || line.contains("server=\"db1\""),
                "{line}"
            );
        }
    }

    #[test]
    fn burn_alerts_pair_windows_with_thresholds() {
        let file = rules();
        let alerts = &file.groups[1].rules;
        let page = alerts
            .iter()
            .find(|r| r.alert.as_deref() == Some(ALERT_BURN) && r.labels["slo"] == "read-latency")
            .unwrap();
        assert!(page.expr.contains("slo:pgdbre_error_ratio:rate1h{slo=\"read-latency\",service=\"payments-db\"} > 0.144"), "{}", page.expr);
        assert!(page
            .expr
            .contains("rate5m{slo=\"read-latency\",service=\"payments-db\"} > 0.144"));
        assert!(page
            .expr
            .contains("and on() (sum(increase(pgdbre_probe_total{probe=\"read\"}[1h])) >= 100)"));
        assert_eq!(page.hold.as_deref(), Some("2m"));
        assert_eq!(page.labels["severity"], "page");
        assert!(
            page.annotations["description"].contains("spends 2% of the 30d error budget every 1h"),
            "{}",
            page.annotations["description"]
        );
        let count = alerts
            .iter()
            .filter(|r| r.alert.as_deref() == Some(ALERT_BURN))
            .count();
        assert_eq!(count, 12);
    }

    #[test]
    fn error_rate_thresholds_use_the_objective() {
        let file = rules();
        let alert = file.groups[1]
            .rules
            .iter()
            .find(|r| r.alert.as_deref() == Some(ALERT_BURN) && r.labels["slo"] == "errors")
            .unwrap();
        assert!(alert.expr.contains("> 0.0144"), "{}", alert.expr);
    }

    #[test]
    fn no_data_policy_and_drill_alerts() {
        let file = rules();
        let alerts = &file.groups[1].rules;
        let named = |name: &str| {
            alerts
                .iter()
                .filter(|r| r.alert.as_deref() == Some(name))
                .count()
        };
        assert_eq!(named(ALERT_NO_DATA), 4);
        assert_eq!(named(ALERT_POLICY), 3);
        assert_eq!(named(ALERT_DRILL), 1);
        let drill = alerts
            .iter()
            .find(|r| r.alert.as_deref() == Some(ALERT_DRILL))
            .unwrap();
        assert_eq!(drill.expr, "max(pgdbre_drill_restore_seconds) >= 600");
        let policy = alerts
            .iter()
            .find(|r| r.alert.as_deref() == Some(ALERT_POLICY))
            .unwrap();
        assert!(policy.expr.starts_with("slo:pgdbre_error_ratio:rate1h{slo=\"read-latency\",service=\"payments-db\"} > 0.02"), "{}", policy.expr);
        assert_eq!(policy.labels["action"], "freeze-deploys");
    }

    #[test]
    fn renders_yaml_with_header() {
        let text = render(&spec(), "slo.yaml");
        assert!(text.starts_with("# Generated by `pgdbre slo rules slo.yaml`"));
        let parsed: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            parsed["groups"][0]["name"].as_str(),
            Some("pgdbre-slo-payments-db-recording")
        );
        assert_eq!(parsed["groups"][1]["rules"][0]["for"].as_str(), Some("2m"));
    }
}
