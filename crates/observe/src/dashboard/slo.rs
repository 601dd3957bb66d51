//! The SLO section: each SLO of the `--slo` spec evaluated from the state store, exactly as
//! `pgdbre slo status` does (same function, same "unknown is never met"), plus the burn-rate
//! history for the chart, computed by evaluating the chart's window at earlier minutes.
//!
//! The chart spans the stored history — at least 1 h, at most 24 h — so a new installation
//! shows its first hour in detail instead of a sliver at the edge of a 24 h axis.

use super::model::{BurnCell, BurnChart, Health, SloView, Threshold};
use pgdbre_slo::budget::format_number;
use pgdbre_slo::status::{self, SloStatus, WindowStatus};
use pgdbre_slo::{Evaluation, EventSource, Severity, Slo, Span, Spec};
use std::time::{Duration, SystemTime};

/// Minutes since the Unix epoch (the state store's unit; plain arithmetic for the plan).
type Minute = i64;

/// Which minutes the chart has a point for: `count` points `step` minutes apart, the last one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartPlan {
    /// The minute of the first point.
    pub first: Minute,
    pub step: i64,
    pub count: usize,
}

impl ChartPlan {
    /// How long before `now` point `index` is.
    fn before_now(&self, index: usize) -> Duration {
        let steps = (self.count - 1 - index) as u64;
        Duration::from_secs(steps * self.step as u64 * 60)
    }
}

const MIN_SPAN: i64 = 60;
const MAX_SPAN: i64 = 1_440;
/// Steps a chart may use, in minutes; the finest one giving at most about 72 points is taken.
const STEPS: [i64; 9] = [1, 2, 5, 10, 15, 20, 30, 60, 120];

/// The chart's points for a store whose oldest sample (in the last 24 h) is in `first_data`.
pub fn plan(first_data: Option<Minute>, now: Minute) -> ChartPlan {
    let history = first_data.map_or(0, |first| now - first + 1).max(1);
    // Whole hours, rounded up.
    let span = ((history + 59) / 60 * 60).clamp(MIN_SPAN, MAX_SPAN);
    let step = STEPS
        .into_iter()
        .find(|step| span / step <= 72)
        .unwrap_or(120);
    let span = span / step * step;
    ChartPlan {
        first: now - span,
        step,
        count: (span / step) as usize + 1,
    }
}

/// The window each point's burn rate is computed over: the long window of the fastest page
/// alert (1h in the standard profiles), so the chart compares with the page line.
pub fn chart_window(spec: &Spec) -> Span {
    spec.profile
        .pairs
        .iter()
        .filter(|pair| pair.severity == Severity::Page)
        .map(|pair| pair.long)
        .min()
        .unwrap_or(Span::HOUR)
}

/// The 1x line and one line per alert threshold of the profile (a 1x threshold joins the 1x line).
pub fn thresholds(spec: &Spec) -> Vec<Threshold> {
    let mut one = "1x".to_string();
    let mut lines = Vec::new();
    for pair in &spec.profile.pairs {
        let health = match pair.severity {
            Severity::Page => Health::Bad,
            Severity::Ticket => Health::Warning,
        };
        if pair.burn_rate == 1.0 {
            one = format!("1x = {} ({})", pair.severity, pair.long);
            continue;
        }
        lines.push(Threshold {
            rate: pair.burn_rate,
            label: format!(
                "{} {}x ({})",
                pair.severity,
                format_number(pair.burn_rate),
                pair.long
            ),
            health,
        });
    }
    lines.push(Threshold {
        rate: 1.0,
        label: one,
        health: Health::Good,
    });
    lines
}

/// The minute since the epoch of `time`.
fn minute_of(time: SystemTime) -> Minute {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 60) as i64)
}

/// How many minutes of the last 24 h have data, to the hour (`None`: none at all).
fn history<S: EventSource + ?Sized>(
    source: &S,
    spec: &Spec,
    now: SystemTime,
) -> Result<Option<Minute>, S::Error> {
    // Oldest hour first: a source with a day of history answers on the first query.
    for hours_back in (0..24u64).rev() {
        let end = now - Duration::from_secs(hours_back * 3_600);
        for slo in &spec.slos {
            let hour = status::evaluate_window(source, spec, slo, Span::HOUR, end)?;
            if hour.counts.total > 0 {
                return Ok(Some(minute_of(end) - 59));
            }
        }
    }
    Ok(None)
}

/// Every SLO of `spec` as of `now`, with its chart.
pub fn views<S: EventSource + ?Sized>(
    source: &S,
    spec: &Spec,
    now: SystemTime,
) -> Result<Vec<SloView>, S::Error> {
    let statuses = status::status(source, spec, now)?;
    let plan = plan(history(source, spec, now)?, minute_of(now));
    let window = chart_window(spec);
    let lines = thresholds(spec);
    statuses
        .iter()
        .map(|slo_status| {
            let points = (0..plan.count)
                .map(|i| {
                    let end = now - plan.before_now(i);
                    let point =
                        status::evaluate_window(source, spec, &slo_status.slo, window, end)?;
                    Ok(known_rate(&point))
                })
                .collect::<Result<Vec<_>, S::Error>>()?;
            Ok(view(
                spec,
                slo_status,
                BurnChart {
                    first_minute: plan.first,
                    step_minutes: plan.step,
                    window: window.to_string(),
                    points,
                    thresholds: lines.clone(),
                },
            ))
        })
        .collect()
}

/// The SLOs with nothing evaluated (no state store): every value unknown, with `reason`.
pub fn unknown_views(spec: &Spec, now: SystemTime, reason: &str) -> Vec<SloView> {
    let plan = plan(None, minute_of(now));
    spec.slos
        .iter()
        .map(|slo| {
            let chart = BurnChart {
                first_minute: plan.first,
                step_minutes: plan.step,
                window: chart_window(spec).to_string(),
                points: vec![None; plan.count],
                thresholds: thresholds(spec),
            };
            SloView {
                unknown_reason: Some(reason.to_string()),
                ..unknown(slo, chart)
            }
        })
        .collect()
}

/// An SLO of which nothing is known yet.
fn unknown(slo: &Slo, chart: BurnChart) -> SloView {
    SloView {
        name: slo.name.clone(),
        indicator: format!("{} {}", slo.kind, slo.target),
        objective: format!("{} over {}", slo.objective, slo.window),
        health: Health::Unknown,
        sli_percent: None,
        unknown_reason: None,
        budget_remaining: None,
        burn: Vec::new(),
        chart,
    }
}

/// The burn rate when the window is known (and the SLI has a source at all).
fn known_rate(window: &WindowStatus) -> Option<f64> {
    match (&window.evaluation, window.no_source) {
        (Evaluation::Known(report), None) => Some(report.burn_rate),
        _ => None,
    }
}

/// A burn rate's colour, the same on every window: at or above a page threshold of the profile
/// red, at or above a ticket threshold or above 1x (the budget would not last the window) amber.
fn burn_health(spec: &Spec, rate: Option<f64>) -> Health {
    let Some(rate) = rate else {
        return Health::Unknown;
    };
    let reached = spec
        .profile
        .pairs
        .iter()
        .filter(|pair| rate >= pair.burn_rate)
        .map(|pair| pair.severity)
        .min();
    match reached {
        Some(Severity::Page) => Health::Bad,
        Some(Severity::Ticket) => Health::Warning,
        None if rate > 1.0 => Health::Warning,
        None => Health::Good,
    }
}

/// Whether a page alert's long window burns at its threshold (the first half of its condition).
fn page_burning(spec: &Spec, burn: &[WindowStatus]) -> bool {
    spec.profile
        .pairs
        .iter()
        .filter(|pair| pair.severity == Severity::Page)
        .any(|pair| {
            burn.iter()
                .filter(|w| w.window == pair.long)
                .filter_map(known_rate)
                .any(|rate| rate >= pair.burn_rate)
        })
}

fn view(spec: &Spec, slo_status: &SloStatus, chart: BurnChart) -> SloView {
    let slo = &slo_status.slo;
    let window = &slo_status.window;
    let known = match (&window.evaluation, window.no_source) {
        (Evaluation::Known(report), None) => Some(report),
        _ => None,
    };
    let burn: Vec<BurnCell> = slo_status
        .burn
        .iter()
        .map(|w| {
            let rate = known_rate(w);
            BurnCell {
                window: w.window.to_string(),
                rate,
                reason: w.unknown_reason(),
                health: burn_health(spec, rate),
            }
        })
        .collect();
    let health = match known {
        None => Health::Unknown,
        Some(report) if !report.met => Health::Bad,
        // Met so far, but a page-level burn will spend the budget soon.
        Some(_) if page_burning(spec, &slo_status.burn) => Health::Warning,
        Some(_) => Health::Good,
    };
    SloView {
        health,
        sli_percent: known.map(|r| r.counts.good as f64 * 100.0 / r.counts.total as f64),
        unknown_reason: window.unknown_reason(),
        budget_remaining: known.map(|r| r.remaining),
        burn,
        ..unknown(slo, chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdbre_store::{Batch, LagMinute, ProbeMinute, SqliteStore, Store};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SPEC: &str = "
service: payments-db
slos:
  - name: availability
    sli: error_rate
    target: \"< 0.1\"
    window: 30d
  - name: replica-lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
  - name: restore-time
    sli: restore_time
    target: \"< 600\"
    window: 90d
    objective: 75
alerting:
  profile: standard-30d
";

    fn spec() -> Spec {
        Spec::parse(SPEC, "slo.yaml").expect("valid spec")
    }

    /// A directory removed when the test ends, also when it fails.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pgdbre-dashboard-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn plan_follows_the_history_between_an_hour_and_a_day() {
        let now = 29_000_000;
        let young = plan(Some(now - 10), now);
        assert_eq!((young.step, young.count), (1, 61));
        assert_eq!(young.first, now - 60);
        let none = plan(None, now);
        assert_eq!(none, young);
        let five_hours = plan(Some(now - 299), now);
        assert_eq!(five_hours.first, now - 300);
        assert_eq!(five_hours.step, 5);
        let old = plan(Some(now - 10_000), now);
        assert_eq!((old.first, old.step, old.count), (now - 1_440, 20, 73));
        for p in [young, five_hours, old] {
            assert_eq!(p.first + (p.count as i64 - 1) * p.step, now, "{p:?}");
            assert_eq!(p.before_now(p.count - 1), Duration::ZERO);
        }
    }

    #[test]
    fn thresholds_come_from_the_profile() {
        let lines = thresholds(&spec());
        let labels: Vec<(&str, f64, Health)> = lines
            .iter()
            .map(|t| (t.label.as_str(), t.rate, t.health))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("page 14.4x (1h)", 14.4, Health::Bad),
                ("page 6x (6h)", 6.0, Health::Bad),
                ("ticket 3x (1d)", 3.0, Health::Warning),
                ("1x = ticket (3d)", 1.0, Health::Good),
            ]
        );
        assert_eq!(chart_window(&spec()), Span::HOUR);
    }

    #[test]
    fn burn_colours_follow_the_profile_thresholds() {
        let spec = spec();
        assert_eq!(burn_health(&spec, None), Health::Unknown);
        assert_eq!(burn_health(&spec, Some(0.4)), Health::Good);
        assert_eq!(burn_health(&spec, Some(1.0)), Health::Warning);
        assert_eq!(burn_health(&spec, Some(2.0)), Health::Warning);
        assert_eq!(burn_health(&spec, Some(5.9)), Health::Warning);
        assert_eq!(burn_health(&spec, Some(6.0)), Health::Bad);
        assert_eq!(burn_health(&spec, Some(80.0)), Health::Bad);
    }

    #[test]
    fn at_risk_only_when_a_page_alerts_long_window_burns() {
        let spec = spec();
        let objective = spec.slos[0].objective;
        let window = |text: &str, good: u64| {
            let counts = pgdbre_slo::EventCounts { good, total: 1_000 };
            WindowStatus {
                window: text.parse().unwrap(),
                evaluation: pgdbre_slo::evaluate(objective, Some(counts), 100),
                counts,
                no_source: None,
            }
        };
        // 100 bad of 1000 at 99.9 %: 100x, but on the 5m window only.
        assert!(!page_burning(
            &spec,
            &[window("5m", 900), window("1h", 1_000)]
        ));
        // 15 bad of 1000 over 1h: 15x, above the 14.4x page threshold of the 1h pair.
        assert!(page_burning(
            &spec,
            &[window("5m", 1_000), window("1h", 985)]
        ));
        // 10x over 6h is above the 6x page threshold of the 6h pair.
        assert!(page_burning(&spec, &[window("6h", 990)]));
    }

    #[test]
    fn views_from_a_real_store() {
        let dir = TempDir::new();
        let path = dir.0.join("state.db");
        let now = SystemTime::now();
        let minute = minute_of(now);
        let server = "db:5432/app";
        let mut store = SqliteStore::open(&path).expect("open store");
        // 90 complete minutes of read probes, 300 a minute; 30 errors 20 minutes ago.
        let batch = Batch {
            probes: (1..=90)
                .map(|ago| ProbeMinute {
                    server: server.into(),
                    probe: "read".into(),
                    minute: minute - ago,
                    attempts: 300,
                    errors: if ago == 20 { 30 } else { 0 },
                    within: Vec::new(),
                })
                .collect(),
            lags: (1..=90)
                .map(|ago| LagMinute {
                    server: server.into(),
                    standby: server.into(),
                    minute: minute - ago,
                    max_lag_seconds: 0.5,
                })
                .collect(),
        };
        store.record(&batch, minute).expect("record");
        drop(store);

        let store = SqliteStore::open_read_only(&path).expect("read store");
        let views = views(&store, &spec(), now).expect("views");
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["availability", "replica-lag", "restore-time"]);

        let availability = &views[0];
        // 30 bad of 27000: 0.111 % bad, above the 0.1 % budget.
        assert_eq!(availability.health, Health::Bad);
        let sli = availability.sli_percent.expect("known SLI");
        assert!((sli - 99.8889).abs() < 0.001, "{sli}");
        assert!(availability.budget_remaining.expect("known budget") < 0.0);
        let chart = &availability.chart;
        // 90 minutes of history: a 2-hour axis, a point every 2 minutes.
        assert_eq!((chart.step_minutes, chart.points.len()), (2, 61));
        // Two hours back there was nothing yet; now there is.
        assert_eq!(chart.points[0], None);
        let last = chart.points.last().copied().flatten().expect("known now");
        // The window ending now holds the 30 errors: 30 / 17700 bad over a 0.1 % budget.
        assert!((last - 30.0 / 17_700.0 / 0.001).abs() < 0.01, "{last}");
        // Before the errors and after them the hour looks different.
        let before = chart.points[chart.points.len() - 12].expect("known");
        assert!(before < last, "{before} vs {last}");

        let lag = &views[1];
        // 90 minutes of a 30-day window: the SLO itself is unknown, its last hour is known.
        assert_eq!(lag.health, Health::Unknown, "{lag:?}");
        assert!(lag.unknown_reason.as_deref().unwrap().contains("no sample"));
        let hour = lag.burn.iter().find(|c| c.window == "1h").expect("1h");
        assert_eq!((hour.rate, hour.health), (Some(0.0), Health::Good));
        assert_eq!(lag.chart.points.last().copied().flatten(), Some(0.0));
        // The 5m burn window has fewer minutes than min_events: unknown, never healthy.
        let five = lag.burn.iter().find(|c| c.window == "5m").expect("5m");
        assert_eq!((five.rate, five.health), (None, Health::Unknown));

        let restore = &views[2];
        assert_eq!(restore.health, Health::Unknown);
        assert!(restore.chart.points.iter().all(Option::is_none));
        // No drills recorded: unknown, with the reason shown.
        assert!(restore.unknown_reason.is_some(), "{restore:?}");
        assert_eq!(restore.budget_remaining, None);
    }

    #[test]
    fn without_a_store_everything_is_unknown() {
        let views = unknown_views(&spec(), SystemTime::now(), "no state store");
        assert_eq!(views.len(), 3);
        for view in views {
            assert_eq!(view.health, Health::Unknown);
            assert_eq!(view.budget_remaining, None);
            assert!(view.chart.points.iter().all(Option::is_none));
            assert_eq!(view.unknown_reason.as_deref(), Some("no state store"));
        }
    }
}
