//! The arithmetic shared by the wraparound checks (`txid-wraparound`, `multixact-wraparound`,
//! `table-wraparound`): how far an age is from the 2^31 limit, and what severity that earns.
//!
//! Transaction ids and multixact ids are 32-bit counters compared modulo 2^32, so any id older
//! than 2^31 would suddenly look like it is in the future. PostgreSQL refuses to assign new ids
//! a safety margin before that point (3 million since PostgreSQL 14; before, 1 million for xids
//! and 100 for multixacts) and only single-user-mode VACUUM gets the server going again. The
//! decisions are kept free of I/O so they are unit-tested exhaustively; [`database_findings`] is
//! the one query loop, shared by the two per-database checks.

use crate::{CheckError, Context, Finding, Severity};
use tokio_postgres::Row;

/// The wraparound horizon: 2^31 ids.
pub const LIMIT: f64 = 2_147_483_648.0;

/// Which id space an age belongs to; their stop margins differed before PostgreSQL 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSpace {
    Transaction,
    Multixact,
}

impl IdSpace {
    /// What the ages are called in summaries: `xid age`, `multixact age`.
    fn noun(self) -> &'static str {
        match self {
            IdSpace::Transaction => "xid",
            IdSpace::Multixact => "multixact",
        }
    }

    /// The setting past which an anti-wraparound autovacuum is forced.
    fn freeze_setting(self) -> &'static str {
        match self {
            IdSpace::Transaction => "autovacuum_freeze_max_age",
            IdSpace::Multixact => "autovacuum_multixact_freeze_max_age",
        }
    }

    /// The evidence keys of a per-database finding: the age, and the ids left.
    fn evidence_keys(self) -> (&'static str, &'static str) {
        match self {
            IdSpace::Transaction => ("xid_age", "transactions_left"),
            IdSpace::Multixact => ("mxid_age", "multixacts_left"),
        }
    }

    /// What is left before the limit and what stops working then, for a summary.
    fn left_before_stop(self, left: f64) -> String {
        match self {
            IdSpace::Transaction => format!("{left:.0} transactions left before writes stop"),
            IdSpace::Multixact => {
                format!("{left:.0} multixacts left before shared row locks fail")
            }
        }
    }
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

/// The summary of a finding of `severity` about `age`: for Warning and Critical, its share of the
/// limit against the threshold crossed, then `consequence`; for Info, the forced
/// anti-wraparound autovacuum that is due.
pub fn summary(
    space: IdSpace,
    severity: Severity,
    age: f64,
    freeze_max_age: f64,
    (warning_percent, critical_percent): (f64, f64),
    consequence: &str,
) -> String {
    let noun = space.noun();
    if severity >= Severity::Warning {
        let percent = round_percent(percent_to_limit(age));
        let threshold = if severity == Severity::Critical {
            critical_percent
        } else {
            warning_percent
        };
        format!(
            "{noun} age {age:.0} is {percent}% of the 2^31 limit (threshold {threshold}%); \
             {consequence}"
        )
    } else {
        format!(
            "{noun} age {age:.0} exceeds {} {freeze_max_age:.0}: anti-wraparound autovacuum is due",
            space.freeze_setting()
        )
    }
}

/// Runs `sql` (one row per database: text `datname`, int8 `age` and `freeze_max_age`) and
/// returns a finding per database whose age earns a severity, with the evidence the
/// per-database checks share; `extra` appends check-specific evidence from the row.
pub async fn database_findings(
    ctx: &Context<'_>,
    space: IdSpace,
    sql: &str,
    extra: impl Fn(Finding, &Row) -> Finding,
) -> Result<Vec<Finding>, CheckError> {
    let major = ctx.info().version.major();
    let thresholds = (ctx.param("warning"), ctx.param("critical"));
    let (age_key, left_key) = space.evidence_keys();
    let mut findings = Vec::new();
    for row in ctx.query(sql, &[]).await? {
        let age = row.get::<_, i64>("age") as f64;
        let freeze_max_age = row.get::<_, i64>("freeze_max_age") as f64;
        let Some(severity) = severity(age, freeze_max_age, thresholds.0, thresholds.1) else {
            continue;
        };
        let database: String = row.get("datname");
        let left = ids_left(space, major, age);
        let summary = summary(
            space,
            severity,
            age,
            freeze_max_age,
            thresholds,
            &space.left_before_stop(left),
        );
        let finding = Finding::new(severity, format!("database \"{database}\""), summary)
            .with("database", database)
            .with(age_key, age)
            .with("freeze_max_age", freeze_max_age)
            .with("percent_to_limit", round_percent(percent_to_limit(age)))
            .with(left_key, left);
        findings.push(extra(finding, &row));
    }
    Ok(findings)
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
    fn summaries_name_the_threshold_or_the_forced_autovacuum() {
        let thresholds = (50.0, 75.0);
        assert_eq!(
            summary(
                IdSpace::Transaction,
                Severity::Warning,
                LIMIT / 2.0,
                FREEZE_MAX_AGE,
                thresholds,
                "soon"
            ),
            "xid age 1073741824 is 50% of the 2^31 limit (threshold 50%); soon"
        );
        assert_eq!(
            summary(
                IdSpace::Multixact,
                Severity::Critical,
                LIMIT,
                FREEZE_MAX_AGE,
                thresholds,
                &IdSpace::Multixact.left_before_stop(0.0)
            ),
            "multixact age 2147483648 is 100% of the 2^31 limit (threshold 75%); \
             0 multixacts left before shared row locks fail"
        );
        assert_eq!(
            summary(
                IdSpace::Multixact,
                Severity::Info,
                250_000_000.0,
                FREEZE_MAX_AGE,
                thresholds,
                "unused"
            ),
            "multixact age 250000000 exceeds autovacuum_multixact_freeze_max_age 200000000: \
             anti-wraparound autovacuum is due"
        );
    }

    #[test]
    fn percent_of_limit() {
        assert_eq!(percent_to_limit(LIMIT / 4.0), 25.0);
        assert_eq!(round_percent(percent_to_limit(1000.0)), 0.000047);
    }
}
