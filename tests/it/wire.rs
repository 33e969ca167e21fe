//! The bytes on the wire: an event stream taken by the direct path (no hyper) is byte for byte
//! what hyper sends for the same request, from the head to the last chunk.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestServer, WAIT, eventually, sample_jpeg, spawn_binary};

/// A request the direct path takes.
const DIRECT: &str = "GET /events?stream=wire HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://o.test\r\nAccept: text/event-stream\r\n\r\n";
/// The same request with an (empty) body, which the direct path leaves to hyper.
const VIA_HYPER: &str = "GET /events?stream=wire HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://o.test\r\nAccept: text/event-stream\r\nContent-Length: 0\r\n\r\n";

/// How the opening of a new stream's events ends: `retry:`, then the state of a stream that is
/// still waiting for a producer.
const OPENING_END: &[u8] = b"waiting for frames to be pushed\"}\n\n\r\n";

/// A raw HTTP/1.1 connection and everything it has received.
struct Raw {
    socket: TcpStream,
    received: Vec<u8>,
}

impl Raw {
    async fn send(server: &TestServer, request: &str) -> Raw {
        Raw::send_to(server.addr, request).await
    }

    async fn send_to(addr: std::net::SocketAddr, request: &str) -> Raw {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        Raw {
            socket,
            received: Vec::new(),
        }
    }

    /// Reads what has arrived into `received`; `false` once the connection has closed.
    async fn read_more(&mut self) -> bool {
        let mut buf = [0; 64 * 1024];
        let n = tokio::time::timeout(WAIT, self.socket.read(&mut buf))
            .await
            .expect("bytes within the wait limit")
            .unwrap();
        self.received.extend_from_slice(&buf[..n]);
        n > 0
    }

    /// Reads until `received` ends with `tail`, or the connection closes (then `false`).
    async fn read_until_ends_with(&mut self, tail: &[u8]) -> bool {
        while !self.received.ends_with(tail) {
            if !self.read_more().await {
                return false;
            }
        }
        true
    }

    /// Reads until a whole `frame` event's chunk has arrived (or the connection closes).
    async fn read_until_frame(&mut self) -> bool {
        loop {
            let has_frame = self
                .received
                .windows(b"event: frame".len())
                .any(|w| w == b"event: frame");
            if has_frame && self.received.ends_with(b"\n\n\r\n") {
                return true;
            }
            if !self.read_more().await {
                return false;
            }
        }
    }

    /// What was received, with the `date` header's value blanked (it depends on the second).
    fn undated(&self) -> String {
        let text = String::from_utf8(self.received.clone()).unwrap();
        text.split("\r\n")
            .map(|line| {
                if line.starts_with("date: ") {
                    "date: -"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }
}

#[tokio::test]
async fn an_event_stream_is_the_same_bytes_with_or_without_hyper() {
    let server = TestServer::start().await;
    let mut direct = Raw::send(&server, DIRECT).await;
    let mut hyper = Raw::send(&server, VIA_HYPER).await;
    for raw in [&mut direct, &mut hyper] {
        assert!(raw.read_until_ends_with(OPENING_END).await);
    }
    let (status, _) = server.post_jpeg("wire", &sample_jpeg(64, 48, 1)).await;
    assert_eq!(status, 200);
    for raw in [&mut direct, &mut hyper] {
        assert!(raw.read_until_frame().await);
    }
    server.shutdown.trigger();
    for raw in [&mut direct, &mut hyper] {
        assert!(raw.read_until_ends_with(b"\r\n0\r\n\r\n").await);
        assert!(
            !raw.read_until_ends_with(b"more").await,
            "then the connection closes"
        );
    }
    let direct = direct.undated();
    assert!(
        direct.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"),
        "{direct}"
    );
    assert!(
        direct.contains("\r\naccess-control-allow-origin: *\r\n"),
        "{direct}"
    );
    assert!(
        direct
            .contains("\r\ntransfer-encoding: chunked\r\ndate: -\r\n\r\nD\r\nretry: 2000\n\n\r\n")
    );
    assert_eq!(direct, hyper.undated());
}

#[tokio::test]
async fn a_refused_subscription_is_the_same_bytes_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let bad = |extra: &str| {
        format!("GET /events?stream=wire&payload=all HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
    };
    let mut direct = Raw::send(&server, &bad("")).await;
    let mut hyper = Raw::send(&server, &bad("Content-Length: 0\r\n")).await;
    for raw in [&mut direct, &mut hyper] {
        assert!(raw.read_until_ends_with(b"leave it out\"}").await);
    }
    assert!(direct.undated().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert_eq!(direct.undated(), hyper.undated());

    // Keep-alive: the next request on the same connection is answered.
    direct
        .socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    assert!(direct.read_until_ends_with(b"{\"ok\":true}").await);
}

#[tokio::test]
async fn a_subscriber_that_leaves_a_quiet_stream_is_no_longer_counted() {
    let server = TestServer::start().await;
    let mut raw = Raw::send(&server, DIRECT).await;
    assert!(raw.read_until_ends_with(OPENING_END).await);
    assert_eq!(server.stream_status("wire").await["subscribers"], 1);
    drop(raw);
    // Nothing is ever written to this connection again: the close itself must be noticed.
    eventually("the subscriber count is back to 0", || async {
        subscribers(&server, "wire").await == 0
    })
    .await;
}

#[tokio::test]
async fn a_request_head_that_arrives_in_pieces_is_still_answered() {
    let server = TestServer::start().await;
    let (first, rest) = DIRECT.split_at(20);
    let mut raw = Raw::send(&server, first).await;
    // The server peeks at a partial head and leaves the connection to hyper, which waits.
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.socket.write_all(rest.as_bytes()).await.unwrap();
    assert!(raw.read_until_ends_with(OPENING_END).await);
    assert!(raw.undated().starts_with("HTTP/1.1 200 OK\r\n"));
}

/// Open subscribers of `stream`; 0 once it is gone (a stream only viewers asked for goes when
/// they leave).
async fn subscribers(server: &TestServer, stream: &str) -> u64 {
    server.stream_status(stream).await["subscribers"]
        .as_u64()
        .unwrap_or(0)
}

/// Idle subscribers opened per server in the memory test: enough that a few KiB each stand
/// out of the allocator's noise, few enough for a default open-file limit of 1024.
const IDLE_SUBSCRIBERS: usize = 400;

/// The real binary's resident memory per idle subscriber, in KiB, with every subscriber's
/// connection opened by `request`.
async fn kib_per_idle_subscriber(request: &str) -> f64 {
    let (server, url) = spawn_binary(
        &["--no-test-pattern", "--max-subscribers-per-ip", "1000"],
        std::process::Stdio::null(),
    )
    .await;
    let addr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let rss_kib = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.id().unwrap()));
        let status = status.unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let mut open = Vec::new();
    // A first few, so that the runtime and the stream exist before measuring.
    for _ in 0..20 {
        let mut raw = Raw::send_to(addr, request).await;
        assert!(raw.read_until_ends_with(OPENING_END).await);
        open.push(raw);
    }
    let before = rss_kib();
    for _ in 0..IDLE_SUBSCRIBERS {
        let mut raw = Raw::send_to(addr, request).await;
        assert!(raw.read_until_ends_with(OPENING_END).await);
        raw.received = Vec::new();
        open.push(raw);
    }
    (rss_kib() - before) / IDLE_SUBSCRIBERS as f64
}

#[tokio::test]
async fn idle_subscribers_are_served_by_the_direct_path_at_a_fraction_of_hypers_cost() {
    let direct = kib_per_idle_subscriber(DIRECT).await;
    let hyper = kib_per_idle_subscriber(VIA_HYPER).await;
    eprintln!("per idle subscriber: direct {direct:.2} KiB, hyper {hyper:.2} KiB");
    assert!(
        direct < 4.0,
        "an idle subscriber costs {direct:.2} KiB (about 1.5 in a release build): \
         is the direct path still taking plain GET /events?"
    );
    assert!(
        direct * 2.5 < hyper,
        "direct {direct:.2} KiB against hyper {hyper:.2} KiB per idle subscriber"
    );
}

#[tokio::test]
async fn a_client_that_writes_into_its_event_stream_is_closed() {
    let server = TestServer::start().await;
    let mut raw = Raw::send(&server, DIRECT).await;
    assert!(raw.read_until_ends_with(OPENING_END).await);
    // A few stray bytes are tolerated; a flood is not read and discarded forever.
    raw.socket.write_all(b"\r\n").await.unwrap();
    let flood = vec![b'x'; 64 * 1024];
    let _ = raw.socket.write_all(&flood).await;
    // Closed with unread bytes in its buffer, the socket may be reset rather than ended.
    let closed = async {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(1..) = raw.socket.read(&mut buf).await {}
    };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the server closes the connection");
    eventually("the subscriber is no longer counted", || async {
        subscribers(&server, "wire").await == 0
    })
    .await;
}
