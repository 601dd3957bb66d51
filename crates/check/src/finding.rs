//! Findings: one problem found by one check, with the evidence a DBRE needs to act.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// How bad a finding (or a whole result) is. Ordered: `Ok < Info < Warning < Critical < Unknown`
/// so that the worst of a set is its maximum, as in Nagios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Critical,
    /// The check or target could not be evaluated (connection lost, query error).
    Unknown,
}

impl Severity {
    /// Upper-case label used in text and Nagios output.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// The Nagios plugin exit code: 0 OK (and info), 1 warning, 2 critical, 3 unknown.
    pub fn nagios_code(self) -> u8 {
        match self {
            Severity::Ok | Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }
}

/// One problem: what object, how bad, a one-line summary and the evidence behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The object concerned: `database "app"`, `table public.orders`, `pid 4242`, `slot "r1"`.
    pub object: String,
    /// One line a DBRE can act on, with the measured value and the threshold crossed.
    pub summary: String,
    /// Key/value evidence in insertion order (which table, which pid, how old, ...).
    #[serde(serialize_with = "evidence_as_object")]
    pub evidence: Vec<(&'static str, Value)>,
}

impl Finding {
    /// A finding with no evidence yet; add some with [`Finding::with`].
    pub fn new(severity: Severity, object: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            severity,
            object: object.into(),
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    /// Adds one evidence item.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.evidence.push((key, value.into()));
        self
    }

    /// The evidence value called `key`, if present.
    pub fn evidence(&self, key: &str) -> Option<&Value> {
        self.evidence
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

fn evidence_as_object<S: Serializer>(
    evidence: &[(&'static str, Value)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(evidence.len()))?;
    for (k, v) in evidence {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Formats a duration in seconds the way a DBRE reads it: `45s`, `12m 5s`, `3h 2m`, `2d 4h`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Formats a byte count with binary units: `512 B`, `3.2 MiB`, `1.5 GiB`.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_severity_is_the_maximum() {
        let worst = [Severity::Info, Severity::Critical, Severity::Warning]
            .into_iter()
            .max();
        assert_eq!(worst, Some(Severity::Critical));
        assert!(Severity::Unknown > Severity::Critical);
    }

    #[test]
    fn evidence_serializes_in_insertion_order() {
        let f = Finding::new(Severity::Warning, "pid 7", "old")
            .with("pid", 7)
            .with("age_seconds", 12.5);
        let json = serde_json::to_string(&f).unwrap();
        assert!(
            json.contains(r#""evidence":{"pid":7,"age_seconds":12.5}"#),
            "{json}"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_duration(45.0), "45s");
        assert_eq!(human_duration(3725.0), "1h 2m");
        assert_eq!(human_duration(2.0 * 86400.0 + 7200.0), "2d 2h");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0 * 1024.0), "1.5 MiB");
    }
}
