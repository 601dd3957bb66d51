//! What a scrape may cost: timeouts and the cardinality bounds for per-table series.

use std::time::Duration;

/// Limits applied to every scrape of every target.
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    /// Opening a session may take this long; a server that is down answers `pg_up 0` within it.
    pub connect_timeout: Duration,
    /// Each collector may take this long; it is also the session's `statement_timeout`.
    pub collector_timeout: Duration,
    /// Slow collectors (`Collector::slow`) are re-run at most this often; zero: every scrape.
    pub slow_interval: Duration,
    /// Per-table series only for this many tables, the largest by `relpages`.
    pub table_limit: u32,
    /// Only tables whose `schema.table` matches this PostgreSQL regular expression (`~`).
    pub table_include: Option<String>,
    /// Never tables whose `schema.table` matches this PostgreSQL regular expression.
    pub table_exclude: Option<String>,
    /// `pg_stat_statements` series only for this many statements, the most total execution time
    /// first; 0 turns the `stat-statements` collector off.
    pub statements_limit: u32,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        ScrapeOptions {
            connect_timeout: Duration::from_secs(3),
            collector_timeout: Duration::from_secs(2),
            slow_interval: Duration::from_secs(60),
            table_limit: 50,
            table_include: None,
            table_exclude: None,
            statements_limit: 20,
        }
    }
}

/// Parses `250ms`, `2s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}`; use e.g. 500ms, 2s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        assert!(parse_duration("soon").unwrap_err().contains("use e.g."));
        assert!(parse_duration("5 weeks")
            .unwrap_err()
            .contains("unknown duration unit"));
    }
}
