//! Data checksums: whether the cluster detects torn or corrupted pages when it reads them.
//!
//! Without checksums a page damaged by the storage, a kernel bug or a bad controller is read as
//! valid data: queries return wrong rows, indexes point nowhere, and backups copy the damage on
//! until someone notices. With checksums the first read fails loudly and `pg_checksums --check`
//! or `pg_amcheck` can sweep a copy.

use crate::{
    Category, Check, CheckError, CheckMeta, Context, Finding, Requires, Runbook, Severity,
};

/// See the module docs.
pub struct DataChecksumsOff;

static META: CheckMeta = CheckMeta {
    id: "data-checksums-off",
    category: Category::Security,
    title: "Data checksums disabled",
    measures: "Whether the cluster was initialised (or converted) with data page checksums (`data_checksums`).",
    params: &[],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Without data checksums, pages corrupted by storage, firmware or kernel bugs are read as valid \
              data: wrong query results and broken indexes go undetected and every backup copies the damage.",
        action: "Enable checksums offline with pg_checksums (PostgreSQL 12+): stop the server cleanly, run \
                 `pg_checksums --enable`, start it again; time it on a copy first (it rewrites every data file). \
                 For a replicated cluster enable them on each node (or rebuild the standbys from the converted \
                 primary). New clusters: `initdb --data-checksums` (the default from PostgreSQL 18).",
        next: "SHOW data_checksums; -- then on the host: pg_ctl stop -m fast -D \"$PGDATA\" && \
               pg_checksums --enable --progress -D \"$PGDATA\" && pg_ctl start -D \"$PGDATA\"",
    },
};

const SQL: &str = "SELECT current_setting('data_checksums') AS data_checksums";

/// The finding for a `data_checksums` value, if it is a problem.
fn evaluate(data_checksums: &str) -> Option<Finding> {
    if data_checksums == "on" {
        return None;
    }
    Some(
        Finding::new(
            Severity::Warning,
            "cluster",
            format!("data_checksums is {data_checksums}: corrupted pages are read as valid data"),
        )
        .with("setting", "data_checksums")
        .with("value", data_checksums),
    )
}

#[async_trait::async_trait]
impl Check for DataChecksumsOff {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let row = ctx.query_one(SQL, &[]).await?;
        let value: String = row.get("data_checksums");
        Ok(evaluate(&value).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use pgdbre_lab::{testing, Cluster, LabOptions, PgInstall};

    #[test]
    fn only_off_is_a_finding() {
        assert!(evaluate("on").is_none());
        let finding = evaluate("off").expect("off is reported");
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(
            finding.evidence("value").and_then(|v| v.as_str()),
            Some("off")
        );
    }

    #[tokio::test]
    async fn quiet_on_the_lab_which_has_checksums() {
        let cluster = testing::shared();
        let findings = testkit::findings(&DataChecksumsOff, &cluster.primary().dsn(), &[]).await;
        assert!(findings.is_empty(), "{findings:?}");
    }

    /// The lab always initialises with `--data-checksums`, so the test turns them off the way an
    /// operator would turn them on: `pg_checksums` on the cleanly stopped server.
    #[tokio::test]
    async fn reports_a_cluster_without_checksums() {
        let cluster =
            Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-checksums"))
                .expect("start a private cluster");
        let primary = cluster.primary();
        primary.stop().expect("stop the primary");
        let output = primary
            .install()
            .server_command("pg_checksums")
            .arg("--disable")
            .arg("-D")
            .arg(primary.data_dir())
            .output()
            .expect("run pg_checksums");
        assert!(
            output.status.success(),
            "pg_checksums --disable: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        primary.start().expect("start the primary again");

        let findings = testkit::findings(&DataChecksumsOff, &primary.dsn(), &[]).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(
            findings[0].evidence("setting").and_then(|v| v.as_str()),
            Some("data_checksums")
        );
        assert_eq!(
            findings[0].evidence("value").and_then(|v| v.as_str()),
            Some("off")
        );
    }
}
