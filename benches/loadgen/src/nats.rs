//! What a NATS server moved to and from each of its clients, from its monitoring port
//! (`GET /connz`): for a framecast cluster, how many copies of each frame went to each node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http;

/// Longest wait for `/connz`.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes a connection had moved when `/connz` was read: `in_bytes` (received by the NATS
/// server from the client) and `out_bytes` (sent by it to the client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Sent by the client to NATS.
    pub from_client: u64,
    /// Sent by NATS to the client.
    pub to_client: u64,
}

/// Every open connection's bytes, by connection name (`cid N` for an unnamed one; framecast
/// names its connection `framecast NODE`).
pub type Snapshot = BTreeMap<String, Moved>;

/// Reads `/connz` from the monitoring port at `monitor`.
pub async fn snapshot(monitor: SocketAddr) -> anyhow::Result<Snapshot> {
    let (status, body) = tokio::time::timeout(TIMEOUT, http::get(monitor, "/connz"))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {monitor}/connz within {TIMEOUT:?}"))??;
    if status != 200 {
        bail!("{monitor}/connz answered {status}");
    }
    parse_connz(&body)
}

/// The connections of a `/connz` answer.
pub fn parse_connz(body: &[u8]) -> anyhow::Result<Snapshot> {
    let all: Value = serde_json::from_slice(body).context("/connz is not JSON")?;
    let Some(list) = all["connections"].as_array() else {
        bail!("no \"connections\" list in /connz");
    };
    let mut out = Snapshot::new();
    for connection in list {
        let name = match connection["name"].as_str() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => format!("cid {}", connection["cid"].as_u64().unwrap_or(0)),
        };
        let moved = out.entry(name).or_default();
        moved.from_client += connection["in_bytes"].as_u64().unwrap_or(0);
        moved.to_client += connection["out_bytes"].as_u64().unwrap_or(0);
    }
    Ok(out)
}

/// What each connection moved between two snapshots, as JSON: bytes each way and, against
/// `frame_bytes` (the JPEG bytes published in the window), copies of the frames each way.
/// A connection missing from the first snapshot (it connected in between) counts from zero.
pub fn window_json(before: &Snapshot, after: &Snapshot, frame_bytes: u64) -> Value {
    let copies = |bytes: u64| {
        if frame_bytes > 0 {
            (bytes as f64 / frame_bytes as f64 * 1e4).round() / 1e4
        } else {
            0.0
        }
    };
    let connections: Vec<Value> = after
        .iter()
        .map(|(name, end)| {
            let start = before.get(name).copied().unwrap_or_default();
            let to = end.to_client.saturating_sub(start.to_client);
            let from = end.from_client.saturating_sub(start.from_client);
            json!({
                "name": name,
                "to_client_bytes": to,
                "from_client_bytes": from,
                "copies_to_client": copies(to),
                "copies_from_client": copies(from),
            })
        })
        .collect();
    json!({
        "frame_bytes_published": frame_bytes,
        "connections": connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connz_gives_bytes_by_connection_name() {
        let body = br#"{"server_id":"X","num_connections":3,"connections":[
            {"cid":5,"name":"framecast a","in_bytes":1000,"out_bytes":20},
            {"cid":6,"name":"framecast b","in_bytes":30,"out_bytes":2000},
            {"cid":7,"in_bytes":1,"out_bytes":2}
        ]}"#;
        let snapshot = parse_connz(body).unwrap();
        assert_eq!(
            snapshot["framecast b"],
            Moved {
                from_client: 30,
                to_client: 2000
            }
        );
        assert_eq!(snapshot["cid 7"].to_client, 2);
        assert!(parse_connz(b"{}").is_err());
    }

    #[test]
    fn the_window_counts_copies_of_the_frames() {
        let before = parse_connz(
            br#"{"connections":[{"name":"framecast a","in_bytes":100,"out_bytes":10}]}"#,
        )
        .unwrap();
        let after = parse_connz(
            br#"{"connections":[{"name":"framecast a","in_bytes":2100,"out_bytes":30},
                                {"name":"framecast b","in_bytes":5,"out_bytes":4000}]}"#,
        )
        .unwrap();
        let window = window_json(&before, &after, 2000);
        assert_eq!(window["frame_bytes_published"], 2000);
        let a = &window["connections"][0];
        assert_eq!(a["name"], "framecast a");
        assert_eq!(a["from_client_bytes"], 2000);
        assert_eq!(a["copies_from_client"], 1.0);
        assert_eq!(a["copies_to_client"], 0.01);
        let b = &window["connections"][1];
        assert_eq!(b["copies_to_client"], 2.0);
    }
}
