//! `GET /streams` and `GET /healthz`: what the server is doing, for people and for monitors.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, access};
use crate::error::Error;

/// Query parameters of `GET /streams`.
#[derive(Debug, Deserialize)]
pub struct StreamsQuery {
    /// An access token, where a header cannot be sent.
    access_token: Option<String>,
    /// In a cluster, `?local` (or `local=true`) leaves out the other nodes.
    local: Option<String>,
}

/// Every stream the request may watch, with its counters, frame rate, subscribers and newest
/// frame's age and size; and how many viewer connections are open, whatever they carry.
pub async fn get_streams(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamsQuery>, QueryRejection>,
) -> Result<Json<Value>, Error> {
    let Query(query) = query.map_err(|err| Error::BadQuery(err.body_text()))?;
    let reader = access::reader(&state, &headers, query.access_token.as_deref())?;
    let mut streams = state.hub.summary();
    streams.retain(|stream| reader.may_watch(&stream.name));
    let Some(cluster) = &state.cluster else {
        return Ok(Json(
            json!({ "streams": streams, "viewers": state.viewers.get() }),
        ));
    };
    let local = query
        .local
        .is_some_and(|value| !matches!(value.as_str(), "0" | "false"));
    let mut nodes = if local {
        Vec::new()
    } else {
        cluster.census().await
    };
    for node in &mut nodes {
        node.streams.retain(|stream| reader.may_watch(&stream.name));
    }
    // The node running each source: as the census says, or as this node last heard.
    let owner = |name: &str| {
        nodes
            .iter()
            .find(|node| node.runs(name))
            .map(|node| node.node.clone())
            .or_else(|| cluster.owner(name))
    };
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|stream| {
            let owner = owner(&stream.name);
            let mut entry = serde_json::to_value(stream).expect("plain struct serializes");
            if let Some(owner) = owner {
                entry["owner"] = owner.into();
            }
            entry
        })
        .collect();
    let mut answer = json!({
        "node": cluster.node(),
        "streams": streams,
        "viewers": state.viewers.get(),
    });
    if !local {
        answer["cluster"] = json!({ "connected": cluster.is_connected(), "nodes": nodes });
    }
    Ok(Json(answer))
}

/// Liveness: 200 while the server accepts requests, and in a cluster whether NATS is
/// reachable (a node without NATS still serves its own streams, so it stays 200).
pub async fn get_healthz(State(state): State<AppState>) -> Json<Value> {
    match &state.cluster {
        None => Json(json!({ "ok": true })),
        Some(cluster) => Json(json!({
            "ok": true,
            "cluster": { "node": cluster.node(), "connected": cluster.is_connected() },
        })),
    }
}
