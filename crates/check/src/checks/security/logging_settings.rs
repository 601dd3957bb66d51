//! Logging settings a DBRE needs during and after an incident: lock waits, slow statements,
//! checkpoints, autovacuum runs, temporary files, and a line prefix that says when and which
//! backend.
//!
//! These cost little to have on and cannot be turned on after the fact: the incident that
//! needed them has already happened by the time someone notices they were off.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct LoggingSettings;

static META: CheckMeta = CheckMeta {
    id: "logging-settings",
    category: Category::Configuration,
    title: "Incident logging disabled",
    measures: "Whether log_lock_waits, log_min_duration_statement, log_checkpoints, log_autovacuum_min_duration, \
               log_temp_files and log_line_prefix record what an incident investigation needs.",
    params: &[],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without lock-wait and slow-statement logs a lock pile-up or latency spike leaves no trace of \
              who blocked whom or which statement was slow; without timestamps and pids in the prefix log \
              lines cannot be correlated with sessions or other systems.",
        action: "Set the listed settings to the recommended values (all are reload-level) and reload; size \
                 log_min_duration_statement to your latency SLO so the log stays small.",
        next: "ALTER SYSTEM SET log_lock_waits = on; ALTER SYSTEM SET log_min_duration_statement = '1s'; \
               ALTER SYSTEM SET log_checkpoints = on; ALTER SYSTEM SET log_autovacuum_min_duration = '10min'; \
               ALTER SYSTEM SET log_temp_files = 0; ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d '; \
               SELECT pg_reload_conf();",
    },
};

const SQL: &str = "\
SELECT name, setting
FROM pg_settings
WHERE name IN ('log_lock_waits', 'log_min_duration_statement', 'log_checkpoints',
               'log_autovacuum_min_duration', 'log_temp_files', 'log_line_prefix', 'log_destination')
ORDER BY name";

/// One setting that should change: severity, recommended value and what is lost without it.
#[derive(Debug, PartialEq)]
struct Advice {
    severity: Severity,
    recommended: &'static str,
    consequence: &'static str,
}

/// The advice for `name` at `value`, if it is a problem. `log_destination` decides whether the
/// line prefix matters (csvlog and jsonlog carry timestamp and pid in their own fields).
fn evaluate(name: &str, value: &str, log_destination: &str) -> Option<Advice> {
    let advice = |severity, recommended, consequence| {
        Some(Advice {
            severity,
            recommended,
            consequence,
        })
    };
    match (name, value) {
        ("log_lock_waits", "off") => advice(
            Severity::Warning,
            "on",
            "lock waits longer than deadlock_timeout are not logged",
        ),
        ("log_min_duration_statement", "-1") => {
            advice(Severity::Warning, "1s", "slow statements are not logged")
        }
        ("log_checkpoints", "off") => advice(
            Severity::Info,
            "on",
            "checkpoint timing and causes are not logged",
        ),
        ("log_autovacuum_min_duration", "-1") => advice(
            Severity::Info,
            "10min",
            "long autovacuum runs are not logged",
        ),
        ("log_temp_files", "-1") => advice(
            Severity::Info,
            "0",
            "queries spilling to temporary files are not logged",
        ),
        ("log_line_prefix", prefix)
            if writes_plain_lines(log_destination) && !prefix_identifies(prefix) =>
        {
            advice(
                Severity::Info,
                "%m [%p] %q%u@%d ",
                "log lines lack a timestamp (%m/%t/%n) or the backend pid (%p)",
            )
        }
        _ => None,
    }
}

/// Whether the log is written as plain text lines, where only log_line_prefix adds context.
fn writes_plain_lines(log_destination: &str) -> bool {
    log_destination
        .split(',')
        .any(|d| matches!(d.trim(), "stderr" | "syslog" | "eventlog"))
}

/// Whether a prefix carries both a timestamp and the backend pid.
fn prefix_identifies(prefix: &str) -> bool {
    let has_time = ["%m", "%t", "%n"]
        .iter()
        .any(|escape| prefix.contains(escape));
    has_time && prefix.contains("%p")
}

#[async_trait::async_trait]
impl Check for LoggingSettings {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let settings: Vec<(String, String)> = ctx
            .query(SQL, &[])
            .await?
            .iter()
            .map(|row| (row.get("name"), row.get("setting")))
            .collect();
        let log_destination = settings
            .iter()
            .find(|(name, _)| name == "log_destination")
            .map_or("stderr", |(_, value)| value.as_str());
        let mut findings = Vec::new();
        for (name, value) in &settings {
            let Some(advice) = evaluate(name, value, log_destination) else {
                continue;
            };
            findings.push(
                Finding::new(
                    advice.severity,
                    format!("setting {name}"),
                    format!(
                        "{name} = '{value}': {} (recommended: '{}')",
                        advice.consequence, advice.recommended
                    ),
                )
                .with("setting", name.as_str())
                .with("value", value.as_str())
                .with("recommended", advice.recommended),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{testing, Cluster, LabOptions, PgInstall};

    #[test]
    fn advice_per_setting() {
        assert_eq!(
            evaluate("log_lock_waits", "off", "stderr").map(|a| a.severity),
            Some(Severity::Warning)
        );
        assert_eq!(evaluate("log_lock_waits", "on", "stderr"), None);
        assert_eq!(
            evaluate("log_min_duration_statement", "-1", "stderr").map(|a| a.severity),
            Some(Severity::Warning)
        );
        assert_eq!(
            evaluate("log_min_duration_statement", "1000", "stderr"),
            None
        );
        assert_eq!(
            evaluate("log_temp_files", "-1", "stderr").map(|a| a.severity),
            Some(Severity::Info)
        );
        assert_eq!(evaluate("log_line_prefix", "%m [%p] ", "stderr"), None);
        assert_eq!(
            evaluate("log_line_prefix", "%t ", "stderr").map(|a| a.severity),
            Some(Severity::Info)
        );
        assert_eq!(evaluate("log_line_prefix", "", "csvlog"), None);
        assert_eq!(
            evaluate("log_line_prefix", "", "csvlog,stderr").map(|a| a.severity),
            Some(Severity::Info)
        );
    }

    #[tokio::test]
    async fn reports_lock_waits_and_slow_statements_off() {
        let options = LabOptions::new(PgInstall::for_tests())
            .name("pgdbre-logging")
            .setting("log_lock_waits", "off")
            .setting("log_min_duration_statement", "-1")
            .setting("log_line_prefix", "%u@%d ");
        let cluster = Cluster::start(options).expect("start a private cluster");
        let findings = testkit::findings(&LoggingSettings, &cluster.primary().dsn(), &[]).await;
        let about = |name: &str| {
            findings
                .iter()
                .find(|f| f.evidence("setting").and_then(|v| v.as_str()) == Some(name))
                .unwrap_or_else(|| panic!("no finding for {name}: {findings:?}"))
        };
        let lock_waits = about("log_lock_waits");
        assert_eq!(lock_waits.severity, Severity::Warning);
        assert_eq!(
            lock_waits.evidence("value").and_then(|v| v.as_str()),
            Some("off")
        );
        assert_eq!(
            lock_waits.evidence("recommended").and_then(|v| v.as_str()),
            Some("on")
        );
        let slow = about("log_min_duration_statement");
        assert_eq!(slow.severity, Severity::Warning);
        assert_eq!(slow.evidence("value").and_then(|v| v.as_str()), Some("-1"));
        let prefix = about("log_line_prefix");
        assert_eq!(prefix.severity, Severity::Info);
        assert_eq!(
            prefix.evidence("value").and_then(|v| v.as_str()),
            Some("%u@%d ")
        );
    }

    #[tokio::test]
    async fn lab_has_no_warnings() {
        let cluster = testing::shared();
        let findings = testkit::findings(&LoggingSettings, &cluster.primary().dsn(), &[]).await;
        assert!(
            findings.iter().all(|f| f.severity == Severity::Info),
            "{findings:?}"
        );
    }
}
