//! The cluster: several framecast nodes sharing their streams over NATS.
//!
//! One node carries a few thousand viewers; past that, nodes are added behind a load balancer
//! and `--nats` makes them act as one. framecast adds no protocol of its own: NATS moves the
//! frames, and JetStream (its storage layer) keeps the shared state.
//!
//! **One log per stream.** Every frame any node takes in is appended to a JetStream stream on
//! the subject `PREFIX.NAME.frame`, keeping only the newest message per subject. The append
//! names the log position the node last saw (`Nats-Expected-Last-Subject-Sequence`), so when
//! two nodes take frames for one stream at once, one append fails and is retried after
//! reading the newest frame: frames get one increasing `seq` cluster-wide, set by whoever
//! appended, and carried with the receive time in the message's headers (`sequence.rs`,
//! `wire.rs`).
//!
//! **Frames go only where they are watched.** A node follows a stream's log (an ordered
//! JetStream consumer) only while it has viewers of that stream; the consumer starts with the
//! newest frame and status, so a viewer joining anywhere sees the picture at once. Each node
//! encodes what it receives once for its own viewers, exactly as a local frame
//! (`follow.rs`).
//!
//! **One node runs each source.** A source (a camera, a replay, the test pattern) runs on the
//! node holding its lease in a JetStream key-value bucket; another takes over when it dies or
//! stops (`lease.rs`). Nodes tell each other how many viewers want each source, so that a
//! camera is pulled while anyone anywhere watches (`demand.rs`), and answer `/streams`'
//! census (`census.rs`, over `ask.rs`).
//!
//! **NATS trouble is local trouble only.** While NATS is unreachable, a node numbers its own
//! producers' frames itself and serves them to its own viewers; the client reconnects on its
//! own and the log is made again if the NATS server lost it.

mod address;
mod ask;
mod census;
mod demand;
mod follow;
mod lease;
mod sequence;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use tokio::sync::watch;

pub use address::{NatsServers, parse_servers};
pub use census::{NodeStream, NodeStreams};

use crate::config::Config;
use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// Bytes of a frame message's NATS headers (`seq`, `ts`, the expected log position) at most:
/// a frame of `--max-frame-bytes` plus these must fit the NATS server's `max_payload`.
pub const HEADER_ROOM: usize = 512;
/// How long the log keeps a stream's newest frame and status: the log holds one of each for
/// every stream name ever used, so names used once must not stay forever. A source's holder
/// says its status again well within this (see `lease.rs`).
pub const LOG_MAX_AGE: Duration = Duration::from_secs(3600);
/// Longest wait for NATS to confirm a frame was appended before the node numbers it alone.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);
/// After an append failed, how long frames are numbered here before appending is tried again.
const RETRY_APPEND_AFTER: Duration = Duration::from_secs(1);
/// Time allowed to reach NATS at start; after that, the node reconnects on its own.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages one subscription holds before the NATS client drops what does not fit. A follower
/// that falls this far behind loses frames, and its ordered consumer starts again at the
/// newest one: it skips ahead as a slow viewer does, holding at most this many frames (the
/// client's default, 65,536, could hold gigabytes of them).
const SUBSCRIPTION_CAPACITY: usize = 64;

/// Why the node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server could be reached or it refused the credentials.
    #[error("cannot connect to NATS at {servers}: {reason}")]
    Connect {
        /// The servers, without credentials.
        servers: String,
        /// What went wrong.
        reason: String,
    },
    /// Frames up to `--max-frame-bytes` would not fit a NATS message.
    #[error(
        "--max-frame-bytes is {max_frame_bytes}, but the NATS server takes messages of at most \
         {max_payload} bytes ({HEADER_ROOM} of them kept for headers): raise max_payload in \
         nats-server's configuration (e.g. `max_payload: 8MB`) or lower --max-frame-bytes to \
         {fits}"
    )]
    FramesTooLarge {
        /// The configured largest frame.
        max_frame_bytes: usize,
        /// The server's `max_payload`.
        max_payload: usize,
        /// The largest `--max-frame-bytes` that fits.
        fits: usize,
    },
    /// Another node already uses this node's name.
    #[error(
        "another node of the cluster is already called {0:?}: give each node its own \
         --nats-node (or leave it out for a random one)"
    )]
    NameTaken(String),
    /// The NATS server has no JetStream, or refused to make the log.
    #[error("cannot set up the frame log in NATS JetStream (is nats-server run with -js?): {0}")]
    JetStream(String),
}

/// This node's membership of a cluster: its NATS connection and the shared log.
#[derive(Debug)]
pub struct Cluster {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// Prefix of every subject and name this cluster uses in NATS.
    prefix: String,
    /// This node's name, as other nodes and `/streams` see it.
    node: String,
    /// This process among the nodes: its name and a random suffix, so that leases and viewer
    /// counts can never be mistaken for another process's, even one given the same name.
    instance: String,
    /// The frame log's settings, to make it again if NATS lost it.
    log_config: jetstream::stream::Config,
    /// When appending last failed, if it has not worked since: a failure is logged once, and
    /// for [`RETRY_APPEND_AFTER`] frames are numbered here without waiting on NATS.
    failing: Mutex<Option<tokio::time::Instant>>,
    /// How long a source's lease lasts without renewal.
    lease: Duration,
    /// Whether the NATS connection is up, as its events tell.
    connected: watch::Sender<bool>,
    /// The streams whose sources run on this node now.
    running: Mutex<HashSet<String>>,
    /// The node last heard running each followed stream's source.
    owners: Mutex<HashMap<String, String>>,
    /// The last census of every node's streams.
    census: tokio::sync::Mutex<census::Taken>,
}

impl Cluster {
    /// Connects to the NATS servers `--nats` names and makes sure the frame log exists.
    pub async fn connect(config: &Config, servers: &NatsServers) -> Result<Cluster, ClusterError> {
        let node = config.nats_node.clone().unwrap_or_else(default_node_name);
        let connect_error = |reason: String| ClusterError::Connect {
            servers: servers.to_string(),
            reason,
        };
        let (connected, _) = watch::channel(false);
        let told = connected.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("framecast {node}"))
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .max_reconnects(None)
            .event_callback(move |event| {
                let told = told.clone();
                async move { note_event(&event, &told) }
            });
        options = servers.authenticate(options);
        if let Some(path) = &config.nats_creds {
            options = options
                .credentials_file(path)
                .await
                .map_err(|err| connect_error(format!("{}: {err}", path.display())))?;
        }
        let client = async_nats::connect_with_options(servers.addresses(), options)
            .await
            .map_err(|err| connect_error(err.to_string()))?;
        connected.send_replace(true);
        let max_payload = client.server_info().max_payload;
        if config.max_frame_bytes + HEADER_ROOM > max_payload {
            return Err(ClusterError::FramesTooLarge {
                max_frame_bytes: config.max_frame_bytes,
                max_payload,
                fits: max_payload.saturating_sub(HEADER_ROOM),
            });
        }
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(APPEND_TIMEOUT);
        let prefix = config.nats_prefix.clone();
        let log_config = jetstream::stream::Config {
            name: format!("{prefix}-frames"),
            subjects: wire::log_subjects(&prefix),
            max_messages_per_subject: 1,
            max_age: LOG_MAX_AGE,
            max_message_size: i32::try_from(max_payload).unwrap_or(i32::MAX),
            storage: StorageType::Memory,
            allow_direct: true,
            ..Default::default()
        };
        let instance = format!("{node}~{:08x}", fastrand::u32(..));
        let cluster = Cluster {
            client,
            jetstream,
            prefix,
            node,
            instance,
            log_config,
            failing: Mutex::new(None),
            lease: config.nats_lease,
            connected,
            running: Mutex::default(),
            owners: Mutex::default(),
            census: tokio::sync::Mutex::default(),
        };
        cluster
            .ensure_log()
            .await
            .map_err(|err| ClusterError::JetStream(err.to_string()))?;
        if cluster.name_taken().await {
            return Err(ClusterError::NameTaken(cluster.node));
        }
        tracing::info!(servers = %servers, node = %cluster.node, max_payload, "joined the cluster");
        Ok(cluster)
    }

    /// This node's name in the cluster.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the source of the stream called `name` runs on this node now.
    pub fn runs(&self, name: &str) -> bool {
        self.running
            .lock()
            .expect("running lock poisoned")
            .contains(name)
    }

    fn set_running(&self, name: &str, running: bool) {
        let mut streams = self.running.lock().expect("running lock poisoned");
        if running {
            streams.insert(name.to_owned());
            self.set_owner(name, &self.node);
        } else {
            streams.remove(name);
        }
    }

    /// The node running the source of the stream called `name`, as far as this node knows.
    pub fn owner(&self, name: &str) -> Option<String> {
        self.owners
            .lock()
            .expect("owners lock poisoned")
            .get(name)
            .cloned()
    }

    fn set_owner(&self, name: &str, node: &str) {
        let mut owners = self.owners.lock().expect("owners lock poisoned");
        if owners.get(name).is_none_or(|known| known != node) {
            owners.insert(name.to_owned(), node.to_owned());
        }
    }

    /// Whether the node is connected to NATS right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The NATS connection going up and down.
    pub fn connection(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Bytes received from and sent to NATS so far, payloads and headers.
    pub fn traffic(&self) -> (u64, u64) {
        let statistics = self.client.statistics();
        (
            statistics.in_bytes.load(Ordering::Relaxed),
            statistics.out_bytes.load(Ordering::Relaxed),
        )
    }

    /// Until shutdown: follows, on behalf of its viewers here, every stream watched on this
    /// node, and answers the other nodes' questions (census, numbering).
    pub async fn run(self: Arc<Self>, hub: Arc<Hub>, shutdown: Shutdown) {
        tokio::spawn(self.clone().answer_census(hub.clone(), shutdown.clone()));
        tokio::spawn(self.clone().answer_recalls(hub.clone(), shutdown.clone()));
        follow::follow_watched(self, hub, shutdown).await;
    }

    /// Makes the frame log if it does not exist (first start, or NATS restarted without it).
    async fn ensure_log(&self) -> Result<jetstream::stream::Stream, async_nats::Error> {
        Ok(self
            .jetstream
            .get_or_create_stream(self.log_config.clone())
            .await?)
    }
}

/// A name for a node started without `--nats-node`: the host's name and a random suffix, so
/// that two nodes on one host differ.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "framecast".to_owned());
    format!("{host}-{:06x}", fastrand::u32(..0x100_0000))
}

/// Logs what happens to the NATS connection (losing it is worth a warning, the rest less) and
/// tells `connected`.
fn note_event(event: &async_nats::Event, connected: &watch::Sender<bool>) {
    match event {
        async_nats::Event::Disconnected => {
            tracing::warn!("lost the NATS connection; serving local streams until it is back");
            connected.send_replace(false);
        }
        async_nats::Event::Connected => {
            tracing::info!("connected to NATS");
            connected.send_replace(true);
        }
        other => tracing::debug!(event = %other, "NATS"),
    }
}

impl Cluster {
    /// Whether frames may be appended now: NATS is connected, and appending has not failed
    /// within [`RETRY_APPEND_AFTER`] (a NATS that takes connections but not appends would
    /// otherwise hold every frame for [`APPEND_TIMEOUT`]).
    fn may_append(&self) -> bool {
        let failed = *self.failing.lock().expect("failing lock poisoned");
        self.is_connected() && failed.is_none_or(|at| at.elapsed() >= RETRY_APPEND_AFTER)
    }

    /// Notes that appending failed, logging it the first time.
    fn append_failed(&self, reason: &str) {
        let mut failing = self.failing.lock().expect("failing lock poisoned");
        if failing.is_none() {
            tracing::warn!(%reason, "cannot append frames to the cluster log; numbering them here");
        }
        *failing = Some(tokio::time::Instant::now());
    }

    /// Notes that appending works, logging it if it had failed.
    fn append_works(&self) {
        if self
            .failing
            .lock()
            .expect("failing lock poisoned")
            .take()
            .is_some()
        {
            tracing::info!("appending frames to the cluster log again");
        }
    }
}
