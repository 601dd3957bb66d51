//! Durability settings that trade crash safety for speed: `fsync`, `full_page_writes` and
//! `synchronous_commit`.
//!
//! `fsync = off` and `full_page_writes = off` turn an operating-system crash or power loss into
//! a corrupted cluster; `synchronous_commit = off` only loses the last commits. They are often
//! left behind from a bulk load or a benchmark.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct UnsafeDurabilitySettings;

static META: CheckMeta = CheckMeta {
    id: "unsafe-durability-settings",
    category: Category::Security,
    title: "Unsafe durability settings",
    measures: "Whether fsync, full_page_writes or synchronous_commit are switched off, and where they were set.",
    params: &[Param {
        name: "atomic_page_writes",
        default: 0.0,
        unit: "bool",
        help: "1 when the storage guarantees atomic block-size writes (e.g. ZFS), so full_page_writes = off is only Info",
    }],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "fsync = off lets a power loss or OS crash lose or reorder writes the WAL says are durable; \
              full_page_writes = off lets a torn 8 kB page survive crash recovery. Either way the cluster \
              can come back corrupted, silently. synchronous_commit = off loses the last few hundred \
              milliseconds of acknowledged commits on a crash, without corruption.",
        action: "Set fsync and full_page_writes back to on and reload (both are reload-level); if the server \
                 ever crashed while they were off, treat the data as suspect: run pg_amcheck and compare with \
                 the last good backup. Keep synchronous_commit = off only where losing recent commits is an \
                 accepted business decision, and prefer setting it per transaction or per role.",
        next: "SELECT name, setting, source, sourcefile, sourceline FROM pg_settings \
               WHERE name IN ('fsync','full_page_writes','synchronous_commit'); \
               -- then: ALTER SYSTEM SET fsync = on; ALTER SYSTEM SET full_page_writes = on; SELECT pg_reload_conf();",
    },
};

// sourcefile/sourceline are NULL unless the role may read all settings; that only thins evidence.
const SQL: &str = "\
SELECT name, setting, source, sourcefile, sourceline::int4 AS sourceline
FROM pg_settings
WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit')
ORDER BY name";

/// The severity and the consequence sentence for one setting's value, if it is unsafe.
fn evaluate(name: &str, value: &str, atomic_page_writes: bool) -> Option<(Severity, &'static str)> {
    match (name, value) {
        ("fsync", "off") => Some((
            Severity::Critical,
            "a power loss or OS crash can corrupt the cluster; set fsync = on",
        )),
        ("full_page_writes", "off") if atomic_page_writes => Some((
            Severity::Info,
            "safe only because the storage is declared to write 8 kB pages atomically",
        )),
        ("full_page_writes", "off") => Some((
            Severity::Critical,
            "torn pages survive crash recovery unless the filesystem guarantees atomic 8 kB writes (e.g. ZFS)",
        )),
        ("synchronous_commit", "off") => Some((
            Severity::Info,
            "a crash loses the last acknowledged commits (no corruption)",
        )),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Check for UnsafeDurabilitySettings {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let atomic_page_writes = ctx.param("atomic_page_writes") >= 1.0;
        let mut findings = Vec::new();
        for row in ctx.query(SQL, &[]).await? {
            let name: String = row.get("name");
            let value: String = row.get("setting");
            let Some((severity, consequence)) = evaluate(&name, &value, atomic_page_writes) else {
                continue;
            };
            let source: String = row.get("source");
            findings.push(
                Finding::new(
                    severity,
                    format!("setting {name}"),
                    format!("{name} = {value} (set in {source}): {consequence}"),
                )
                .with("setting", name)
                .with("value", value)
                .with("source", source)
                .with("sourcefile", row.get::<_, Option<String>>("sourcefile"))
                .with("sourceline", row.get::<_, Option<i32>>("sourceline")),
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
    fn severities() {
        assert_eq!(evaluate("fsync", "on", false), None);
        assert_eq!(
            evaluate("fsync", "off", true).map(|e| e.0),
            Some(Severity::Critical)
        );
        assert_eq!(
            evaluate("full_page_writes", "off", false).map(|e| e.0),
            Some(Severity::Critical)
        );
        assert_eq!(
            evaluate("full_page_writes", "off", true).map(|e| e.0),
            Some(Severity::Info)
        );
        assert_eq!(
            evaluate("synchronous_commit", "off", false).map(|e| e.0),
            Some(Severity::Info)
        );
        assert_eq!(evaluate("synchronous_commit", "local", false), None);
    }

    #[tokio::test]
    async fn reports_fsync_and_full_page_writes_off_as_critical() {
        let options = LabOptions::new(PgInstall::for_tests())
            .name("pgdbre-durability")
            .setting("fsync", "off")
            .setting("full_page_writes", "off");
        let cluster = Cluster::start(options).expect("start a private cluster");
        let findings =
            testkit::findings(&UnsafeDurabilitySettings, &cluster.primary().dsn(), &[]).await;
        for name in ["fsync", "full_page_writes"] {
            let finding = findings
                .iter()
                .find(|f| f.evidence("setting").and_then(|v| v.as_str()) == Some(name))
                .unwrap_or_else(|| panic!("no finding for {name}: {findings:?}"));
            assert_eq!(finding.severity, Severity::Critical, "{finding:?}");
            assert_eq!(
                finding.evidence("value").and_then(|v| v.as_str()),
                Some("off")
            );
            assert_eq!(
                finding.evidence("source").and_then(|v| v.as_str()),
                Some("configuration file")
            );
            let file = finding
                .evidence("sourcefile")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            assert!(file.ends_with("pgdbre.conf"), "{finding:?}");
        }
        assert!(
            !findings
                .iter()
                .any(|f| f.evidence("setting").and_then(|v| v.as_str())
                    == Some("synchronous_commit")),
            "{findings:?}"
        );

        let declared_atomic = testkit::findings(
            &UnsafeDurabilitySettings,
            &cluster.primary().dsn(),
            &[("atomic_page_writes", 1.0)],
        )
        .await;
        let full_page_writes = declared_atomic
            .iter()
            .find(|f| f.evidence("setting").and_then(|v| v.as_str()) == Some("full_page_writes"))
            .expect("full_page_writes still reported");
        assert_eq!(full_page_writes.severity, Severity::Info);
    }

    #[tokio::test]
    async fn quiet_on_the_lab() {
        let cluster = testing::shared();
        let findings =
            testkit::findings(&UnsafeDurabilitySettings, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }
}
