//! Severity tiers for values where higher is worse, with an optional Info tier below Warning.
//!
//! `Context::severity_above` knows only `warning` and `critical`. The session-age checks of this
//! folder (`idle-in-transaction`, `long-running-transactions`, `prepared-transactions`,
//! `blocking-locks`) also declare an `info` parameter, so a condition a DBRE has just seeded or
//! is about to be paged for is visible with its evidence at once, without changing the exit code.
//! Every check here also names the threshold it crossed in its summary, so the tier carries it.
//! The classification is pure and unit-tested below; [`Tiers::from_params`] is the only I/O-ish
//! part (it reads the resolved parameters).

use crate::{Context, Severity};

/// The thresholds of one check, read once per run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiers {
    /// Reaching this is Info; `None` for checks without an Info tier.
    pub info: Option<f64>,
    pub warning: f64,
    pub critical: f64,
}

/// The tier a value reached and the threshold that put it there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    pub severity: Severity,
    pub threshold: f64,
}

impl Tiers {
    /// The check's `info`, `warning` and `critical` parameters (all three must be declared).
    pub fn from_params(ctx: &Context<'_>) -> Self {
        Tiers {
            info: Some(ctx.param("info")),
            ..Self::warning_critical(ctx)
        }
    }

    /// The check's `warning` and `critical` parameters, for checks without an Info tier.
    pub fn warning_critical(ctx: &Context<'_>) -> Self {
        Tiers {
            info: None,
            warning: ctx.param("warning"),
            critical: ctx.param("critical"),
        }
    }

    /// The highest tier `value` reaches (critical, then warning, then info), if any. An `info`
    /// set above `warning` never hides a Warning: the higher tiers are tried first.
    pub fn classify(&self, value: f64) -> Option<Tier> {
        let tiers = [
            (Severity::Critical, Some(self.critical)),
            (Severity::Warning, Some(self.warning)),
            (Severity::Info, self.info),
        ];
        tiers.into_iter().find_map(|(severity, threshold)| {
            let threshold = threshold?;
            (value >= threshold).then_some(Tier {
                severity,
                threshold,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGES: Tiers = Tiers {
        info: Some(5.0),
        warning: 60.0,
        critical: 600.0,
    };

    fn severity(tiers: &Tiers, value: f64) -> Option<Severity> {
        tiers.classify(value).map(|tier| tier.severity)
    }

    #[test]
    fn each_tier_starts_at_its_threshold() {
        assert_eq!(severity(&AGES, 4.9), None);
        assert_eq!(
            AGES.classify(5.0),
            Some(Tier {
                severity: Severity::Info,
                threshold: 5.0
            })
        );
        assert_eq!(
            AGES.classify(60.0),
            Some(Tier {
                severity: Severity::Warning,
                threshold: 60.0
            })
        );
        assert_eq!(
            AGES.classify(1e9),
            Some(Tier {
                severity: Severity::Critical,
                threshold: 600.0
            })
        );
    }

    #[test]
    fn without_an_info_tier_low_values_are_quiet() {
        let tiers = Tiers { info: None, ..AGES };
        assert_eq!(severity(&tiers, 59.0), None);
        assert_eq!(severity(&tiers, 60.0), Some(Severity::Warning));
    }

    #[test]
    fn an_info_of_zero_reports_everything() {
        let tiers = Tiers {
            info: Some(0.0),
            ..AGES
        };
        assert_eq!(severity(&tiers, 0.0), Some(Severity::Info));
    }

    #[test]
    fn overlapping_thresholds_report_the_highest_tier() {
        // A user lowers warning below the default info: Warning wins.
        let tiers = Tiers {
            info: Some(5.0),
            warning: 1.0,
            critical: 86400.0,
        };
        assert_eq!(severity(&tiers, 2.0), Some(Severity::Warning));
        assert_eq!(severity(&tiers, 0.5), None);
    }
}
