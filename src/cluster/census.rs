//! The census: which node serves which streams to how many viewers, for `GET /streams`.
//!
//! Each node answers requests on `PREFIX-census` with its own streams. A node asked for the
//! cluster's view sends one request and takes the answers that arrive within a short window;
//! the view is kept for a second, so however often `/streams` is asked, a node sends at most
//! one census a second.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Cluster;
use crate::hub::Hub;
use crate::shutdown::Shutdown;
use crate::status::State;

/// How long answers are waited for.
const WINDOW: Duration = Duration::from_millis(150);
/// How long a census is reused.
const FRESH: Duration = Duration::from_secs(1);
/// Most answers read: far more nodes than a cluster of framecast needs.
const MAX_NODES: usize = 256;

/// One node's streams, as it answers a census.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStreams {
    /// The node's name.
    pub node: String,
    /// Its streams, by name.
    pub streams: Vec<NodeStream>,
}

/// One stream on one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStream {
    /// The stream's name.
    pub name: String,
    /// Its state there.
    pub state: State,
    /// Its subscribers there.
    pub subscribers: usize,
    /// Whether its source runs there (this node holds the source's lease).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runs_source: bool,
}

impl NodeStreams {
    /// Whether the source of the stream called `name` runs on this node.
    pub fn runs(&self, name: &str) -> bool {
        self.streams
            .iter()
            .any(|stream| stream.name == name && stream.runs_source)
    }
}

/// The last census taken, and when.
#[derive(Debug, Default)]
pub(super) struct Taken(Option<(Instant, Vec<NodeStreams>)>);

impl Cluster {
    /// Until shutdown: answers every census with this node's streams.
    pub(super) async fn answer_census(self: Arc<Self>, hub: Arc<Hub>, shutdown: Shutdown) {
        self.answer_all(self.census_subject(), shutdown, |_| {
            let answer = NodeStreams {
                node: self.node.clone(),
                streams: hub
                    .summary()
                    .into_iter()
                    .map(|stream| NodeStream {
                        runs_source: self.runs(&stream.name),
                        name: stream.name,
                        state: stream.state,
                        subscribers: stream.subscribers,
                    })
                    .collect(),
            };
            Some(
                serde_json::to_vec(&answer)
                    .expect("plain struct serializes")
                    .into(),
            )
        })
        .await;
    }

    /// Every node's streams, sorted by node, at most a second old; empty while NATS is
    /// unreachable.
    pub async fn census(&self) -> Vec<NodeStreams> {
        let mut taken = self.census.lock().await;
        if let Some((at, nodes)) = &taken.0
            && at.elapsed() < FRESH
        {
            return nodes.clone();
        }
        let nodes = if self.is_connected() {
            self.take_census().await
        } else {
            Vec::new()
        };
        taken.0 = Some((Instant::now(), nodes.clone()));
        nodes
    }

    async fn take_census(&self) -> Vec<NodeStreams> {
        let answers = self.ask_all(self.census_subject(), WINDOW, MAX_NODES).await;
        let mut nodes: Vec<NodeStreams> = answers
            .iter()
            .filter_map(|answer| serde_json::from_slice(answer).ok())
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        nodes
    }

    /// Whether another node answers the census under this node's name (asked before this node
    /// answers any).
    pub(super) async fn name_taken(&self) -> bool {
        let answers = self.ask_all(self.census_subject(), WINDOW, MAX_NODES).await;
        answers
            .iter()
            .filter_map(|answer| serde_json::from_slice::<NodeStreams>(answer).ok())
            .any(|answer| answer.node == self.node)
    }

    fn census_subject(&self) -> String {
        format!("{}-census", self.prefix)
    }
}
