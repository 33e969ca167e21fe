//! `GET /metrics` for Prometheus, and the layer that counts every response for it.
//!
//! A scrape is one synchronous pass over the streams (see [`crate::metrics`]); its answer
//! grows with the number of streams, which `--max-streams` bounds, and never with the number
//! of subscribers. It names every stream, so with any access control configured it needs the
//! metrics token or an access token that may watch every stream (`access.rs`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, access};
use crate::error::Error;
use crate::metrics::{self, ClusterGauges, HttpGauges, Metrics};

/// Every metric in the Prometheus text format.
pub async fn get_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    access::check_metrics_reader(&state, &headers)?;
    let quotas = &state.quotas;
    let http = HttpGauges {
        viewers: state.viewers.get(),
        uploads: (state.config.max_uploads)
            .saturating_sub(quotas.uploads_total.available_permits()),
        upload_buffer_bytes: quotas.upload_bytes.used(),
    };
    let cluster = state.cluster.as_ref().map(|cluster| {
        let (received_bytes, sent_bytes) = cluster.traffic();
        ClusterGauges {
            connected: cluster.is_connected(),
            received_bytes,
            sent_bytes,
        }
    });
    let text = state.metrics.render(&state.hub, http, cluster);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(response)
}

/// Counts the response to every request by route and status, once its head is ready (a
/// stream's 200 is counted when it opens).
pub async fn count_responses(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = metrics::route(request.uri().path());
    let response = next.run(request).await;
    metrics.record_response(route, response.status());
    response
}
