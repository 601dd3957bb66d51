//! The HTML dashboard `pgdbre serve` answers at `/`: per SLO its SLI, budget remaining and burn
//! rates with a burn-rate chart, the findings of the last check-catalog run, and each standby's
//! replica lag. Server-rendered HTML with inline SVG; no script, it reloads itself.
//!
//! Flow: [`Dashboard::render`] gathers plain view-model values (`model.rs`) from three sources —
//! the SLO spec evaluated against the state store (`slo.rs`, the same evaluation as
//! `pgdbre slo status`), the catalog's last reports (`findings.rs`), and the families of a fresh
//! scrape (`replication.rs`) — and `page.rs` and `svg.rs` turn them into markup. Only the
//! gathering touches I/O; the rendering is pure and unit-tested.

mod escape;
mod findings;
mod model;
mod page;
mod replication;
mod slo;
mod svg;

use crate::Family;
use model::{Page, SloSection};
use pgdbre_check::TargetReport;
use pgdbre_slo::{SliKind, Spec};
use pgdbre_store::SqliteStore;
use replication::LagLimits;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between two reloads of the page.
const REFRESH_SECS: u32 = 30;

/// What the dashboard shows beyond the scrape, validated by the CLI.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// The `--slo` spec and the file it was read from.
    pub slo: Option<(PathBuf, Spec)>,
    /// The state store the SLOs are evaluated from; `None` for `--store none`.
    pub store: Option<PathBuf>,
}

/// The dashboard of one `pgdbre serve`.
pub struct Dashboard {
    config: Arc<DashboardConfig>,
    limits: LagLimits,
}

impl Dashboard {
    /// A dashboard for `config`; lag colours follow the replica-lag SLO's target when there is one.
    pub fn new(config: DashboardConfig) -> Dashboard {
        let slo_target = config.slo.as_ref().and_then(|(_, spec)| {
            spec.slos
                .iter()
                .find(|slo| slo.kind == SliKind::ReplicaLag)
                .map(|slo| slo.target)
        });
        Dashboard {
            config: Arc::new(config),
            limits: LagLimits::from_catalog(slo_target),
        }
    }

    /// The page for the configured servers `names`, the families of a scrape of them, and the
    /// last catalog report of each (`None`: the catalog is off).
    pub async fn render(
        &self,
        names: &[String],
        families: &[Family],
        reports: Option<Vec<Option<TargetReport>>>,
    ) -> String {
        let now = SystemTime::now();
        let slos = self.slo_section(now).await;
        let findings = match reports {
            None => model::FindingsSection::Disabled,
            Some(reports) => {
                let last: Vec<(String, Option<TargetReport>)> =
                    names.iter().cloned().zip(reports).collect();
                findings::section(&last)
            }
        };
        let title = self.config.slo.as_ref().map_or_else(
            || "pgdbre serve".to_string(),
            |(_, spec)| spec.service.clone(),
        );
        page::render(&Page {
            title,
            generated: utc(now),
            refresh_secs: REFRESH_SECS,
            targets: replication::targets(names, families),
            slos,
            findings,
            lag: replication::lag_rows(families, &self.limits),
        })
    }

    /// Evaluates the SLOs on a blocking thread: SQLite reads are synchronous.
    async fn slo_section(&self, now: SystemTime) -> SloSection {
        let Some((file, _)) = &self.config.slo else {
            return SloSection::NotConfigured;
        };
        let config = Arc::clone(&self.config);
        let evaluated = tokio::task::spawn_blocking(move || {
            let (_, spec) = config.slo.as_ref().expect("checked above");
            let Some(path) = &config.store else {
                let reason = "no state store (`--store none`): nothing to evaluate";
                return (
                    Some(format!(
                        "{reason}; hint: restart with --store PATH to record probe results"
                    )),
                    slo::unknown_views(spec, now, reason),
                );
            };
            match SqliteStore::open_read_only(path).and_then(|store| slo::views(&store, spec, now))
            {
                Ok(views) => (None, views),
                Err(error) => {
                    let reason = error.to_string();
                    let views = slo::unknown_views(spec, now, &reason);
                    (Some(reason), views)
                }
            }
        })
        .await;
        let (problem, slos) = evaluated
            .unwrap_or_else(|error| (Some(format!("SLO evaluation failed: {error}")), Vec::new()));
        SloSection::Configured {
            file: file.display().to_string(),
            problem,
            slos,
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: proleptic Gregorian calendar from days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates() {
        let at = |secs: u64| utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(1_740_000_000), "2025-02-19 21:20:00 UTC");
        // A leap day and the turn of a century year.
        assert_eq!(at(951_825_600), "2000-02-29 12:00:00 UTC");
        assert_eq!(at(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
