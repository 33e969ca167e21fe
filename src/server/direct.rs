//! `GET /events` served straight from the socket, without hyper's per-connection buffers.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB response-head buffer for as long as a connection
//! lives. For a subscriber that sits idle for hours those pages are most of what it costs, so
//! the accept loop first peeks at a new connection's bytes, and this path serves the event
//! stream itself. An idle subscriber costs about 1.5 KiB this way, against about 11.6 KiB
//! through hyper.
//!
//! # Invariants
//!
//! - **What it takes**: one complete HTTP/1.1 `GET` for exactly [`EVENTS_PATH`] (with or
//!   without a query) that arrived in the first peek, no longer than [`PEEK_BYTES`], with at
//!   most [`MAX_HEADERS`] well-formed headers, no body (`Content-Length`, `Transfer-Encoding`),
//!   no `Expect`, `Upgrade`, `TE` or `Trailer`, and a `Connection` header, if any, of
//!   `keep-alive`.
//! - **What it leaves to hyper**: everything else, unread in the socket: other routes and
//!   methods, HTTP/1.0, absolute-form targets, a head split across packets, anything above. After
//!   a finite response (an error) the connection also goes on with hyper, so keep-alive works as
//!   before.
//! - **Same router, same bytes**: the request goes through the same router as hyper's (same
//!   handler, CORS layer and errors), and the response is written as hyper writes it: same
//!   status line, headers in the same order, then `content-length` or
//!   `transfer-encoding: chunked`, then `date`. `tests/it/wire.rs` compares the two byte for byte.
//! - **Handlers on this path never set framing headers** (`Content-Length`,
//!   `Transfer-Encoding`, `Connection`, `Trailer`): this path frames the body itself and drops
//!   any such header, so a body is framed one way only.
//! - **One frame in flight**: the next chunk is pulled from the body only once the previous one
//!   is written, so a slow client holds one frame and skips to the newest, as through hyper.
//! - **Small while idle**: the connection's task and the viewer's body are kept small; unit
//!   tests in `server.rs` and `http/events.rs` hold them to a byte budget, and
//!   `tests/it/wire.rs` measures what an idle subscriber costs the real binary.

use std::future::poll_fn;
use std::io::{self, IoSlice, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::response::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::Service;

use super::SendTimeout;
use crate::http::EVENTS_PATH;
use crate::shutdown::Shutdown;

/// Longest request head taken here (browsers send well under 1 KiB without cookies); a longer
/// one goes to hyper, whose limit is higher.
pub const PEEK_BYTES: usize = 4096;
/// Most bytes a client may send into its own event stream before it is closed: a browser
/// sends nothing, so this only stops a client from making the server read and discard
/// forever.
pub const MAX_CLIENT_BYTES_WHILE_STREAMING: usize = 4096;
/// Most request headers taken here; a request with more goes to hyper.
pub const MAX_HEADERS: usize = 32;

/// What became of a connection offered to [`serve`].
pub enum Outcome {
    /// Served and finished here; the connection is closed.
    Done,
    /// Not taken, or a finite response was sent: hyper serves the rest of the connection.
    Hyper(TcpStream),
}

/// How long a client may take: to send its request head, and to accept each write.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the request head's first bytes.
    pub header: Duration,
    /// For each write of the stream to make progress (zero: no limit); see [`SendTimeout`].
    pub send: Duration,
}

/// Where a connection stands once its request, if taken, has been answered.
enum Answered {
    /// The head of an event stream went out; its body is still to be written.
    Streaming(TcpStream, Body),
    /// As in [`Outcome`].
    Finished(Outcome),
}

/// Serves `socket` here if its first bytes are a `GET /events` request this path takes.
///
/// Waits at most `timeouts.header` for those bytes, and not past `shutdown`.
pub async fn serve(
    socket: TcpStream,
    peer: &SocketAddr,
    router: &Router,
    timeouts: Timeouts,
    shutdown: &Shutdown,
) -> io::Result<Outcome> {
    // Boxed: everything before the event stream is short-lived, and inline it would size the
    // connection's task, which lives as long as the subscriber.
    let answered = Box::pin(answer(socket, *peer, router, timeouts.header, shutdown)).await?;
    let (socket, mut body) = match answered {
        Answered::Streaming(socket, body) => (socket, body),
        Answered::Finished(outcome) => return Ok(outcome),
    };
    let mut socket = SendTimeout::new(socket, timeouts.send);
    stream_chunked(&mut socket, &mut body).await?;
    Ok(Outcome::Done)
}

/// Peeks at the request; if this path takes it, reads it, runs the router and writes the
/// response head (and a finite body).
async fn answer(
    mut socket: TcpStream,
    peer: SocketAddr,
    router: &Router,
    header_timeout: Duration,
    shutdown: &Shutdown,
) -> io::Result<Answered> {
    let mut head = vec![0; PEEK_BYTES];
    let peeked = tokio::select! {
        () = shutdown.wait() => return Ok(Answered::Finished(Outcome::Done)),
        peeked = tokio::time::timeout(header_timeout, socket.peek(&mut head)) => {
            peeked.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??
        }
    };
    if ambiguous_framing(&head[..peeked]) {
        // Taking what was peeked out of the socket first makes an RST, which could destroy the
        // answer on its way, less likely when the connection closes.
        socket.read_exact(&mut head[..peeked]).await?;
        write_all(&mut socket, [AMBIGUOUS_FRAMING_RESPONSE, &[], &[]]).await?;
        socket.shutdown().await?;
        return Ok(Answered::Finished(Outcome::Done));
    }
    let Some((mut request, head_len)) = parse(&head[..peeked]) else {
        return Ok(Answered::Finished(Outcome::Hyper(socket)));
    };
    request.extensions_mut().insert(ConnectInfo(peer));
    socket.read_exact(&mut head[..head_len]).await?;
    drop(head);

    let response = match router.clone().call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    if let Some(len) = body.size_hint().exact() {
        let bytes = body.collect().await.map_err(io::Error::other)?.to_bytes();
        debug_assert_eq!(bytes.len() as u64, len);
        let head = encode_head(&parts, Some(len), SystemTime::now());
        write_all(&mut socket, [&head, &bytes, &[]]).await?;
        return Ok(Answered::Finished(Outcome::Hyper(socket)));
    }
    let head = encode_head(&parts, None, SystemTime::now());
    write_all(&mut socket, [&head, &[], &[]]).await?;
    Ok(Answered::Streaming(socket, body))
}

/// The answer to a request with both `Content-Length` and `Transfer-Encoding`; the connection
/// is closed after it.
const AMBIGUOUS_FRAMING_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    content-type: application/json\r\ncontent-length: 77\r\nconnection: close\r\n\r\n\
    {\"error\":\"a request may not carry both Content-Length and Transfer-Encoding\"}";

/// Whether `head` is a complete request head with both `Content-Length` and
/// `Transfer-Encoding`, on any route.
///
/// Such a request can be read two ways, and a proxy in front that reads it the other way sees
/// a second, smuggled request in its body. RFC 9112 lets a server reject it, or follow
/// `Transfer-Encoding` and close the connection, which is what hyper does (and it drops
/// `Content-Length` before a handler could see both). framecast rejects it here, where the head
/// is first seen; a head split across packets still gets hyper's safe reading.
fn ambiguous_framing(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    let has = |name: &str| {
        parsed
            .headers
            .iter()
            .any(|field| field.name.eq_ignore_ascii_case(name))
    };
    has("content-length") && has("transfer-encoding")
}

/// The request in `head` if it is one this path takes, and the length of its head.
fn parse(head: &[u8]) -> Option<(Request<Body>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(head).ok()? else {
        return None;
    };
    let path = parsed.path?;
    let is_events = path
        .strip_prefix(EVENTS_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('?'));
    if parsed.method != Some("GET") || parsed.version != Some(1) || !is_events {
        return None;
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.version_mut() = Version::HTTP_11;
    *request.uri_mut() = Uri::try_from(path).ok()?;
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(field.value).ok()?;
        let takes = match name {
            // A body, an upgrade, a close or an expectation: hyper's rules apply.
            header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::EXPECT => false,
            header::UPGRADE | header::TE | header::TRAILER => false,
            header::CONNECTION => value.as_bytes().eq_ignore_ascii_case(b"keep-alive"),
            _ => true,
        };
        if !takes {
            return None;
        }
        request.headers_mut().append(name, value);
    }
    Some((request, head_len))
}

/// The response head as hyper writes it: status line, the response's headers in order, the
/// framing header (`content-length` for a body of known `length`, else chunked), `date`.
///
/// Handlers on this path never set framing headers themselves; any such header is left out so
/// the body is framed one way only.
fn encode_head(parts: &Parts, length: Option<u64>, now: SystemTime) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    if parts.status == StatusCode::OK {
        head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let reason = parts.status.canonical_reason().unwrap_or("<none>");
        head.extend_from_slice(
            format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_str()).as_bytes(),
        );
    }
    for (name, value) in &parts.headers {
        if matches!(
            *name,
            header::CONTENT_LENGTH
                | header::TRANSFER_ENCODING
                | header::CONNECTION
                | header::TRAILER
        ) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match length {
        Some(length) => head.extend_from_slice(format!("content-length: {length}\r\n").as_bytes()),
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(format!("date: {}\r\n", httpdate::fmt_http_date(now)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes each frame of `body` as one chunk until the body ends (then the last chunk), the
/// client closes its side, or a write fails or makes no progress for the send timeout. The next frame is polled only once the previous
/// one is written, so a slow client holds one frame and skips to the newest.
///
/// Written as one poll loop over a [`Chunk`] rather than nested `async fn`s: this state lives
/// as long as the subscriber, and the loop keeps it to a few dozen bytes.
async fn stream_chunked(socket: &mut SendTimeout<TcpStream>, body: &mut Body) -> io::Result<()> {
    let mut out: Option<Chunk> = None;
    let mut ended = false;
    let mut client_bytes = 0;
    poll_fn(|cx| {
        loop {
            if let Some(chunk) = &mut out {
                let unwritten = chunk.unwritten();
                if unwritten.iter().any(|part| !part.is_empty()) {
                    let slices = unwritten.map(IoSlice::new);
                    let n = ready!(Pin::new(&mut *socket).poll_write_vectored(cx, &slices))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    chunk.written += n;
                    continue;
                }
                out = None;
                if ended {
                    return Poll::Ready(Ok(()));
                }
            }
            if poll_client_gone(socket.get_ref(), &mut client_bytes, cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut *body).poll_frame(cx)) {
                None => {
                    ended = true;
                    out = Some(Chunk::last());
                }
                Some(Err(err)) => return Poll::Ready(Err(io::Error::other(err))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        out = Some(Chunk::new(data));
                    }
                }
            }
        }
    })
    .await
}

/// One chunk of a chunked body on its way out: size line, data, CRLF.
struct Chunk {
    /// The size in hex and CRLF, in `line[..line_len]`.
    line: [u8; 18],
    line_len: u8,
    data: Bytes,
    /// How much of line, data and CRLF has been written.
    written: usize,
}

impl Chunk {
    fn new(data: Bytes) -> Chunk {
        let mut line = [0; 18];
        let mut cursor = io::Cursor::new(&mut line[..]);
        write!(cursor, "{:X}\r\n", data.len()).expect("a usize in hex and CRLF fit in 18 bytes");
        let line_len = cursor.position() as u8;
        Chunk {
            line,
            line_len,
            data,
            written: 0,
        }
    }

    /// The zero-size chunk that ends the body (no trailers).
    fn last() -> Chunk {
        Chunk::new(Bytes::new())
    }

    /// What is still to be written, in order.
    fn unwritten(&self) -> [&[u8]; 3] {
        let mut parts = [
            &self.line[..self.line_len as usize],
            &self.data[..],
            b"\r\n",
        ];
        let mut skip = self.written;
        for part in &mut parts {
            let n = skip.min(part.len());
            *part = &part[n..];
            skip -= n;
        }
        parts
    }
}

/// Ready once the client has closed its side, the connection failed, or the client has sent
/// more than [`MAX_CLIENT_BYTES_WHILE_STREAMING`] (`received` counts them). While a response
/// streams, nothing the client sends is read as a request, so any bytes it sends are dropped.
fn poll_client_gone(socket: &TcpStream, received: &mut usize, cx: &mut Context<'_>) -> Poll<()> {
    let mut scrap = [0; 256];
    loop {
        if ready!(socket.poll_read_ready(cx)).is_err() {
            return Poll::Ready(());
        }
        match socket.try_read(&mut scrap) {
            Ok(0) => return Poll::Ready(()),
            Ok(n) => {
                *received += n;
                if *received > MAX_CLIENT_BYTES_WHILE_STREAMING {
                    return Poll::Ready(());
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Poll::Ready(()),
        }
    }
}

/// Writes all of `parts`, in order, with as few system calls as the socket allows.
async fn write_all(socket: &mut TcpStream, mut parts: [&[u8]; 3]) -> io::Result<()> {
    while parts.iter().any(|part| !part.is_empty()) {
        let slices = parts.map(IoSlice::new);
        let mut written =
            poll_fn(|cx| Pin::new(&mut *socket).poll_write_vectored(cx, &slices)).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        for part in &mut parts {
            let n = written.min(part.len());
            *part = &part[n..];
            written -= n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_events_request_is_taken_with_its_head_length() {
        let head = b"GET /events?stream=cam HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\
                     Connection: keep-alive\r\n\r\nextra";
        let (request, len) = parse(head).expect("taken");
        assert_eq!(len, head.len() - "extra".len());
        assert_eq!(request.uri(), "/events?stream=cam");
        assert_eq!(request.headers()["accept"], "text/event-stream");
        assert!(parse(b"GET /events HTTP/1.1\r\n\r\n").is_some());
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        for head in [
            "GET /events HTTP/1.1\r\nHost: x\r\n",
            "GET /events HTTP/1.0\r\n\r\n",
            "HEAD /events HTTP/1.1\r\n\r\n",
            "OPTIONS /events HTTP/1.1\r\n\r\n",
            "GET /eventsx HTTP/1.1\r\n\r\n",
            "GET /events/ HTTP/1.1\r\n\r\n",
            "GET /streams HTTP/1.1\r\n\r\n",
            "GET http://x/events HTTP/1.1\r\n\r\n",
            "GET /events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /events HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /events HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET /events HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /events HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(parse(head.as_bytes()).is_none(), "{head:?}");
        }
        let many = format!(
            "GET /events HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(parse(many.as_bytes()).is_none());
    }

    #[test]
    fn both_content_length_and_transfer_encoding_is_refused_with_a_complete_answer() {
        let both =
            b"POST /frames HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(ambiguous_framing(both));
        assert!(!ambiguous_framing(
            b"POST /frames HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(!ambiguous_framing(
            b"POST /frames HTTP/1.1\r\nContent-Length: 5\r\n"
        ));
        let answer = std::str::from_utf8(AMBIGUOUS_FRAMING_RESPONSE).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{answer}"
        );
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }

    #[test]
    fn a_chunk_is_its_hex_size_data_and_crlf_however_it_is_cut() {
        let mut chunk = Chunk::new(Bytes::from_static(b"retry: 2000\n\n"));
        assert_eq!(chunk.unwritten().concat(), b"D\r\nretry: 2000\n\n\r\n");
        chunk.written = 4;
        assert_eq!(chunk.unwritten(), [&b""[..], b"etry: 2000\n\n", b"\r\n"]);
        chunk.written = 3 + 13 + 1;
        assert_eq!(chunk.unwritten(), [&b""[..], b"", b"\n"]);
        assert_eq!(Chunk::last().unwritten().concat(), b"0\r\n\r\n");
        let big = Chunk::new(Bytes::from(vec![0; 0x1_0000]));
        assert_eq!(big.unwritten()[0], b"10000\r\n");
    }

    #[test]
    fn the_head_frames_the_body_and_dates_the_response() {
        let (mut parts, ()) = axum::http::Response::new(()).into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("origin"));
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("accept"));
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(
            String::from_utf8(encode_head(&parts, None, epoch)).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nvary: origin\r\nvary: accept\r\n\
             transfer-encoding: chunked\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
        );
        parts.status = StatusCode::SERVICE_UNAVAILABLE;
        parts.headers.clear();
        assert_eq!(
            String::from_utf8(encode_head(&parts, Some(12), epoch)).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\n\
             date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
        );
    }
}
