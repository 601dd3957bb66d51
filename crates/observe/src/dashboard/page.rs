//! The dashboard page: the view model of `model.rs` as one HTML document with its stylesheet
//! inline and no script. Every string that came from the database, the spec or the catalog goes
//! through [`escape`]; numbers are formatted here.

use super::escape::escape;
use super::model::{
    BurnCell, FindingsSection, Health, LagRow, Page, SloSection, SloView, TargetRow,
};
use super::svg::burn_chart;
use std::fmt::Write as _;

const STYLE: &str = "
:root{--good:#1a7f37;--warning:#b35900;--bad:#cf222e;--unknown:#6e7781;--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:var(--ink);background:#fff}
header.top{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem 1.5rem;padding:1rem 1.5rem;border-bottom:1px solid var(--line);background:var(--panel)}
header.top h1{margin:0;font-size:1.35rem}
header.top nav a{margin-right:1rem;color:#0969da}
.muted{color:var(--muted)}
main{padding:0 1.5rem 2rem;max-width:1400px}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
.targets{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;font-size:.9rem}
.dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.35rem;background:var(--unknown)}
.dot.good{background:var(--good)}.dot.bad{background:var(--bad)}
.slos{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:1rem}
.slo{border:1px solid var(--line);border-left:5px solid var(--unknown);border-radius:6px;padding:.8rem 1rem}
.slo.good{border-left-color:var(--good)}.slo.warning{border-left-color:var(--warning)}.slo.bad{border-left-color:var(--bad)}
.slo h3{margin:0;font-size:1.05rem;display:flex;justify-content:space-between;align-items:center;gap:.5rem}
.slo p{margin:.2rem 0}
.badge{font-size:.75rem;font-weight:600;text-transform:uppercase;letter-spacing:.03em;padding:.1rem .5rem;border-radius:1rem;color:#fff;background:var(--unknown)}
.badge.good{background:var(--good)}.badge.warning{background:var(--warning)}.badge.bad{background:var(--bad)}
.stats{display:flex;gap:2rem;margin:.5rem 0 .3rem}
.stats div{display:flex;flex-direction:column}
.stats dt{font-size:.75rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
.stats dd{margin:0;font-size:1.4rem;font-weight:600;font-variant-numeric:tabular-nums}
.bar{height:.5rem;border-radius:.25rem;background:#eaeef2;overflow:hidden;margin:.2rem 0 .6rem}
.bar .fill{height:100%;background:var(--unknown)}
.fill.good{background:var(--good)}.fill.warning{background:var(--warning)}.fill.bad{background:var(--bad)}
.bar.unknown{background:repeating-linear-gradient(45deg,#eaeef2 0 6px,#f6f8fa 6px 12px)}
.bar.overspent{background:#ffcecb}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.3rem .7rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);font-weight:600}
table.burn{margin:.3rem 0 .4rem;font-size:.9rem}
table.burn th,table.burn td{text-align:center;padding:.15rem .55rem}
td.good{color:var(--good);font-weight:600}td.warning{color:var(--warning);font-weight:600}
td.bad{color:var(--bad);font-weight:600}td.unknown,dd.unknown{color:var(--unknown)}
.sev{font-size:.75rem;font-weight:700;padding:.05rem .45rem;border-radius:.25rem;color:#fff;background:var(--unknown)}
.sev.ok{background:var(--good)}.sev.info{background:#0969da}.sev.warning{background:var(--warning)}.sev.critical{background:var(--bad)}
.caption{font-size:.8rem;color:var(--muted)}
.note{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88em}
svg.burn-chart{display:block;max-width:100%}
";

/// The whole document.
pub fn render(page: &Page) -> String {
    let mut html = String::with_capacity(32 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <title>{title} · pgdbre</title><style>{STYLE}</style></head><body>\
         <header class=\"top\"><h1>{title}</h1>\
         <span class=\"muted\">pgdbre serve · {generated} · reloads every {refresh}s</span>\
         <nav><a href=\"/metrics\">/metrics</a><a href=\"/probe?target=\">/probe</a><a href=\"/healthz\">/healthz</a></nav></header><main>",
        refresh = page.refresh_secs,
        title = escape(&page.title),
        generated = escape(&page.generated),
    );
    targets(&mut html, &page.targets);
    slos(&mut html, &page.slos);
    findings(&mut html, &page.findings);
    lag(&mut html, &page.lag);
    html.push_str("</main></body></html>\n");
    html
}

fn targets(html: &mut String, targets: &[TargetRow]) {
    html.push_str("<section id=\"targets\"><h2>Servers</h2><ul class=\"targets\">");
    for target in targets {
        let (class, state) = match (target.up, target.role) {
            (true, Some(role)) => ("good", role),
            (true, None) => ("good", "up"),
            (false, _) => ("bad", "down"),
        };
        let _ = write!(
            html,
            "<li><span class=\"dot {class}\"></span><code>{}</code> <span class=\"muted\">{state}</span></li>",
            escape(&target.name)
        );
    }
    html.push_str("</ul></section>");
}

fn slos(html: &mut String, section: &SloSection) {
    html.push_str("<section id=\"slos\"><h2>Service level objectives</h2>");
    match section {
        SloSection::NotConfigured => html.push_str(
            "<p class=\"note\">No SLOs configured. Start <code>pgdbre serve --slo FILE</code> with an \
             SLO spec (see <code>examples/slo.yaml</code> and <code>docs/slo.md</code>) to see error \
             budgets and burn rates here.</p>",
        ),
        SloSection::Configured {
            file,
            problem,
            slos,
        } => {
            let _ = write!(
                html,
                "<p class=\"muted\">From <code>{}</code>; budgets over each SLO's window, from the \
                 probe counts in the state store. Unknown (grey) means too little data, never healthy.</p>",
                escape(file)
            );
            if let Some(problem) = problem {
                let _ = write!(html, "<p class=\"note\">{}</p>", escape(problem));
            }
            html.push_str("<div class=\"slos\">");
            for slo in slos {
                slo_card(html, slo);
            }
            html.push_str("</div>");
        }
    }
    html.push_str("</section>");
}

fn verdict(health: Health) -> &'static str {
    match health {
        Health::Good => "met",
        Health::Warning => "at risk",
        Health::Bad => "not met",
        Health::Unknown => "unknown",
    }
}

/// The colour of the budget bar: plenty, running low, or spent.
fn budget_health(remaining: f64) -> Health {
    if remaining < 0.0 {
        Health::Bad
    } else if remaining < 0.25 {
        Health::Warning
    } else {
        Health::Good
    }
}

fn slo_card(html: &mut String, slo: &SloView) {
    let class = slo.health.class();
    let _ = write!(
        html,
        "<article class=\"slo {class}\" id=\"slo-{anchor}\"><h3><span>{name}</span>\
         <span class=\"badge {class}\">{verdict}</span></h3>\
         <p>{indicator} · objective {objective}</p><dl class=\"stats\">",
        anchor = escape(&slo.name),
        name = escape(&slo.name),
        verdict = verdict(slo.health),
        indicator = escape(&slo.indicator),
        objective = escape(&slo.objective),
    );
    let sli = slo
        .sli_percent
        .map(|p| format!("{}%", percent(p)))
        .unwrap_or_else(|| "no data".into());
    let budget = slo
        .budget_remaining
        .map(|r| format!("{}%", trimmed(r * 100.0, 1)))
        .unwrap_or_else(|| "no data".into());
    let known = |v: &Option<f64>| {
        if v.is_some() {
            ""
        } else {
            " class=\"unknown\""
        }
    };
    let _ = write!(
        html,
        "<div><dt>SLI now</dt><dd{}>{sli}</dd></div><div><dt>Budget remaining</dt><dd{}>{budget}</dd></div></dl>",
        known(&slo.sli_percent),
        known(&slo.budget_remaining),
    );
    match slo.budget_remaining {
        Some(remaining) => {
            // An overspent budget is an empty bar on a red track, not just an empty bar.
            let track = if remaining < 0.0 {
                "bar overspent"
            } else {
                "bar"
            };
            let _ = write!(
                html,
                "<div class=\"{track}\" title=\"error budget remaining\"><div class=\"fill {}\" style=\"width:{:.1}%\"></div></div>",
                budget_health(remaining).class(),
                remaining.clamp(0.0, 1.0) * 100.0
            );
        }
        None => html.push_str("<div class=\"bar unknown\" title=\"error budget unknown\"></div>"),
    }
    if let Some(reason) = &slo.unknown_reason {
        let _ = write!(
            html,
            "<p class=\"caption\">Unknown: {}.</p>",
            escape(reason)
        );
    }
    burn_table(html, &slo.burn);
    html.push_str(&burn_chart(&slo.name, &slo.chart));
    let _ = write!(
        html,
        "<p class=\"caption\">Burn rate over the trailing {}, every {}; 1x spends the budget exactly \
         over the SLO window. Dashed: the alert thresholds of the spec's profile.</p></article>",
        escape(&slo.chart.window),
        step(slo.chart.step_minutes),
    );
}

fn burn_table(html: &mut String, burn: &[BurnCell]) {
    if burn.is_empty() {
        return;
    }
    html.push_str("<table class=\"burn\"><tr><th>burn</th>");
    for cell in burn {
        let _ = write!(html, "<th>{}</th>", escape(&cell.window));
    }
    html.push_str("</tr><tr><td class=\"muted\">rate</td>");
    for cell in burn {
        let title = cell
            .reason
            .as_deref()
            .map(|r| format!(" title=\"{}\"", escape(r)))
            .unwrap_or_default();
        let value = cell.rate.map(rate).unwrap_or_else(|| "no data".to_string());
        let _ = write!(
            html,
            "<td class=\"{}\"{title}>{value}</td>",
            cell.health.class()
        );
    }
    html.push_str("</tr></table>");
}

fn findings(html: &mut String, section: &FindingsSection) {
    html.push_str("<section id=\"findings\"><h2>Check findings</h2>");
    match section {
        FindingsSection::Disabled => html.push_str(
            "<p class=\"note\">The check catalog is off (<code>--check-interval 0</code>).</p>",
        ),
        FindingsSection::Shown { rows, summaries } => {
            html.push_str("<ul class=\"targets\">");
            for (target, summary) in summaries {
                let _ = write!(
                    html,
                    "<li><code>{}</code> <span class=\"muted\">{}</span></li>",
                    escape(target),
                    escape(summary)
                );
            }
            html.push_str("</ul>");
            if rows.is_empty() {
                html.push_str("<p>No findings in the last run.</p>");
            } else {
                html.push_str(
                    "<table class=\"findings\"><tr><th>Severity</th><th>Server</th><th>Check</th>\
                     <th>Object</th><th>Finding</th></tr>",
                );
                for row in rows {
                    let _ = write!(
                        html,
                        "<tr><td><span class=\"sev {}\">{}</span></td><td><code>{}</code></td>\
                         <td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        row.severity.label().to_lowercase(),
                        row.severity.label(),
                        escape(&row.target),
                        escape(&row.check),
                        escape(&row.object),
                        escape(&row.message),
                    );
                }
                html.push_str("</table>");
            }
        }
    }
    html.push_str("</section>");
}

fn lag(html: &mut String, rows: &[LagRow]) {
    html.push_str("<section id=\"replica-lag\"><h2>Replica lag</h2>");
    if rows.is_empty() {
        html.push_str(
            "<p>No standbys seen: no configured primary lists one in <code>pg_stat_replication</code> \
             and no configured server is a standby.</p></section>",
        );
        return;
    }
    html.push_str(
        "<table class=\"lag\"><tr><th>Standby</th><th>Measured by</th><th>State</th>\
         <th>Lag</th><th>Not replayed</th></tr>",
    );
    for row in rows {
        let lag = row
            .lag_seconds
            .map(seconds)
            .unwrap_or_else(|| "no data".into());
        let _ = write!(
            html,
            "<tr class=\"standby\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{}\">{lag}</td><td>{}</td></tr>",
            escape(&row.standby),
            escape(&row.source),
            escape(row.state.as_deref().unwrap_or("—")),
            row.health.class(),
            row.bytes_behind.map(bytes).unwrap_or_else(|| "—".into()),
        );
    }
    html.push_str("</table></section>");
}

/// An SLI in percent: at most three decimals, no trailing zeros (`99.95`, `100`).
fn percent(value: f64) -> String {
    trimmed(value, 3)
}

/// `value` with at most `decimals` decimals and no trailing zeros: `42.3`, `100`, `-1794.7`.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A burn rate: `0.31x`, `14.4x`, `250x`.
fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}x")
    } else if value >= 10.0 {
        format!("{value:.1}x")
    } else {
        format!("{value:.2}x")
    }
}

fn seconds(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} s")
    } else {
        format!("{value:.0} s")
    }
}

fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = value.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn step(minutes: i64) -> String {
    if minutes % 60 == 0 {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::model::{BurnChart, FindingRow, Threshold};

    fn slo(name: &str, health: Health, remaining: Option<f64>) -> SloView {
        SloView {
            name: name.into(),
            indicator: "read latency p99 < 40ms".into(),
            objective: "99.9% over 30d".into(),
            health,
            sli_percent: remaining.map(|_| 99.95),
            unknown_reason: remaining
                .is_none()
                .then(|| "no data in the window".to_string()),
            budget_remaining: remaining,
            burn: vec![
                BurnCell {
                    window: "5m".into(),
                    rate: Some(0.5),
                    reason: None,
                    health: Health::Good,
                },
                BurnCell {
                    window: "1h".into(),
                    rate: None,
                    reason: Some("12 events, fewer than the 100 needed".into()),
                    health: Health::Unknown,
                },
            ],
            chart: BurnChart {
                first_minute: 0,
                step_minutes: 10,
                window: "1h".into(),
                points: vec![None, Some(0.5)],
                thresholds: vec![Threshold {
                    rate: 1.0,
                    label: "1x".into(),
                    health: Health::Good,
                }],
            },
        }
    }

    fn page(slos: SloSection) -> Page {
        Page {
            title: "payments <db>".into(),
            generated: "2026-11-25 18:00:00 UTC".into(),
            refresh_secs: 30,
            targets: vec![TargetRow {
                name: "db:5432/app".into(),
                role: Some("primary"),
                up: true,
            }],
            slos,
            findings: FindingsSection::Shown {
                rows: vec![FindingRow {
                    severity: pgdbre_check::Severity::Warning,
                    target: "db:5432/app".into(),
                    check: "idle-in-transaction".into(),
                    object: "pid 42".into(),
                    message: "<script>alert(1)</script> idle for 5 min".into(),
                }],
                summaries: vec![("db:5432/app".into(), "40 checks".into())],
            },
            lag: vec![LagRow {
                standby: "replica1".into(),
                source: "pg_stat_replication on db:5432/app".into(),
                state: Some("streaming".into()),
                lag_seconds: None,
                bytes_behind: Some(2048.0),
                health: Health::Unknown,
            }],
        }
    }

    #[test]
    fn everything_from_outside_is_escaped() {
        let html = render(&page(SloSection::Configured {
            file: "slo<1>.yaml".into(),
            problem: None,
            slos: vec![slo("a&b", Health::Good, Some(0.8))],
        }));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<h1>payments &lt;db&gt;</h1>"));
        assert!(html.contains("slo&lt;1&gt;.yaml"));
        assert!(html.contains("<span>a&amp;b</span>"));
        assert!(!html.contains("<script"), "no script at all");
    }

    #[test]
    fn unknown_is_grey_and_says_no_data() {
        let html = render(&page(SloSection::Configured {
            file: "slo.yaml".into(),
            problem: None,
            slos: vec![slo("replica-lag", Health::Unknown, None)],
        }));
        assert!(html.contains("<article class=\"slo unknown\""), "{html}");
        assert!(html.contains("<span class=\"badge unknown\">unknown</span>"));
        assert!(html.contains("<dd class=\"unknown\">no data</dd>"));
        assert!(html.contains("<div class=\"bar unknown\""));
        assert!(html.contains("Unknown: no data in the window."));
        assert!(html.contains(
            "<td class=\"unknown\" title=\"12 events, fewer than the 100 needed\">no data</td>"
        ));
        // The lag row without a measurement is unknown too, not 0 s.
        assert!(
            html.contains("<td class=\"unknown\">no data</td><td>2.0 kB</td>"),
            "{html}"
        );
        assert!(!html.contains("class=\"slo good\""));
    }

    #[test]
    fn known_values_and_the_budget_bar() {
        let html = render(&page(SloSection::Configured {
            file: "slo.yaml".into(),
            problem: None,
            slos: vec![
                slo("ok", Health::Good, Some(0.8)),
                slo("spent", Health::Bad, Some(-0.5)),
            ],
        }));
        assert!(html.contains("<dd>99.95%</dd>"), "{html}");
        assert!(html.contains("<dd>80%</dd>"));
        assert!(html.contains("<div class=\"fill good\" style=\"width:80.0%\">"));
        // Overspent: negative remaining, an empty red bar.
        assert!(html.contains("<dd>-50%</dd>"));
        assert!(html.contains(
            "<div class=\"bar overspent\" title=\"error budget remaining\"><div class=\"fill bad\" style=\"width:0.0%\">"
        ));
        assert!(html.contains(
            "<div class=\"bar\" title=\"error budget remaining\"><div class=\"fill good\""
        ));
        assert!(html.contains("<td class=\"good\">0.50x</td>"));
        assert_eq!(html.matches("<svg class=\"burn-chart\"").count(), 2);
    }

    #[test]
    fn without_a_spec_the_page_says_how_to_add_one() {
        let html = render(&page(SloSection::NotConfigured));
        assert!(html.contains("pgdbre serve --slo FILE"), "{html}");
        assert!(!html.contains("<svg"));
        for link in ["href=\"/metrics\"", "href=\"/healthz\""] {
            assert!(html.contains(link), "{link}");
        }
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(percent(99.95), "99.95");
        assert_eq!(percent(100.0), "100");
        assert_eq!(percent(99.99999), "100");
        assert_eq!(percent(-0.0001), "0");
        assert_eq!(trimmed(-1794.669, 1), "-1794.7");
        assert_eq!(trimmed(42.28, 1), "42.3");
        assert_eq!(trimmed(100.0, 1), "100");
        assert_eq!(rate(0.314), "0.31x");
        assert_eq!(rate(14.4), "14.4x");
        assert_eq!(rate(1000.0), "1000x");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(3.5 * 1024.0 * 1024.0), "3.5 MB");
        assert_eq!(seconds(0.4213), "0.42 s");
        assert_eq!(step(60), "1 h");
        assert_eq!(step(10), "10 min");
    }
}
