//! The accept loop: one task per TCP connection, each served by hyper's HTTP/1.1 engine, except
//! event streams, which `direct.rs` serves without hyper's buffers.
//!
//! framecast runs its own loop instead of `axum::serve` for four reasons: a header-read timeout
//! needs a timer installed on the connection, the write buffer limit keeps hyper from queueing
//! several frames for a slow viewer (so it skips to the newest instead), on shutdown every
//! connection is closed within a deadline even when a client never leaves, and an idle
//! subscriber should cost a few hundred bytes of heap rather than hyper's two 8 KiB buffers.

mod direct;
mod send_timeout;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
pub use send_timeout::SendTimeout;

/// Time a client has to send its request headers; defends against slowloris connections.
/// The direct path waits this long for the first bytes; a head that is not complete then
/// gets the same time again from hyper.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Hyper stops pulling frames from a response once this much is queued for the socket, so a
/// viewer that cannot keep up holds about one frame in user space, then skips to the newest.
/// (Hyper's minimum is 8 KiB; the same limit caps the request-header buffer.)
const WRITE_BUFFER_LIMIT: usize = 64 * 1024;
/// Most requests one HTTP/2 connection may have open at once: a page of cameras and then some.
const HTTP2_MAX_STREAMS: u32 = 256;
/// How often an HTTP/2 connection is pinged, so that a peer gone without a word is noticed.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Connections taken beyond `--max-connections`, each only long enough to answer `/healthz` or
/// refuse with 503, so that a full server still says it is alive; past these, a new connection
/// is closed at once.
const OVERFLOW_CONNECTIONS: usize = 16;
/// All the time an overflow connection gets, request and answer included.
const OVERFLOW_DEADLINE: Duration = Duration::from_secs(2);
/// File descriptors kept free of client connections: standard streams, listeners, camera
/// connections, replayed files, and the overflow connections.
const RESERVED_FDS: u64 = 64 + OVERFLOW_CONNECTIONS as u64;
/// Longest wait for open connections to close once shutdown has begun.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Resolves `address` (`HOST:PORT`) and binds every address it names, all on one port: a
/// port of 0 is picked for the first and reused for the rest. An address the machine does
/// not have (such as `::1` with IPv6 turned off) is skipped with a warning while another binds;
/// anything else, such as a port in use, is an error.
pub async fn bind(address: &str) -> io::Result<Vec<TcpListener>> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|err| io::Error::new(err.kind(), format!("cannot resolve {address}: {err}")))?
        .collect();
    let mut listeners: Vec<TcpListener> = Vec::new();
    let mut unavailable = None;
    for mut addr in resolved {
        if let Some(first) = listeners.first() {
            addr.set_port(first.local_addr()?.port());
        }
        if listeners.iter().any(|l| l.local_addr().ok() == Some(addr)) {
            continue;
        }
        match TcpListener::bind(addr).await {
            Ok(listener) => listeners.push(listener),
            Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {
                tracing::warn!(%addr, %err, "skipping an address this machine does not have");
                unavailable = Some(err);
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot listen on {addr}: {err}"),
                ));
            }
        }
    }
    if listeners.is_empty() {
        return Err(unavailable.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address} resolves to no address"),
            )
        }));
    }
    Ok(listeners)
}

/// What every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Caps each socket's kernel send buffer (0: leave it to the kernel).
    pub send_buffer_bytes: usize,
    /// A connection that accepts no bytes for this long is closed (zero: never).
    pub send_timeout: Duration,
    /// Most connections served at once; see [`fit_to_fd_limit`].
    pub max_connections: usize,
}

/// Raises this process's open-file soft limit to its hard limit, and returns the limit then in
/// force (`None` where it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(%err, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// `max_connections`, lowered if need be so that connections never use up `fd_limit`: a full
/// server then refuses connections cleanly instead of failing to accept them.
pub fn fit_to_fd_limit(max_connections: usize, fd_limit: Option<u64>) -> usize {
    let Some(fd_limit) = fd_limit else {
        return max_connections;
    };
    let room = usize::try_from(fd_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    if max_connections > room {
        tracing::warn!(
            max_connections,
            fd_limit,
            serving = room,
            "--max-connections is more than the open-file limit allows; raise the limit \
             (ulimit -n, or LimitNOFILE= in a systemd unit) to serve that many"
        );
    }
    max_connections.min(room)
}

/// Serves `router` on every one of `listeners` until `shutdown` fires, then closes every
/// connection.
///
/// With `tls`, every connection is HTTPS, HTTP/2 or HTTP/1.1 as the client prefers. Open
/// connections are tracked in `metrics`, where `/metrics` reads them.
pub async fn serve(
    listeners: Vec<TcpListener>,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<tls::Tls>,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> io::Result<()> {
    let connections = metrics.connections.clone();
    let overflow = tokio_util::task::TaskTracker::new();
    let mut incoming = futures_util::stream::select_all(
        listeners
            .into_iter()
            .map(tokio_stream::wrappers::TcpListenerStream::new),
    );
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            accepted = incoming.next() => accepted,
        };
        let Some(accepted) = accepted else { break };
        let socket = match accepted {
            Ok(socket) => socket,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Only fails if the client has already gone.
        let Ok(peer) = socket.peer_addr() else {
            continue;
        };
        if connections.len() >= limits.max_connections {
            metrics.record_refused();
            if overflow.len() < OVERFLOW_CONNECTIONS {
                overflow.spawn(serve_overflow(socket, peer, router.clone()));
            } else {
                tracing::debug!(%peer, "closing a connection: the server is full");
            }
            continue;
        }
        metrics.record_accepted();
        // Frames are written whole; waiting to coalesce small writes only adds latency.
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(%err, %peer, "could not set TCP_NODELAY");
        }
        // A viewer that stops reading fills its socket's send buffer; capped, a thousand of them
        // cannot push the kernel into TCP memory pressure, which would slow every connection.
        if limits.send_buffer_bytes > 0
            && let Err(err) =
                socket2::SockRef::from(&socket).set_send_buffer_size(limits.send_buffer_bytes)
        {
            tracing::debug!(%err, %peer, "could not set SO_SNDBUF");
        }
        if let Some(tls) = &tls {
            let socket = SendTimeout::new(socket, limits.send_timeout);
            connections.spawn(serve_tls(
                socket,
                peer,
                router.clone(),
                tls.clone(),
                shutdown.clone(),
            ));
            continue;
        }
        connections.spawn(serve_connection(
            socket,
            peer,
            router.clone(),
            limits.send_timeout,
            shutdown.clone(),
        ));
    }
    connections.close();
    overflow.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        tokio::join!(connections.wait(), overflow.wait())
    })
    .await
    .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period"
        );
    }
    Ok(())
}

/// Serves one connection until it closes: directly if it is an event stream the direct path
/// takes, else with hyper. This future is the connection's task, alive as long as a subscriber.
async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    router: Router,
    send_timeout: Duration,
    shutdown: Shutdown,
) {
    let timeouts = direct::Timeouts {
        header: HEADER_READ_TIMEOUT,
        send: send_timeout,
    };
    let socket = match direct::serve(socket, &peer, &router, timeouts, &shutdown).await {
        Ok(direct::Outcome::Hyper(socket)) => socket,
        Ok(direct::Outcome::Done) => return,
        Err(err) => {
            tracing::debug!(%err, %peer, "connection ended with an error");
            return;
        }
    };
    // Boxed, so that the task of a connection served directly stays small.
    let socket = SendTimeout::new(socket, send_timeout);
    Box::pin(serve_with_hyper(socket, peer, router, shutdown)).await;
}

/// Serves one connection with hyper until it closes, or gracefully once `shutdown` fires.
async fn serve_with_hyper(
    socket: SendTimeout<TcpStream>,
    peer: SocketAddr,
    router: Router,
    shutdown: Shutdown,
) {
    // The router's error type is `Infallible`: every failure is already a response.
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().call(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(WRITE_BUFFER_LIMIT)
        .serve_connection(TokioIo::new(socket), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, %peer, "connection ended with an error");
    }
}

/// Serves one HTTPS connection: the TLS handshake (within the head timeout), then HTTP/2 or
/// HTTP/1.1 as ALPN chose, until it closes, or gracefully once `shutdown` fires.
async fn serve_tls(
    socket: SendTimeout<TcpStream>,
    peer: SocketAddr,
    router: Router,
    tls: tls::Tls,
    shutdown: Shutdown,
) {
    let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, tls.0.accept(socket));
    let socket = tokio::select! {
        () = shutdown.wait() => return,
        accepted = handshake => match accepted {
            Ok(Ok(socket)) => socket,
            Ok(Err(err)) => {
                tracing::debug!(%err, %peer, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake took too long");
                return;
            }
        },
    };
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().call(request)
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(WRITE_BUFFER_LIMIT);
    builder
        .http2()
        .timer(TokioTimer::new())
        // As for HTTP/1.1: about one frame queued per viewer, then it skips to the newest.
        .max_send_buf_size(WRITE_BUFFER_LIMIT)
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .keep_alive_interval(HTTP2_KEEP_ALIVE);
    let connection = builder.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, %peer, "connection ended with an error");
    }
}

/// Serves one request on a connection beyond `--max-connections`: `/healthz` as usual,
/// anything else 503, all within [`OVERFLOW_DEADLINE`].
async fn serve_overflow(socket: TcpStream, peer: SocketAddr, router: Router) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        async move {
            if request.uri().path() == "/healthz" {
                router.clone().call(request).await
            } else {
                Ok(Error::TooManyConnections.into_response())
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(OVERFLOW_DEADLINE)
        .keep_alive(false)
        .serve_connection(TokioIo::new(socket), service);
    match tokio::time::timeout(OVERFLOW_DEADLINE, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%err, %peer, "overflow connection ended with an error"),
        Err(_) => tracing::debug!(%peer, "overflow connection out of time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Most bytes a connection's task may take. An idle subscriber's whole cost is this task,
    /// its viewer's state (see `http::events`) and a few small allocations: about 1.5 KiB of
    /// RSS in a release build. (This future measured 456 bytes in a debug build.)
    /// A change that makes the task much larger (an unboxed future on the way in, a buffer
    /// held across the stream) fails here rather than in the memory benchmark.
    const CONNECTION_TASK_BUDGET: usize = 600;

    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (socket, peer) = accepted.unwrap();
        let send_timeout = Duration::from_secs(30);
        let task = serve_connection(socket, peer, Router::new(), send_timeout, Shutdown::new());
        let size = std::mem::size_of_val(&task);
        assert!(
            size <= CONNECTION_TASK_BUDGET,
            "a connection task takes {size} bytes, over its budget of {CONNECTION_TASK_BUDGET}"
        );
        drop((task, client));
    }

    #[test]
    fn the_connection_cap_leaves_room_in_the_fd_limit() {
        assert_eq!(fit_to_fd_limit(25_000, None), 25_000);
        assert_eq!(fit_to_fd_limit(25_000, Some(1_048_576)), 25_000);
        assert_eq!(
            fit_to_fd_limit(25_000, Some(256)),
            256 - RESERVED_FDS as usize
        );
        assert_eq!(fit_to_fd_limit(25_000, Some(10)), 0);
    }
}
