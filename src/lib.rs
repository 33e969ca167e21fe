//! framecast: one JPEG source in, many Server-Sent Events viewers out.
//!
//! # How data flows
//!
//! Data moves one way: source → frame → hub → outputs. A producer — an HTTP upload
//! (`POST /frames`, one JPEG or a continuous MJPEG body cut up by [`mjpeg::Splitter`]) or a
//! built-in [`source`] — yields bytes. [`publish`] is the one way in: it validates them as a
//! [`frame::Frame`] with the [`jpeg`] walker, so a corrupt picture stops there, and hands the
//! frame to its [`hub::Stream`], which numbers it and has [`sse`] encode it, once, into the
//! complete bytes of its `text/event-stream` event. Every `GET /events` subscriber is handed a
//! reference-counted clone of those bytes when its connection is ready for more; one that falls
//! behind skips to the newest frame instead of queueing. Nothing downstream calls back
//! upstream, and every stream ends when [`shutdown::Shutdown`] fires.
//!
//! # Words
//!
//! A **stream** is what a name points at ([`stream_name::StreamName`] → [`hub::Stream`]). Its
//! **source** is what feeds it ([`hub::SourceKind`]; the built-in ones live in [`source`]). Its
//! **status** is what `event: status` reports: a [`status::State`] and a reason. A
//! **subscriber** holds a [`hub::Subscription`]; the `GET /events` response that serves it is
//! its **viewer**.
//!
//! # Layout
//!
//! - [`config`]: flags, environment variables and their documented defaults.
//! - [`jpeg`], [`mjpeg`]: pure parsers, no I/O. A frame is **validated** by [`jpeg::inspect`];
//!   byte streams are cut into candidate frames by [`mjpeg::Splitter`].
//! - [`frame`]: a validated JPEG and its receive time.
//! - [`publish`]: validate-and-publish, shared by uploads and sources.
//! - [`source`]: the built-in producers (test pattern, camera, stdin, file replay).
//! - [`hub`]: streams by name and their limits; a frame is **numbered** in
//!   [`hub::Stream::publish`], which keeps the one newest-frame slot per stream.
//! - [`sse`]: the wire format; a frame is **encoded** once, in [`sse::encode_frame`].
//! - [`scale`]: a frame decoded and **scaled** to a narrower width, once per variant (the
//!   variants themselves live in the hub, beside their stream).
//! - [`status`]: a stream's status and its encoded `event: status`.
//! - [`stream_name`]: what a stream may be called.
//! - [`http`]: routes and handlers; a frame is **written** to a viewer by `http::viewer`,
//!   which follows one stream or several on one connection; who may do what is
//!   `http::access`, and what one client may hold is `http::quota`.
//! - [`server`]: the accept loop, and the direct path that serves idle-cheap event streams.
//! - [`error`]: errors → HTTP, the one place a status code is chosen.
//! - [`cluster`]: several nodes as one over NATS — frames numbered in a shared log, followed
//!   by the nodes that have viewers, and each source run by the one node holding its lease.
//! - [`metrics`]: what `GET /metrics` reports, read from the hub's counters when scraped.
//! - [`secret`]: tokens, compared in constant time and never shown.
//! - [`jwt`]: access tokens minted by the operator's backend, verified into a grant.
//! - [`shutdown`]: the signal every long-lived task stops on.

pub mod cluster;
pub mod config;
pub mod error;
pub mod frame;
pub mod http;
pub mod hub;
pub mod jpeg;
pub mod jwt;
pub mod metrics;
pub mod mjpeg;
pub mod publish;
pub mod scale;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod sse;
pub mod status;
pub mod stream_name;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::hub::{Hub, Stream};
use crate::shutdown::Shutdown;
use crate::source::Source;

/// framecast with its configuration checked and its source streams made, ready to serve.
///
/// Everything that can be wrong with a configuration is found by [`App::new`], before a
/// listener is bound or announced, so a bad start fails at once and says why.
#[derive(Debug)]
pub struct App {
    config: Config,
    verifier: Option<jwt::Verifier>,
    tls: Option<server::tls::Tls>,
    hub: Arc<Hub>,
    sources: Vec<(Arc<Stream>, Source)>,
    cluster: Option<Arc<cluster::Cluster>>,
}

impl App {
    /// Checks `config` and creates the streams its sources feed.
    pub fn new(mut config: Config) -> anyhow::Result<App> {
        config.publish_token = config.publish_token().map_err(anyhow::Error::msg)?;
        config.metrics_token = config.metrics_token().map_err(anyhow::Error::msg)?;
        let verifier = config.verifier().map_err(anyhow::Error::msg)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(server::tls::acceptor(cert, key).map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        let hub = Arc::new(Hub::with_limits(
            config.max_streams,
            config.max_waiting_streams,
            config.max_subscribers,
            hub::IDLE_STREAM_LIFETIME,
        ));
        let mut sources = Vec::new();
        for (name, source) in source::plan(&config)? {
            let stream = hub.publisher(&name, source.kind())?;
            sources.push((stream, source));
        }
        Ok(App {
            config,
            verifier,
            tls,
            hub,
            sources,
            cluster: None,
        })
    }

    /// Joins the cluster `--nats` names, if it names one: connects, and checks that the NATS
    /// server takes frames as large as `--max-frame-bytes`.
    pub async fn join_cluster(&mut self) -> anyhow::Result<()> {
        if let Some(servers) = &self.config.nats {
            let cluster = cluster::Cluster::connect(&self.config, servers).await?;
            self.cluster = Some(Arc::new(cluster));
        }
        Ok(())
    }

    /// Serves on already-bound `listeners` until `shutdown` fires.
    pub async fn run(self, listeners: Vec<TcpListener>, shutdown: Shutdown) -> anyhow::Result<()> {
        let App {
            config,
            verifier,
            tls,
            hub,
            sources,
            cluster,
        } = self;
        if let Some(cluster) = &cluster {
            tokio::spawn(cluster.clone().run(hub.clone(), shutdown.clone()));
        }
        // Sources leased in a cluster are waited for at the end, so that they give their leases
        // up before the process exits.
        let leased = tokio_util::task::TaskTracker::new();
        for (stream, source) in sources {
            let publisher = publish::Publisher::new(stream.clone(), cluster.clone());
            match &cluster {
                // Standard input is this node's own; every other source runs on one node.
                Some(cluster) if source.kind() != hub::SourceKind::Stdin => {
                    let demand = cluster.demand(&stream, shutdown.clone());
                    let publisher = publisher.with_demand(demand);
                    leased.spawn(
                        cluster
                            .clone()
                            .run_source(source, publisher, shutdown.clone()),
                    );
                }
                _ => {
                    tokio::spawn(source.run(publisher, shutdown.clone()));
                }
            }
        }
        tokio::spawn({
            let (hub, stall_after, shutdown) = (hub.clone(), config.stall_after, shutdown.clone());
            async move { hub.upkeep(stall_after, shutdown).await }
        });
        let limits = server::ConnectionLimits {
            send_buffer_bytes: config.send_buffer_bytes,
            send_timeout: config.send_timeout,
            max_connections: server::fit_to_fd_limit(
                config.max_connections,
                server::raise_fd_limit(),
            ),
        };
        let loopback_only = listeners.iter().all(|listener| {
            listener
                .local_addr()
                .is_ok_and(|addr| addr.ip().is_loopback())
        });
        let metrics = Arc::new(metrics::Metrics::new());
        let state = http::AppState::new(
            hub,
            Arc::new(config),
            verifier,
            shutdown.clone(),
            loopback_only,
            metrics.clone(),
            cluster,
        );
        let router = http::router(state);
        server::serve(listeners, router, limits, tls, &metrics, shutdown).await?;
        leased.close();
        leased.wait().await;
        Ok(())
    }
}

/// Runs framecast on an already-bound `listener` until `shutdown` fires.
///
/// Taking the listener (rather than an address) lets tests bind `127.0.0.1:0` and learn the port
/// before the server starts.
pub async fn run(listener: TcpListener, config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut app = App::new(config)?;
    app.join_cluster().await?;
    app.run(vec![listener], shutdown).await
}
