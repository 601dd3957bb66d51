//! The arithmetic shared by the wraparound checks (`txid-wraparound`, `multixact-wraparound`,
//! `table-wraparound`): how far an age is from the 2^31 limit, and what severity that earns.
//!
//! Transaction ids and multixact ids are 32-bit counters compared modulo 2^32, so any id older
//! than 2^31 would suddenly look like it is in the future. PostgreSQL refuses to assign new ids
//! a safety margin before that point (3 million since PostgreSQL 14; before, 1 million for xids
//! and 100 for multixacts) and only single-user-mode VACUUM gets the server going again. Kept
//! free of I/O so the decisions are unit-tested exhaustively.

use crate::Severity;

/// The wraparound horizon: 2^31 ids.
pub const LIMIT: f64 = 2_147_483_648.0;

/// Which id space an age belongs to; their stop margins differed before PostgreSQL 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSpace {
    Transaction,
    Multixact,
}

/// How many ids before the limit PostgreSQL stops assigning new ones on server `major`.
pub fn stop_margin(space: IdSpace, major: u32) -> f64 {
    match (space, major >= 14) {
        (_, true) => 3_000_000.0,
        (IdSpace::Transaction, false) => 1_000_000.0,
        (IdSpace::Multixact, false) => 100.0,
    }
}

/// `age` as a percentage of the 2^31 limit.
pub fn percent_to_limit(age: f64) -> f64 {
    age / LIMIT * 100.0
}

/// Ids that can still be assigned before the server stops accepting writes.
pub fn ids_left(space: IdSpace, major: u32, age: f64) -> f64 {
    (LIMIT - stop_margin(space, major) - age).max(0.0)
}

/// The severity of an age: Critical or Warning when its percentage of the limit reaches the
/// `critical_percent` or `warning_percent` threshold; Info when it merely exceeds the freeze max
/// age (an anti-wraparound autovacuum is due, which is worth knowing because it cannot be
/// cancelled and may take long on big tables); otherwise none.
pub fn severity(
    age: f64,
    freeze_max_age: f64,
    warning_percent: f64,
    critical_percent: f64,
) -> Option<Severity> {
    let percent = percent_to_limit(age);
    if percent >= critical_percent {
        Some(Severity::Critical)
    } else if percent >= warning_percent {
        Some(Severity::Warning)
    } else if age > freeze_max_age {
        Some(Severity::Info)
    } else {
        None
    }
}

/// Rounds a percentage to what a reader needs (6 decimals keep tiny test thresholds visible).
pub fn round_percent(percent: f64) -> f64 {
    (percent * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREEZE_MAX_AGE: f64 = 200_000_000.0;

    #[test]
    fn healthy_age_has_no_severity() {
        assert_eq!(severity(150_000_000.0, FREEZE_MAX_AGE, 50.0, 75.0), None);
    }

    #[test]
    fn past_freeze_max_age_is_info() {
        assert_eq!(
            severity(250_000_000.0, FREEZE_MAX_AGE, 50.0, 75.0),
            Some(Severity::Info)
        );
        // Exactly at the freeze max age autovacuum is not yet forced.
        assert_eq!(severity(FREEZE_MAX_AGE, FREEZE_MAX_AGE, 50.0, 75.0), None);
    }

    #[test]
    fn percent_thresholds_win_over_info() {
        assert_eq!(
            severity(LIMIT * 0.5, FREEZE_MAX_AGE, 50.0, 75.0),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity(LIMIT * 0.75, FREEZE_MAX_AGE, 50.0, 75.0),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity(LIMIT, FREEZE_MAX_AGE, 50.0, 75.0),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn ids_left_accounts_for_the_stop_margin_and_never_goes_negative() {
        assert_eq!(ids_left(IdSpace::Transaction, 15, 0.0), LIMIT - 3_000_000.0);
        assert_eq!(ids_left(IdSpace::Transaction, 13, 0.0), LIMIT - 1_000_000.0);
        assert_eq!(ids_left(IdSpace::Multixact, 12, 0.0), LIMIT - 100.0);
        assert_eq!(ids_left(IdSpace::Multixact, 18, LIMIT), 0.0);
    }

    #[test]
    fn percent_of_limit() {
        assert_eq!(percent_to_limit(LIMIT / 4.0), 25.0);
        assert_eq!(round_percent(percent_to_limit(1000.0)), 0.000047);
    }
}
