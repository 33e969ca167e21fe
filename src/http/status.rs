//! `GET /streams` and `GET /healthz`: what the server is doing, for people and for monitors.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// Every stream with its counters, frame rate, subscribers and newest frame's age and size.
pub async fn get_streams(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "streams": state.hub.summary() }))
}

/// Liveness: 200 while the server accepts requests.
pub async fn get_healthz() -> Json<Value> {
    Json(json!({ "ok": true }))
}
