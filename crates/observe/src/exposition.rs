//! The Prometheus text exposition format 0.0.4, written by hand.
//!
//! A small encoder rather than `prometheus-client`: its OpenMetrics encoder appends `_total` to
//! every counter, which would rename the postgres_exporter-compatible families dashboards and
//! alerts already use (`pg_stat_database_xact_commit`). A scrape builds plain [`Family`] values
//! afresh each time, so there is no registry state to keep either.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Gauge,
    Counter,
    Histogram,
    Untyped,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
            MetricType::Histogram => "histogram",
            MetricType::Untyped => "untyped",
        }
    }
}

/// One series: label pairs (in order) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Appended to the family name: `_bucket`, `_sum` or `_count` in a histogram, else empty.
    pub suffix: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A metric family: name, help, type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// A gauge family.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, MetricType::Gauge)
    }

    /// A counter family (the name is kept as given: no `_total` is appended).
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, MetricType::Counter)
    }

    /// A histogram family; add series with [`Family::push_histogram`].
    pub fn histogram(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, MetricType::Histogram)
    }

    /// Adds one sample.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        self.push_suffixed("", labels, value);
    }

    fn push_suffixed(&mut self, suffix: &'static str, labels: &[(&str, &str)], value: f64) {
        self.samples.push(Sample {
            suffix,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        });
    }

    /// Adds one histogram series: a cumulative `_bucket{le}` per bound and `+Inf`, then `_sum`
    /// and `_count`.
    pub fn push_histogram(&mut self, labels: &[(&str, &str)], histogram: &Histogram) {
        let mut cumulative = 0;
        for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
            cumulative += count;
            let le = format!("{bound}");
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.push_suffixed("_bucket", &with_le, cumulative as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.push_suffixed("_bucket", &with_le, histogram.count as f64);
        self.push_suffixed("_sum", labels, histogram.sum);
        self.push_suffixed("_count", labels, histogram.count as f64);
    }

    /// Builder form of [`Family::push`].
    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Family {
        self.push(labels, value);
        self
    }

    /// Adds `name="value"` as the first label of every sample (used for `server`).
    pub fn label_all(&mut self, name: &str, value: &str) {
        for sample in &mut self.samples {
            sample.labels.insert(0, (name.to_owned(), value.to_owned()));
        }
    }
}

/// Observations counted into fixed buckets, as a Prometheus histogram keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bound (not cumulative): `counts[i]` fell in `(bounds[i-1], bounds[i]]`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over strictly increasing upper `bounds` (`+Inf` is implicit).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: f64) {
        if let Some(at) = self.bounds.iter().position(|bound| value <= *bound) {
            self.counts[at] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Merges the families of several targets: one block per name (the format forbids repeating a
/// family), in the order names first appear.
pub fn merge(groups: Vec<Vec<Family>>) -> Vec<Family> {
    let mut merged: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for family in groups.into_iter().flatten() {
        match index.get(&family.name) {
            Some(&at) => merged[at].samples.extend(family.samples),
            None => {
                index.insert(family.name.clone(), merged.len());
                merged.push(family);
            }
        }
    }
    merged
}

/// Writes `families` in the text format. Families without samples are left out.
pub fn encode(families: &[Family]) -> String {
    let mut out = String::with_capacity(families.len() * 256);
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(&family.name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(name);
                    out.push_str("=\"");
                    escape_label_value(&mut out, value);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(&mut out, sample.value);
            out.push('\n');
        }
    }
    out
}

/// HELP text: backslash and newline are escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values: backslash, double quote and newline are escaped.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_help_type_and_escaped_labels() {
        let family = Family::counter("pg_stat_database_xact_commit", "Commits\\ with\nnewline")
            .with(&[("datname", "a\"b\\c\nd")], 12.0)
            .with(&[], 0.5);
        assert_eq!(
            encode(&[family]),
            "# HELP pg_stat_database_xact_commit Commits\\\\ with\\nnewline\n\
             # TYPE pg_stat_database_xact_commit counter\n\
             pg_stat_database_xact_commit{datname=\"a\\\"b\\\\c\\nd\"} 12\n\
             pg_stat_database_xact_commit 0.5\n"
        );
    }

    #[test]
    fn special_values_and_empty_families() {
        let families = [
            Family::gauge("a", "x")
                .with(&[], f64::NAN)
                .with(&[], f64::INFINITY)
                .with(&[], f64::NEG_INFINITY)
                .with(&[], 1e20),
            Family::gauge("empty", "never printed"),
        ];
        assert_eq!(
            encode(&families),
            "# HELP a x\n# TYPE a gauge\na NaN\na +Inf\na -Inf\na 100000000000000000000\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        static BOUNDS: [f64; 3] = [0.005, 0.01, 1.0];
        let mut histogram = Histogram::new(&BOUNDS);
        for value in [0.00390625, 0.5, 0.25, 3.0] {
            histogram.observe(value);
        }
        let mut family = Family::histogram("probe_seconds", "Probe durations.");
        family.push_histogram(&[("probe", "read")], &histogram);
        family.label_all("server", "h:5432/db");
        assert_eq!(
            encode(&[family]),
            "# HELP probe_seconds Probe durations.\n\
             # TYPE probe_seconds histogram\n\
             probe_seconds_bucket{server=\"h:5432/db\",probe=\"read\",le=\"0.005\"} 1\n\
             probe_seconds_bucket{server=\"h:5432/db\",probe=\"read\",le=\"0.01\"} 1\n\
             probe_seconds_bucket{server=\"h:5432/db\",probe=\"read\",le=\"1\"} 3\n\
             probe_seconds_bucket{server=\"h:5432/db\",probe=\"read\",le=\"+Inf\"} 4\n\
             probe_seconds_sum{server=\"h:5432/db\",probe=\"read\"} 3.75390625\n\
             probe_seconds_count{server=\"h:5432/db\",probe=\"read\"} 4\n"
        );
    }

    #[test]
    fn merge_keeps_one_block_per_name_in_first_seen_order() {
        let one = vec![
            Family::gauge("pg_up", "up").with(&[("server", "a")], 1.0),
            Family::gauge("x", "x").with(&[("server", "a")], 2.0),
        ];
        let two = vec![
            Family::gauge("y", "y").with(&[("server", "b")], 3.0),
            Family::gauge("pg_up", "up").with(&[("server", "b")], 0.0),
        ];
        let merged = merge(vec![one, two]);
        let names: Vec<_> = merged.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["pg_up", "x", "y"]);
        assert_eq!(merged[0].samples.len(), 2);
    }

    #[test]
    fn label_all_puts_the_label_first() {
        let mut family = Family::gauge("a", "x").with(&[("datname", "d")], 1.0);
        family.label_all("server", "h:5432/db");
        assert_eq!(family.samples[0].labels[0].0, "server");
        assert_eq!(family.samples[0].labels[1].0, "datname");
    }
}
