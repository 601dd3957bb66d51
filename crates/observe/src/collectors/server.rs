//! `pg_static` and `pg_postmaster_start_time_seconds`: what is running and since when.

use super::{Collector, Scrape};
use crate::{Family, MetricType};
use async_trait::async_trait;

pub struct Server;

const SQL: &str = "SELECT pg_catalog.version(), \
    extract(epoch FROM pg_catalog.pg_postmaster_start_time())::float8 AS start_time";

#[async_trait]
impl Collector for Server {
    fn id(&self) -> &'static str {
        "server"
    }
    fn describe(&self) -> &'static str {
        "`version()`, `pg_postmaster_start_time()`: pg_static, pg_postmaster_start_time_seconds"
    }
    async fn collect(&self, scrape: &Scrape<'_>) -> Result<Vec<Family>, tokio_postgres::Error> {
        let row = scrape.session.client().query_one(SQL, &[]).await?;
        let version: String = row.try_get(0)?;
        let start_time: f64 = row.try_get(1)?;
        let info = scrape.session.info();
        // postgres_exporter's `short_version` is the semver of server_version_num.
        let short_version = format!("{}.{}.0", info.version.major(), info.version.minor());
        Ok(vec![
            Family::new(
                "pg_static",
                "Version string as reported by postgres",
                MetricType::Untyped,
            )
            .with(
                &[("short_version", &short_version), ("version", &version)],
                1.0,
            ),
            Family::gauge(
                "pg_postmaster_start_time_seconds",
                "Time at which postmaster started",
            )
            .with(&[], start_time),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_support::{collect, family, value};

    #[tokio::test]
    async fn reports_version_and_start_time() {
        let dsn = pgdbre_lab::testing::shared().primary().dsn();
        let families = collect(&Server, &dsn).await;
        let sample = &family(&families, "pg_static").samples[0];
        let short = &sample.labels[0].1;
        assert!(
            short.ends_with(".0") && short.split('.').count() == 3,
            "{short}"
        );
        assert!(sample.labels[1].1.starts_with("PostgreSQL "), "{sample:?}");
        let started = value(&families, "pg_postmaster_start_time_seconds", &[]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started > now - 86_400.0 && started <= now + 1.0,
            "{started}"
        );
    }
}
