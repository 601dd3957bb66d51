//! Backup labels in pgBackRest's style: the UTC start time and the type, `20261125-181500F`.
//! Sorting labels as strings sorts backups by start time.

use crate::manifest::BackupType;

/// The label of a backup of `backup_type` started at `unix_seconds` (UTC).
pub fn backup_label(unix_seconds: i64, backup_type: BackupType) -> String {
    let (year, month, day, hour, minute, second) = utc_parts(unix_seconds);
    format!(
        "{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}{}",
        backup_type.suffix()
    )
}

/// `2026-11-25 18:15:00 UTC` for reports.
pub fn format_utc(unix_ns: i64) -> String {
    let (year, month, day, hour, minute, second) = utc_parts(unix_ns.div_euclid(1_000_000_000));
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// Calendar date and time of day (UTC) of a Unix time, by Howard Hinnant's days-to-civil.
fn utc_parts(unix_seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix_seconds.div_euclid(86_400);
    let seconds_of_day = unix_seconds.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_pgbackrest_style() {
        // 2026-11-25 18:15:00 UTC
        assert_eq!(
            backup_label(1_795_630_500, BackupType::Full),
            "20261125-181500F"
        );
        assert_eq!(
            backup_label(1_795_630_500, BackupType::Incremental),
            "20261125-181500I"
        );
        assert_eq!(backup_label(0, BackupType::Full), "19700101-000000F");
        // Leap day.
        assert_eq!(
            backup_label(951_782_400, BackupType::Full),
            "20000229-000000F"
        );
        assert_eq!(
            format_utc(1_795_630_500_123_000_000),
            "2026-11-25 18:15:00 UTC"
        );
    }
}
