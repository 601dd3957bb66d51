//! Generates a `promtool test rules` file for the rules of a spec.
//!
//! Each scenario feeds synthetic probe, lag and drill series with a constant bad ratio, and the
//! expected alerts are computed from a small model of the rules: an alert fires when the ratio is
//! above its threshold, the long window holds `min_events`, and its `for:` has elapsed. Scenarios
//! per SLO: a burn well above the fastest page threshold (must page), a burn just below the
//! slowest page threshold (must not page), plus a healthy run (nothing fires) and no data at all
//! (every SLO reports no data). The evaluation time is moved away from every `for:` boundary so
//! the expectation is never a coin toss on sample alignment.

use crate::budget::format_number;
use crate::metrics;
use crate::profile::Severity;
use crate::rules::{self, ALERT_BURN, ALERT_DRILL, ALERT_NO_DATA};
use crate::sli::{Comparison, Probe, SliKind};
use crate::spec::{Slo, Spec};
use serde::Serialize;
use std::collections::BTreeMap;

/// Probes per minute per probe kind in the generated series.
const PROBES_PER_MINUTE: f64 = 60.0;
/// Minutes of margin kept between the evaluation time and any alert's firing time.
const MARGIN_MINUTES: f64 = 3.0;
/// Minutes before the first ratio exists (two samples one minute apart).
const FIRST_RATIO_MINUTES: f64 = 2.0;

#[derive(Debug, Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<TestCase>,
}

#[derive(Debug, Serialize)]
struct TestCase {
    name: String,
    interval: String,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Debug, Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Serialize)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Serialize)]
struct ExpectedAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

/// One probe kind's traffic, per minute.
#[derive(Debug, Clone, Copy)]
struct Stream {
    total: f64,
    errors: f64,
    /// Successful probes slower than every bucket (only in `+Inf`).
    slow: f64,
}

impl Stream {
    fn healthy() -> Stream {
        Stream {
            total: PROBES_PER_MINUTE,
            errors: 0.0,
            slow: 0.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    read: Option<Stream>,
    commit: Option<Stream>,
    lag_seconds: Option<f64>,
    drill_seconds: Option<f64>,
}

impl Scenario {
    fn stream(&self, probe: Probe) -> Option<Stream> {
        match probe {
            Probe::Read => self.read,
            Probe::Commit => self.commit,
        }
    }
}

fn is_bad(slo: &Slo, measured: f64) -> bool {
    !slo.target.is_good(measured)
}

/// The bad ratio the rules will compute for `slo` in `scenario`; `None` without data.
fn bad_ratio(slo: &Slo, scenario: &Scenario) -> Option<f64> {
    match slo.kind {
        SliKind::Latency { probe, .. } => {
            let s = scenario.stream(probe)?;
            Some((s.errors + s.slow) / s.total)
        }
        SliKind::ErrorRate => {
            let streams: Vec<Stream> = [scenario.read, scenario.commit]
                .into_iter()
                .flatten()
                .collect();
            let total: f64 = streams.iter().map(|s| s.total).sum();
            (total > 0.0).then(|| streams.iter().map(|s| s.errors).sum::<f64>() / total)
        }
        SliKind::ReplicaLag => scenario
            .lag_seconds
            .map(|lag| if is_bad(slo, lag) { 1.0 } else { 0.0 }),
        SliKind::RestoreTime => None,
    }
}

fn events_per_minute(slo: &Slo, scenario: &Scenario) -> f64 {
    match slo.kind {
        SliKind::Latency { probe, .. } => scenario.stream(probe).map_or(0.0, |s| s.total),
        SliKind::ErrorRate => [scenario.read, scenario.commit]
            .into_iter()
            .flatten()
            .map(|s| s.total)
            .sum(),
        SliKind::ReplicaLag => 1.0,
        SliKind::RestoreTime => 0.0,
    }
}

/// Minutes after the start at which an alert becomes active (`None`: never). It fires once
/// its `for:` has also elapsed.
type Activation = Option<f64>;

/// Each expected alert: its name, when its condition starts holding, its hold, labels, annotations.
struct Candidate {
    alertname: &'static str,
    active_from: Activation,
    hold_minutes: f64,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn candidates(spec: &Spec, scenario: &Scenario) -> Vec<Candidate> {
    let mut out = Vec::new();
    let rule_file = rules::generate(spec);
    let annotations_of = |alertname: &str, labels: &BTreeMap<String, String>| {
        rule_file
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| {
                r.alert.as_deref() == Some(alertname)
                    && r.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|r| r.annotations.clone())
            .unwrap_or_default()
    };
    let no_data_minutes = rules::NO_DATA_FOR.as_secs_f64() / 60.0;
    for slo in &spec.slos {
        let mut base = BTreeMap::from([
            ("service".to_string(), spec.service.clone()),
            ("slo".to_string(), slo.name.clone()),
            ("severity".to_string(), "ticket".to_string()),
        ]);
        if slo.kind == SliKind::RestoreTime {
            let drill_bad = scenario.drill_seconds.is_some_and(|d| is_bad(slo, d));
            out.push(Candidate {
                alertname: ALERT_DRILL,
                active_from: drill_bad.then_some(0.0),
                hold_minutes: 0.0,
                annotations: annotations_of(ALERT_DRILL, &base),
                labels: base.clone(),
            });
            // absent_over_time keeps the selector's equality labels.
            let annotations = annotations_of(ALERT_NO_DATA, &base);
            base.extend(spec.selector.iter().cloned());
            out.push(Candidate {
                alertname: ALERT_NO_DATA,
                active_from: scenario.drill_seconds.is_none().then_some(0.0),
                hold_minutes: no_data_minutes,
                labels: base,
                annotations,
            });
            continue;
        }
        let ratio = bad_ratio(slo, scenario);
        out.push(Candidate {
            alertname: ALERT_NO_DATA,
            active_from: ratio.is_none().then_some(0.0),
            hold_minutes: no_data_minutes,
            annotations: annotations_of(ALERT_NO_DATA, &base),
            labels: base,
        });
        let rate = events_per_minute(slo, scenario);
        for pair in &spec.profile.pairs {
            let threshold = slo.objective.bad_ratio_at(pair.burn_rate);
            let long_minutes = pair.long.as_secs_f64() / 60.0;
            // The guard holds once the long window has seen `min_events` events.
            let guard_from = if slo.min_events == 0 {
                Some(0.0)
            } else if rate > 0.0 && slo.min_events as f64 / rate <= long_minutes {
                Some(slo.min_events as f64 / rate)
            } else {
                None
            };
            let active_from = match (ratio, guard_from) {
                (Some(r), Some(g)) if r > threshold => Some(g.max(FIRST_RATIO_MINUTES)),
                _ => None,
            };
            let labels = rules::burn_labels(spec, slo, pair);
            out.push(Candidate {
                alertname: ALERT_BURN,
                active_from,
                hold_minutes: pair.hold.map_or(0.0, |h| h.as_secs_f64() / 60.0),
                annotations: rules::burn_annotations(spec, slo, pair),
                labels,
            });
        }
    }
    out
}

/// An evaluation time (minutes) that is at least the margin away from every firing time.
fn evaluation_minutes(candidates: &[Candidate]) -> f64 {
    let mut t = 90.0;
    for _ in 0..100 {
        let clear = candidates.iter().all(|c| match c.active_from {
            Some(from) => (t - from - c.hold_minutes).abs() >= MARGIN_MINUTES,
            None => true,
        });
        if clear {
            return t;
        }
        t += 7.0;
    }
    t
}

fn label_text(labels: &[(String, String)]) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", parts.join(","))
}

fn counter(per_minute: f64, samples: u64) -> String {
    format!("0+{}x{samples}", format_number(per_minute))
}

fn input_series(spec: &Spec, scenario: &Scenario, samples: u64) -> Vec<InputSeries> {
    let mut base: Vec<(String, String)> = spec.selector.clone();
    if !base.iter().any(|(k, _)| k == metrics::SERVER_LABEL) {
        base.push((metrics::SERVER_LABEL.into(), "db1:5432/app".into()));
    }
    let with = |extra: &[(&str, &str)]| {
        let mut labels = base.clone();
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        label_text(&labels)
    };
    let mut out = Vec::new();
    for (probe, stream) in [
        (Probe::Read, scenario.read),
        (Probe::Commit, scenario.commit),
    ] {
        let Some(s) = stream else { continue };
        let p = probe.label();
        let ok = s.total - s.errors;
        let fast = ok - s.slow;
        out.push(InputSeries {
            series: format!(
                "{}{}",
                metrics::PROBE_TOTAL,
                with(&[("probe", p), ("result", metrics::RESULT_OK)])
            ),
            values: counter(ok, samples),
        });
        out.push(InputSeries {
            series: format!(
                "{}{}",
                metrics::PROBE_TOTAL,
                with(&[("probe", p), ("result", metrics::RESULT_ERROR)])
            ),
            values: counter(s.errors, samples),
        });
        for bound in metrics::PROBE_DURATION_BUCKETS {
            let le = format!("{bound}");
            out.push(InputSeries {
                series: format!(
                    "{}_bucket{}",
                    metrics::PROBE_DURATION_SECONDS,
                    with(&[("probe", p), ("le", &le)])
                ),
                values: counter(fast, samples),
            });
        }
        out.push(InputSeries {
            series: format!(
                "{}_bucket{}",
                metrics::PROBE_DURATION_SECONDS,
                with(&[("probe", p), ("le", "+Inf")])
            ),
            values: counter(ok, samples),
        });
        out.push(InputSeries {
            series: format!(
                "{}_count{}",
                metrics::PROBE_DURATION_SECONDS,
                with(&[("probe", p)])
            ),
            values: counter(ok, samples),
        });
    }
    if let Some(lag) = scenario.lag_seconds {
        out.push(InputSeries {
            series: format!(
                "{}{}",
                metrics::REPLICA_LAG_SECONDS,
                with(&[("standby", "standby1")])
            ),
            values: format!("{}+0x{samples}", format_number(lag)),
        });
    }
    if let Some(drill) = scenario.drill_seconds {
        out.push(InputSeries {
            series: format!("{}{}", metrics::DRILL_RESTORE_SECONDS, with(&[])),
            values: format!("{}+0x{samples}", format_number(drill)),
        });
    }
    if out.is_empty() {
        // promtool needs some input; an unrelated series keeps "no data" meaningful.
        out.push(InputSeries {
            series: "up{job=\"unrelated\"}".into(),
            values: "1+0x10".into(),
        });
    }
    out
}

fn test_case(spec: &Spec, scenario: &Scenario) -> TestCase {
    let candidates = candidates(spec, scenario);
    let t = evaluation_minutes(&candidates);
    let mut names = vec![ALERT_BURN, ALERT_NO_DATA];
    if spec.slos.iter().any(|s| s.kind == SliKind::RestoreTime) {
        names.push(ALERT_DRILL);
    }
    let alert_rule_test = names
        .into_iter()
        .map(|alertname| AlertTest {
            eval_time: format!("{}m", t as u64),
            alertname: alertname.to_string(),
            exp_alerts: candidates
                .iter()
                .filter(|c| c.alertname == alertname)
                .filter(|c| {
                    c.active_from
                        .is_some_and(|from| t - from - c.hold_minutes >= MARGIN_MINUTES)
                })
                .map(|c| ExpectedAlert {
                    exp_labels: c.labels.clone(),
                    exp_annotations: c.annotations.clone(),
                })
                .collect(),
        })
        .collect();
    TestCase {
        name: scenario.name.clone(),
        interval: "1m".into(),
        input_series: input_series(spec, scenario, t as u64 + 10),
        alert_rule_test,
    }
}

fn healthy(spec: &Spec) -> Scenario {
    let has = |f: fn(&SliKind) -> bool| spec.slos.iter().any(|s| f(&s.kind));
    let drill = spec
        .slos
        .iter()
        .filter(|s| s.kind == SliKind::RestoreTime)
        .map(|s| s.target.value / 2.0)
        .reduce(f64::min);
    Scenario {
        name: "healthy: nothing burns".into(),
        read: Some(Stream::healthy()),
        commit: Some(Stream::healthy()),
        lag_seconds: has(|k| *k == SliKind::ReplicaLag).then_some(0.0),
        drill_seconds: drill,
    }
}

/// The scenario that puts `slo` at bad ratio `ratio`, everything else healthy.
fn burning(spec: &Spec, slo: &Slo, ratio: f64, name: String) -> Scenario {
    let mut scenario = healthy(spec);
    scenario.name = name;
    match slo.kind {
        SliKind::Latency { probe, .. } => {
            let s = Stream {
                slow: ratio * PROBES_PER_MINUTE,
                ..Stream::healthy()
            };
            match probe {
                Probe::Read => scenario.read = Some(s),
                Probe::Commit => scenario.commit = Some(s),
            }
        }
        SliKind::ErrorRate => {
            let s = Stream {
                errors: ratio * PROBES_PER_MINUTE,
                ..Stream::healthy()
            };
            scenario.read = Some(s);
            scenario.commit = Some(s);
        }
        SliKind::ReplicaLag => {
            scenario.lag_seconds = Some(match slo.target.comparison {
                Comparison::AtMost => slo.target.value * 2.0 + 1.0,
                Comparison::Below => slo.target.value,
            })
        }
        SliKind::RestoreTime => scenario.drill_seconds = Some(slo.target.value * 1.5),
    }
    scenario
}

fn scenarios(spec: &Spec) -> Vec<Scenario> {
    let mut out = vec![
        healthy(spec),
        Scenario {
            name: "no data: every SLO reports it".into(),
            read: None,
            commit: None,
            lag_seconds: None,
            drill_seconds: None,
        },
    ];
    let pages: Vec<f64> = spec
        .profile
        .pairs
        .iter()
        .filter(|p| p.severity == Severity::Page)
        .map(|p| p.burn_rate)
        .collect();
    for slo in &spec.slos {
        if slo.kind == SliKind::RestoreTime {
            out.push(burning(
                spec,
                slo,
                1.0,
                format!("{}: a drill over the target", slo.name),
            ));
            continue;
        }
        let Some(fastest) = pages.iter().copied().reduce(f64::max) else {
            continue;
        };
        let threshold = slo.objective.bad_ratio_at(fastest);
        let ratio = (threshold * 1.5).min((1.0 + threshold) / 2.0);
        out.push(burning(
            spec,
            slo,
            ratio,
            format!(
                "{}: burn {}x pages",
                slo.name,
                format_number(ratio / slo.objective.budget_ratio())
            ),
        ));
        if slo.kind.is_time_slice() {
            // A constant lag makes every minute good or bad; fractional burns need varied lag.
            continue;
        }
        let slowest = pages.iter().copied().reduce(f64::min).unwrap_or(fastest);
        let below = slowest * 0.9;
        out.push(burning(
            spec,
            slo,
            slo.objective.bad_ratio_at(below),
            format!(
                "{}: burn {}x, just below the {}x page, does not page",
                slo.name,
                format_number(below),
                format_number(slowest)
            ),
        ));
    }
    out
}

/// The promtool test file; `rule_file` is the path of the generated rules, relative to it.
pub fn render(spec: &Spec, rule_file: &str) -> String {
    let file = TestFile {
        rule_files: vec![rule_file.to_string()],
        evaluation_interval: "1m".into(),
        tests: scenarios(spec).iter().map(|s| test_case(spec, s)).collect(),
    };
    let body = serde_norway::to_string(&file).expect("test files serialize");
    format!(
        "# Generated by `pgdbre slo rules --tests`; run with `promtool test rules FILE`.\n{body}"
    )
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
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
  - name: restore
    sli: restore_time
    target: \"< 600\"
    window: 90d
";

    fn spec() -> Spec {
        Spec::parse(SPEC, "slo.yaml").unwrap()
    }

    fn expected(
        spec: &Spec,
        scenario: &Scenario,
        alertname: &str,
    ) -> Vec<BTreeMap<String, String>> {
        let case = test_case(spec, scenario);
        case.alert_rule_test
            .into_iter()
            .filter(|t| t.alertname == alertname)
            .flat_map(|t| t.exp_alerts)
            .map(|a| a.exp_labels)
            .collect()
    }

    #[test]
    fn healthy_expects_nothing() {
        let spec = spec();
        let scenario = healthy(&spec);
        for name in [ALERT_BURN, ALERT_NO_DATA, ALERT_DRILL] {
            assert!(expected(&spec, &scenario, name).is_empty(), "{name}");
        }
    }

    #[test]
    fn page_scenario_expects_pages_whose_hold_elapsed() {
        let spec = spec();
        let slo = spec.slo("read-latency").unwrap();
        let scenario = burning(&spec, slo, 0.216, "x".into());
        let fired: Vec<String> = expected(&spec, &scenario, ALERT_BURN)
            .iter()
            .map(|l| {
                format!(
                    "{} {}/{}",
                    l["severity"], l["long_window"], l["short_window"]
                )
            })
            .collect();
        // At 90 minutes: both pages and the 1d ticket (for 1h) fire, the 3d ticket (for 3h) not yet.
        assert_eq!(fired, ["page 1h/5m", "page 6h/30m", "ticket 1d/2h"]);
    }

    #[test]
    fn just_below_page_expects_no_page() {
        let spec = spec();
        let slo = spec.slo("read-latency").unwrap();
        let scenario = burning(&spec, slo, slo.objective.bad_ratio_at(5.4), "x".into());
        let severities: Vec<String> = expected(&spec, &scenario, ALERT_BURN)
            .iter()
            .map(|l| l["severity"].clone())
            .collect();
        assert_eq!(severities, ["ticket"]);
    }

    #[test]
    fn no_data_expects_every_slo() {
        let spec = spec();
        let scenario = scenarios(&spec).into_iter().nth(1).unwrap();
        let slos: Vec<String> = expected(&spec, &scenario, ALERT_NO_DATA)
            .iter()
            .map(|l| l["slo"].clone())
            .collect();
        assert_eq!(slos, ["read-latency", "lag", "restore"]);
    }

    #[test]
    fn evaluation_time_avoids_for_boundaries() {
        let candidate = |from: f64, hold: f64| Candidate {
            alertname: ALERT_BURN,
            active_from: Some(from),
            hold_minutes: hold,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        assert_eq!(evaluation_minutes(&[candidate(2.0, 60.0)]), 90.0);
        // 2 + 87 = 89 is within 3 minutes of 90: move on to 97.
        assert_eq!(evaluation_minutes(&[candidate(2.0, 87.0)]), 97.0);
    }

    #[test]
    fn renders_valid_yaml() {
        let text = render(&spec(), "slo.rules.yaml");
        let parsed: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(parsed["rule_files"][0].as_str(), Some("slo.rules.yaml"));
        assert!(parsed["tests"].as_sequence().unwrap().len() >= 5);
    }
}
