//! Alerting window profiles: which (long, short) window pairs alert at which burn rate.
//!
//! Profiles are data, not code: the built-ins below are tables, and a spec can give its own
//! list. An alert fires when the bad ratio over *both* windows of a pair is above
//! `burn_rate × (1 − objective)` (multiwindow, multi-burn-rate, as in the Google SRE workbook,
//! chapter 5): the long window proves the burn is significant, the short one that it is still
//! happening, so the alert resets quickly once the problem is fixed.

use crate::duration::Span;
use std::fmt;

/// Who is told: a page wakes someone, a ticket waits for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "page" => Some(Severity::Page),
            "ticket" => Some(Severity::Ticket),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One alerting window pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPair {
    pub severity: Severity,
    pub long: Span,
    pub short: Span,
    pub burn_rate: f64,
    /// How long both windows must stay above the threshold before the alert fires; rides out
    /// one noisy evaluation without delaying a real page much.
    pub hold: Option<Span>,
}

/// A named set of window pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub pairs: Vec<WindowPair>,
}

/// Built-in profile names, for error messages and docs.
pub const BUILTIN_NAMES: [&str; 2] = ["standard-30d", "28d"];

fn pair(severity: Severity, long: u64, short: u64, burn_rate: f64, hold: u64) -> WindowPair {
    WindowPair {
        severity,
        long: Span::from_secs(long).expect("positive"),
        short: Span::from_secs(short).expect("positive"),
        burn_rate,
        hold: Span::from_secs(hold),
    }
}

const MIN: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        // Budget spent when each pair fires: 2 % in 1h, 5 % in 6h, 10 % in 1d, 10 % in 3d.
        let rates: [f64; 4] = match name {
            // The SRE workbook's table for a 30-day window.
            "standard-30d" => [14.4, 6.0, 3.0, 1.0],
            // The same budget shares for a 28-day window (672 h instead of 720 h).
            "28d" => [13.44, 5.6, 2.8, 0.933],
            _ => return None,
        };
        Some(Profile {
            name: name.to_string(),
            pairs: vec![
                pair(Severity::Page, HOUR, 5 * MIN, rates[0], 2 * MIN),
                pair(Severity::Page, 6 * HOUR, 30 * MIN, rates[1], 15 * MIN),
                pair(Severity::Ticket, DAY, 2 * HOUR, rates[2], HOUR),
                pair(Severity::Ticket, 3 * DAY, 6 * HOUR, rates[3], 3 * HOUR),
            ],
        })
    }

    /// The profile used when a spec names none: `28d` for a 28-day window, else `standard-30d`.
    pub fn default_for(window: Span) -> Profile {
        let name = if window.secs() == 28 * DAY {
            "28d"
        } else {
            "standard-30d"
        };
        Profile::builtin(name).expect("built-in")
    }

    /// Every distinct window the pairs use, shortest first.
    pub fn windows(&self) -> Vec<Span> {
        let mut all: Vec<Span> = self.pairs.iter().flat_map(|p| [p.short, p.long]).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_profile_matches_the_workbook() {
        let p = Profile::builtin("standard-30d").unwrap();
        let table: Vec<(Severity, String, String, f64)> = p
            .pairs
            .iter()
            .map(|w| {
                (
                    w.severity,
                    w.long.to_string(),
                    w.short.to_string(),
                    w.burn_rate,
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                (Severity::Page, "1h".into(), "5m".into(), 14.4),
                (Severity::Page, "6h".into(), "30m".into(), 6.0),
                (Severity::Ticket, "1d".into(), "2h".into(), 3.0),
                (Severity::Ticket, "3d".into(), "6h".into(), 1.0),
            ]
        );
    }

    #[test]
    fn builtin_pairs_spend_the_documented_budget_share() {
        for (name, days) in [("standard-30d", 30.0), ("28d", 28.0)] {
            let p = Profile::builtin(name).unwrap();
            let shares: Vec<f64> = p
                .pairs
                .iter()
                .map(|w| w.burn_rate * w.long.as_secs_f64() / (days * 86_400.0))
                .collect();
            for (share, expected) in shares.iter().zip([0.02, 0.05, 0.10, 0.10]) {
                assert!(
                    (share - expected).abs() < 0.001,
                    "{name}: {share} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn default_follows_the_window() {
        assert_eq!(Profile::default_for("28d".parse().unwrap()).name, "28d");
        assert_eq!(
            Profile::default_for("30d".parse().unwrap()).name,
            "standard-30d"
        );
        assert!(Profile::builtin("weekly").is_none());
    }

    #[test]
    fn windows_are_distinct_and_sorted() {
        let p = Profile::builtin("standard-30d").unwrap();
        let names: Vec<String> = p.windows().iter().map(|w| w.to_string()).collect();
        assert_eq!(names, ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]);
    }
}
