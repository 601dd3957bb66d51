//! The HTTP face of `pgdbre serve`: `/metrics`, `/probe?target=`, `/healthz` and the dashboard
//! at `/` (rendered by [`crate::dashboard`]).
//!
//! `/metrics` scrapes every configured target concurrently and appends the last check-catalog
//! run. `/probe` scrapes one target, postgres_exporter's multi-target pattern: `target` is the
//! name of a configured target (`host:port/dbname`) or a DSN, whose session is kept for the
//! next probe (a bounded number of them).

use crate::collectors::pgbouncer::Pgbouncer;
use crate::{
    encode, merge, CheckCatalog, Dashboard, DashboardConfig, ProbeOptions, ScrapeOptions, Target,
};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::join_all;
use pgdbre_pg::ConnConfig;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Probed DSNs whose sessions are kept; beyond this the oldest is dropped.
const PROBE_CACHE: usize = 64;

/// Everything `pgdbre serve` needs, validated by the CLI.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub targets: Vec<ConnConfig>,
    pub options: ScrapeOptions,
    /// How often the check catalog runs; `None` disables it.
    pub check_interval: Option<Duration>,
    /// PgBouncer admin consoles (`dbname=pgbouncer`) scraped into `pgbouncer_*` on `/metrics`.
    pub pgbouncers: Vec<ConnConfig>,
    /// The synthetic probes of every configured target (not of `/probe` targets); `None`
    /// disables them.
    pub probes: Option<ProbeOptions>,
    /// The SLO spec and state store the dashboard at `/` evaluates.
    pub dashboard: DashboardConfig,
}

struct App {
    targets: Vec<Arc<Target>>,
    pgbouncers: Vec<Pgbouncer>,
    probes: Mutex<Vec<(String, Arc<Target>)>>,
    options: Arc<ScrapeOptions>,
    catalog: Option<CheckCatalog>,
    dashboard: Dashboard,
}

/// Binds `config.listen` and serves until SIGINT or SIGTERM. Returns the bind error, if any.
pub async fn serve(config: ServeConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let options = Arc::new(config.options);
    let catalog = config
        .check_interval
        .map(|interval| CheckCatalog::spawn(config.targets.clone(), interval));
    let app = Arc::new(App {
        targets: config
            .targets
            .into_iter()
            .map(|c| {
                let target = Target::new(c, Arc::clone(&options));
                Arc::new(match &config.probes {
                    Some(probes) => target.with_probes(probes.clone()),
                    None => target,
                })
            })
            .collect(),
        pgbouncers: config
            .pgbouncers
            .into_iter()
            .map(|c| Pgbouncer::new(c, Arc::clone(&options)))
            .collect(),
        probes: Mutex::new(Vec::new()),
        options,
        catalog,
        dashboard: Dashboard::new(config.dashboard),
    });
    let names: Vec<&str> = app.targets.iter().map(|t| t.name()).collect();
    tracing::info!(listen = %listener.local_addr()?, targets = ?names, "serving metrics");
    let router = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}

/// The dashboard, from a fresh scrape of every target and the catalog's last run.
async fn index(State(app): State<Arc<App>>) -> Html<String> {
    let scrapes = join_all(app.targets.iter().map(|t| t.scrape())).await;
    let families: Vec<_> = scrapes.into_iter().flatten().collect();
    let names: Vec<String> = app.targets.iter().map(|t| t.name().to_owned()).collect();
    let reports = app.catalog.as_ref().map(CheckCatalog::reports);
    Html(app.dashboard.render(&names, &families, reports).await)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (mut scrapes, bouncers) = futures::join!(
        join_all(app.targets.iter().map(|t| t.scrape())),
        join_all(app.pgbouncers.iter().map(|b| b.scrape()))
    );
    scrapes.extend(bouncers);
    let mut body = encode(&merge(scrapes));
    if let Some(catalog) = &app.catalog {
        body.push_str(&catalog.render());
    }
    exposition(body)
}

async fn probe(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(wanted) = query.get("target").filter(|t| !t.trim().is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "missing ?target=: give a configured target name (host:port/dbname) or a DSN\n",
        )
            .into_response();
    };
    let target = match find_target(&app, wanted).await {
        Ok(target) => target,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    };
    exposition(encode(&target.scrape().await))
}

/// A configured target by name, else a cached or new target for the DSN.
async fn find_target(app: &App, wanted: &str) -> Result<Arc<Target>, String> {
    if let Some(target) = app.targets.iter().find(|t| t.name() == wanted) {
        return Ok(Arc::clone(target));
    }
    let mut probes = app.probes.lock().await;
    if let Some((_, target)) = probes.iter().find(|(dsn, _)| dsn == wanted) {
        return Ok(Arc::clone(target));
    }
    let config = ConnConfig::resolve(Some(wanted)).map_err(|e| e.to_string())?;
    let target = Arc::new(Target::new(config, Arc::clone(&app.options)));
    if probes.len() >= PROBE_CACHE {
        probes.remove(0);
    }
    probes.push((wanted.to_owned(), Arc::clone(&target)));
    Ok(target)
}

fn exposition(body: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}
