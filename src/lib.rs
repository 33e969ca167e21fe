//! framecast: one JPEG source in, many Server-Sent Events viewers out.
//!
//! # How data flows
//!
//! Data moves one way. A producer — an HTTP upload (`POST /frames`, one JPEG or a continuous
//! MJPEG body cut up by [`mjpeg::Splitter`]) or a built-in [`source`] — yields bytes;
//! [`frame::Frame::from_jpeg`] validates them with the [`jpeg`] walker, so a corrupt picture stops
//! there. The [`hub`] numbers each frame and [`sse`] encodes it, once, into the complete bytes of
//! its `text/event-stream` event. Every `GET /events` subscriber is handed a reference-counted
//! clone of those bytes when its connection is ready for more; one that falls behind skips to
//! the newest frame instead of queueing. Nothing downstream calls back upstream, and every
//! stream ends when [`shutdown::Shutdown`] fires.
//!
//! # Layout
//!
//! - [`config`]: flags, environment variables and their documented defaults.
//! - [`server`]: the accept loop; [`http`]: routes and handlers; [`error`]: errors → HTTP.
//! - [`jpeg`], [`mjpeg`]: pure parsers, no I/O.
//! - [`frame`] → [`hub`] → [`sse`]: the hot path.

pub mod config;
pub mod error;
pub mod frame;
pub mod http;
pub mod hub;
pub mod jpeg;
pub mod mjpeg;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod source_state;
pub mod split_publisher;
pub mod sse;
pub mod stream_name;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// Runs framecast on an already-bound `listener` until `shutdown` fires.
///
/// Taking the listener (rather than an address) lets tests bind `127.0.0.1:0` and learn the port
/// before the server starts.
pub async fn run(listener: TcpListener, config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let hub = Arc::new(Hub::new(config.max_streams, config.max_subscribers));
    source::spawn_all(&config, &hub, &shutdown)?;
    tokio::spawn({
        let (hub, stall_after, shutdown) = (hub.clone(), config.stall_after, shutdown.clone());
        async move { hub.watch_streams(stall_after, shutdown).await }
    });
    let send_buffer_bytes = config.send_buffer_bytes;
    let state = http::AppState {
        hub,
        config: Arc::new(config),
        shutdown: shutdown.clone(),
    };
    server::serve(listener, http::router(state), send_buffer_bytes, shutdown).await?;
    Ok(())
}
