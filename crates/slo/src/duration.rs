//! Durations as written in the spec and in PromQL: `30d`, `1h`, `5m`, `90s`, `1h30m`.
//!
//! One type, parsed once at the edge; it renders back in Prometheus syntax so recording-rule
//! names (`rate5m`, `rate1d`) and range selectors are spelled the way Prometheus expects.

use std::fmt;
use std::str::FromStr;

/// A whole number of seconds, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(u64);

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl Span {
    pub const MINUTE: Span = Span(60);
    pub const TEN_MINUTES: Span = Span(600);
    pub const HOUR: Span = Span(3_600);

    pub fn from_secs(seconds: u64) -> Option<Span> {
        (seconds > 0).then_some(Span(seconds))
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64
    }

    /// Human form for summaries: `7h12m`, `43m12s`, like [`fmt::Display`].
    pub fn human_secs(seconds: f64) -> String {
        let whole = seconds.round() as u64;
        match Span::from_secs(whole) {
            Some(span) => span.to_string(),
            None => "0s".into(),
        }
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration; write a number and a unit (s, m, h, d, w), e.g. 30d, 1h, 5m")]
pub struct SpanError(pub String);

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || SpanError(text.to_string());
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: u64 = 0;
        // Units must appear from largest to smallest, each at most once (as in PromQL).
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(err());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| err())?;
            let unit = rest[digits..].chars().next().ok_or_else(err)?;
            let position = UNITS[next_unit..]
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(err)?;
            let (_, scale) = UNITS[next_unit + position];
            next_unit += position + 1;
            total = number
                .checked_mul(scale)
                .and_then(|n| total.checked_add(n))
                .ok_or_else(err)?;
            rest = &rest[digits + 1..];
        }
        Span::from_secs(total).ok_or_else(err)
    }
}

impl fmt::Display for Span {
    /// Largest units first, weeks only when exact (`14d` reads better than `2w` next to `30d`, so
    /// weeks are never used): `30d`, `1h30m`, `90s` → `1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, scale) in &UNITS[1..] {
            if rest >= *scale {
                write!(f, "{}{unit}", rest / scale)?;
                rest %= scale;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str) -> Span {
        text.parse().unwrap()
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(span("30d").secs(), 30 * 86_400);
        assert_eq!(span("1h").secs(), 3_600);
        assert_eq!(span("5m").secs(), 300);
        assert_eq!(span("90s").secs(), 90);
        assert_eq!(span("4w").secs(), 28 * 86_400);
    }

    #[test]
    fn parses_compound_in_order() {
        assert_eq!(span("1h30m").secs(), 5_400);
        assert_eq!(span("1d12h").secs(), 36 * 3_600);
        assert!("30m1h".parse::<Span>().is_err());
        assert!("1h1h".parse::<Span>().is_err());
    }

    #[test]
    fn rejects_non_durations() {
        for bad in [
            "", "30", "d", "30 days", "1.5h", "-1h", "0s", "thirty", "1y",
        ] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_in_prometheus_syntax() {
        assert_eq!(span("30d").to_string(), "30d");
        assert_eq!(span("4w").to_string(), "28d");
        assert_eq!(span("90m").to_string(), "1h30m");
        assert_eq!(span("90s").to_string(), "1m30s");
        assert_eq!(Span::human_secs(2_592.0), "43m12s");
        assert_eq!(Span::human_secs(0.2), "0s");
    }
}
