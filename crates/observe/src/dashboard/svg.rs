//! The burn-rate chart as inline SVG: one line of the burn rate over time, the 1x line and the
//! alert thresholds of the spec's profile, and grey "no data" bands where the rate is unknown
//! (a gap in the line, never a zero).
//!
//! The y axis is `log(1 + rate)`: burn rates span 0 to 1000 (every event bad at 99.9 %), and a
//! linear axis tall enough for the 14.4x page line flattens the 0.2x a healthy service burns.

use super::escape::escape;
use super::model::{BurnChart, Health};
use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 36.0;
/// Room for the threshold labels right of the plot.
const RIGHT: f64 = 112.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// Colours of the chart's parts (the page uses the same palette in its stylesheet).
fn colour(health: Health) -> &'static str {
    match health {
        Health::Good => "#1a7f37",
        Health::Warning => "#b35900",
        Health::Bad => "#cf222e",
        Health::Unknown => "#6e7781",
    }
}
const LINE: &str = "#0969da";
const NO_DATA: &str = "#eaeef2";
const GRID: &str = "#d0d7de";

/// Maps a burn rate to a share of the plot height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// The rate at the top of the plot.
    pub top: f64,
}

impl Scale {
    /// Room for every known point and every threshold, and at least for 1x, with headroom.
    pub fn fit(chart: &BurnChart) -> Scale {
        let highest = chart
            .points
            .iter()
            .flatten()
            .copied()
            .chain(chart.thresholds.iter().map(|t| t.rate))
            .filter(|rate| rate.is_finite())
            .fold(1.0, f64::max);
        Scale {
            top: highest * 1.25,
        }
    }

    /// 0.0 at the bottom, 1.0 at the top; rates above the top are clipped to it.
    pub fn fraction(self, rate: f64) -> f64 {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        (rate.ln_1p() / self.top.ln_1p()).min(1.0)
    }
}

/// The x coordinate of point `index` of `count`.
fn x_of(index: usize, count: usize) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    if count <= 1 {
        return LEFT + plot;
    }
    LEFT + plot * index as f64 / (count - 1) as f64
}

fn y_of(scale: Scale, rate: f64) -> f64 {
    HEIGHT - BOTTOM - scale.fraction(rate) * (HEIGHT - BOTTOM - TOP)
}

/// `HH:MM` (UTC) of a minute since the epoch.
fn clock(minute: i64) -> String {
    let of_day = minute.rem_euclid(1440);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

/// Maximal runs of consecutive indices whose point is known (`true`) or unknown (`false`).
fn runs(points: &[Option<f64>]) -> Vec<(bool, usize, usize)> {
    let mut runs: Vec<(bool, usize, usize)> = Vec::new();
    for (index, point) in points.iter().enumerate() {
        match runs.last_mut() {
            Some((known, _, end)) if *known == point.is_some() => *end = index,
            _ => runs.push((point.is_some(), index, index)),
        }
    }
    runs
}

/// The chart of `slo` (its name only labels the image for screen readers).
pub fn burn_chart(slo: &str, chart: &BurnChart) -> String {
    let scale = Scale::fit(chart);
    let count = chart.points.len();
    let plot_bottom = HEIGHT - BOTTOM;
    let plot_right = WIDTH - RIGHT;
    let half_step = if count > 1 {
        (plot_right - LEFT) / (count - 1) as f64 / 2.0
    } else {
        4.0
    };
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        "<svg class=\"burn-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" \
         aria-label=\"burn rate of {name} over the trailing {window}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\
         <title>Burn rate of {name} over the trailing {window}</title>",
        name = escape(slo),
        window = escape(&chart.window),
    );
    // Unknown stretches first, under everything else.
    for (known, start, end) in runs(&chart.points) {
        if known {
            continue;
        }
        let from = (x_of(start, count) - half_step).max(LEFT);
        let to = (x_of(end, count) + half_step).min(plot_right);
        let _ = write!(
            svg,
            "<rect class=\"no-data\" x=\"{from:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{NO_DATA}\"/>",
            (to - from).max(1.0),
            plot_bottom - TOP
        );
        if to - from >= 48.0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{}\">no data</text>",
                (from + to) / 2.0,
                (TOP + plot_bottom) / 2.0,
                colour(Health::Unknown)
            );
        }
    }
    // Axes and the 0 line.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{plot_bottom}\" x2=\"{plot_right}\" y2=\"{plot_bottom}\" stroke=\"{GRID}\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{plot_bottom}\" stroke=\"{GRID}\"/>"
    );
    for tick in y_ticks(scale) {
        let y = y_of(scale, tick);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}x</text>",
            LEFT - 4.0,
            y + 3.5,
            pgdbre_slo::budget::format_number(tick)
        );
    }
    for (index, label) in x_ticks(chart) {
        let x = x_of(index, count);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{plot_bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{label}</text>",
            plot_bottom + 4.0,
            HEIGHT - 8.0
        );
    }
    // Thresholds: dashed, labelled on the right; the 1x line solid.
    for threshold in &chart.thresholds {
        let y = y_of(scale, threshold.rate);
        let dash = if threshold.rate == 1.0 {
            ""
        } else {
            " stroke-dasharray=\"5 4\""
        };
        let _ = write!(
            svg,
            "<line class=\"threshold\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{plot_right}\" y2=\"{y:.1}\" \
             stroke=\"{c}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{}</text>",
            plot_right + 4.0,
            y + 3.5,
            escape(&threshold.label),
            c = colour(threshold.health),
        );
    }
    // The burn rate itself: one polyline per known stretch, a dot for a lone point.
    for (known, start, end) in runs(&chart.points) {
        if !known {
            continue;
        }
        let coordinates: Vec<(f64, f64)> = (start..=end)
            .filter_map(|i| chart.points[i].map(|rate| (x_of(i, count), y_of(scale, rate))))
            .collect();
        match coordinates.as_slice() {
            [(x, y)] => {
                let _ = write!(
                    svg,
                    "<circle class=\"burn\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{LINE}\"/>"
                );
            }
            _ => {
                let points: Vec<String> = coordinates
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = write!(
                    svg,
                    "<polyline class=\"burn\" points=\"{}\" fill=\"none\" stroke=\"{LINE}\" \
                     stroke-width=\"2\" stroke-linejoin=\"round\"/>",
                    points.join(" ")
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Left-axis labels: 0 and round rates under the top, at least 18 px apart.
fn y_ticks(scale: Scale) -> Vec<f64> {
    const CANDIDATES: [f64; 11] = [
        0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
    ];
    let mut ticks: Vec<f64> = Vec::new();
    for rate in CANDIDATES.into_iter().filter(|r| *r <= scale.top) {
        let clear = ticks
            .last()
            .is_none_or(|last| y_of(scale, *last) - y_of(scale, rate) >= 18.0);
        if clear {
            ticks.push(rate);
        }
    }
    ticks
}

/// Up to seven time labels, evenly spaced, the last at the newest point.
fn x_ticks(chart: &BurnChart) -> Vec<(usize, String)> {
    let count = chart.points.len();
    if count == 0 {
        return Vec::new();
    }
    let every = count.div_ceil(6).max(1);
    let last = count - 1;
    (0..count)
        .rev()
        .step_by(every)
        .map(|index| {
            let minute = chart.first_minute + index as i64 * chart.step_minutes;
            (index, clock(minute))
        })
        .filter(|(index, _)| *index == last || last - index >= every)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::model::Threshold;

    fn chart(points: Vec<Option<f64>>) -> BurnChart {
        BurnChart {
            first_minute: 29_000_000,
            step_minutes: 10,
            window: "1h".into(),
            points,
            thresholds: vec![
                Threshold {
                    rate: 14.4,
                    label: "page 14.4x (1h)".into(),
                    health: Health::Bad,
                },
                Threshold {
                    rate: 1.0,
                    label: "1x".into(),
                    health: Health::Good,
                },
            ],
        }
    }

    #[test]
    fn scale_fits_the_highest_point_or_threshold_with_headroom() {
        let quiet = Scale::fit(&chart(vec![Some(0.2), None]));
        assert!((quiet.top - 18.0).abs() < 1e-9, "{quiet:?}");
        let burning = Scale::fit(&chart(vec![Some(400.0), Some(1.0)]));
        assert!((burning.top - 500.0).abs() < 1e-9, "{burning:?}");
        let empty = Scale::fit(&BurnChart {
            thresholds: Vec::new(),
            ..chart(vec![None])
        });
        assert!((empty.top - 1.25).abs() < 1e-9, "{empty:?}");
    }

    #[test]
    fn scale_is_monotonic_and_clipped() {
        let scale = Scale { top: 18.0 };
        assert_eq!(scale.fraction(0.0), 0.0);
        assert_eq!(scale.fraction(-3.0), 0.0);
        assert_eq!(scale.fraction(f64::NAN), 0.0);
        assert!((scale.fraction(18.0) - 1.0).abs() < 1e-12);
        assert_eq!(scale.fraction(1_000.0), 1.0);
        let steps: Vec<f64> = [0.1, 0.5, 1.0, 3.0, 6.0, 14.4]
            .iter()
            .map(|r| scale.fraction(*r))
            .collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
        // A healthy 0.5x is still visibly above the floor.
        assert!(scale.fraction(0.5) > 0.1);
        // Higher rates are drawn higher up (smaller y).
        assert!(y_of(scale, 14.4) < y_of(scale, 1.0));
        assert!((y_of(scale, 0.0) - (HEIGHT - BOTTOM)).abs() < 1e-9);
        assert!((y_of(scale, 18.0) - TOP).abs() < 1e-9);
    }

    #[test]
    fn unknown_points_are_grey_gaps_not_zeros() {
        let svg = burn_chart("availability", &chart(vec![None; 10]));
        assert!(svg.contains("class=\"no-data\""), "{svg}");
        assert!(svg.contains(">no data</text>"), "{svg}");
        assert!(
            !svg.contains("class=\"burn\""),
            "an all-unknown chart draws no line: {svg}"
        );

        let svg = burn_chart(
            "availability",
            &chart(vec![Some(0.5), Some(0.7), None, None, Some(2.0), Some(1.0)]),
        );
        assert_eq!(svg.matches("<polyline class=\"burn\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("class=\"no-data\"").count(), 1, "{svg}");
    }

    #[test]
    fn a_lone_known_point_is_a_dot() {
        let svg = burn_chart("x", &chart(vec![None, None, Some(3.0)]));
        assert_eq!(svg.matches("<circle class=\"burn\"").count(), 1, "{svg}");
        assert!(!svg.contains("<polyline"), "{svg}");
    }

    #[test]
    fn thresholds_are_drawn_and_labelled() {
        let svg = burn_chart("x", &chart(vec![Some(0.1); 3]));
        assert_eq!(svg.matches("class=\"threshold\"").count(), 2, "{svg}");
        assert!(svg.contains(">page 14.4x (1h)</text>"), "{svg}");
        // The page line is dashed, the 1x line is not.
        let page = svg.split("page 14.4x").next().unwrap();
        assert!(page.contains("stroke-dasharray"), "{svg}");
    }

    #[test]
    fn names_are_escaped() {
        let svg = burn_chart("<b>\"lag\"</b>", &chart(vec![Some(1.0)]));
        assert!(svg.contains("&lt;b&gt;&quot;lag&quot;&lt;/b&gt;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
    }

    #[test]
    fn time_labels_end_at_the_newest_point() {
        // 29_000_000 minutes is 2025-02-19 21:20 UTC; 12 points 10 minutes apart.
        let ticks = x_ticks(&chart(vec![None; 12]));
        assert_eq!(ticks.last().unwrap(), &(11, "23:10".to_string()));
        assert!(ticks.len() <= 7, "{ticks:?}");
        assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0), "{ticks:?}");
        assert_eq!(clock(-1), "23:59");
    }

    #[test]
    fn y_ticks_do_not_overlap() {
        let scale = Scale { top: 18.0 };
        let ticks = y_ticks(scale);
        assert_eq!(ticks.first(), Some(&0.0));
        assert!(ticks.iter().all(|t| *t <= 18.0));
        for pair in ticks.windows(2) {
            assert!(
                y_of(scale, pair[0]) - y_of(scale, pair[1]) >= 18.0,
                "{ticks:?}"
            );
        }
    }
}
