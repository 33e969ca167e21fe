//! The HTTP surface: which route goes to which handler, and the layers around them.
//!
//! Reading routes (`/events`, `/mjpeg`, `/snapshot`, `/streams`, `/metrics`, `/`, `/healthz`) are open to other origins through
//! CORS, without credentials. `POST /frames` is not: a web page on another site must not be
//! able to publish into a stream, so its uploads are refused (`cross_site.rs`) unless its
//! origin is in `--publish-origins`, which also get CORS for the upload.

mod access;
mod client;
mod cross_site;
mod events;
mod host;
mod ingest;
mod metrics;
mod page;
mod quota;
mod snapshot;
mod status;
mod viewer;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::hub::Hub;
use crate::jwt::Verifier;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
pub use quota::Quotas;
use viewer::ViewerCount;

/// The event-stream route. The direct path in `server` takes requests for exactly this path,
/// so the two must never disagree.
pub const EVENTS_PATH: &str = "/events";

/// How long a browser may cache a CORS preflight, so reconnects do not pay for one each time.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// What every handler can reach. A clone is a shallow clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// All streams.
    pub hub: Arc<Hub>,
    /// The server's settings.
    pub config: Arc<Config>,
    /// Ends open event streams and uploads when the server stops.
    pub shutdown: Shutdown,
    /// Whether every listening address is a loopback one: then requests must be addressed to
    /// a loopback name (see `host.rs`).
    pub loopback_only: bool,
    /// What one client, and all uploads together, may hold.
    pub quotas: Arc<Quotas>,
    /// Checks access tokens, when `--jwt-secret` or `--jwt-public-key` is set.
    pub verifier: Option<Arc<Verifier>>,
    /// Open event-stream responses.
    pub viewers: Arc<ViewerCount>,
    /// What `GET /metrics` reports beyond the hub's own counters.
    pub metrics: Arc<Metrics>,
    /// The cluster this node is part of, if any: uploads are numbered through it.
    pub cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// The state for `hub` and `config`, with the access-token `verifier` if one is set.
    pub fn new(
        hub: Arc<Hub>,
        config: Arc<Config>,
        verifier: Option<Verifier>,
        shutdown: Shutdown,
        loopback_only: bool,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        let quotas = Arc::new(Quotas::new(&config));
        AppState {
            hub,
            config,
            shutdown,
            loopback_only,
            quotas,
            verifier: verifier.map(Arc::new),
            viewers: Arc::default(),
            metrics,
            cluster,
        }
    }
}

/// The whole application as a router, ready to serve.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let reading = Router::new()
        .route("/", get(page::get_page))
        .route(EVENTS_PATH, get(events::get_events))
        .route("/mjpeg", get(events::get_mjpeg))
        .route("/snapshot", get(snapshot::get_snapshot))
        .route("/streams", get(status::get_streams))
        .route("/healthz", get(status::get_healthz))
        .route("/metrics", get(metrics::get_metrics))
        .layer(cors);
    let mut writing = Router::new().route("/frames", post(ingest::post_frames));
    if !state.config.publish_origins.is_empty() {
        writing = writing.layer(publish_cors_layer(&state.config.publish_origins));
    }
    reading
        .merge(writing)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        // Outermost, so that every answer is counted, refusals included.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::count_responses,
        ))
        .with_state(state)
}

/// CORS for uploads from the pages of `--publish-origins`.
fn publish_cors_layer(origins: &[String]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(allowed_origins(origins))
        .allow_methods([Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// `origins` as tower-http wants them: any, or the list.
fn allowed_origins(origins: &[String]) -> AllowOrigin {
    if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| origin.parse().ok()))
    }
}

/// CORS for the reading routes: named origins or any, never credentials.
fn cors_layer(origins: &[String]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(allowed_origins(origins))
        .allow_methods([Method::GET])
        // `authorization` must be named: a `*` wildcard never covers it.
        .allow_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::CACHE_CONTROL,
            header::IF_NONE_MATCH,
            HeaderName::from_static("last-event-id"),
        ])
        // What a snapshot poller on another origin needs to read.
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            header::LAST_MODIFIED,
            HeaderName::from_static("x-frame-seq"),
            HeaderName::from_static("x-frame-age-ms"),
            HeaderName::from_static("x-stream-state"),
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}
