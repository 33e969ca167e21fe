//! Raw HTTP/1.1 over TCP, for attacks a well-behaved client library will not make: requests
//! sent a byte at a time, bodies that never end, heads no parser should accept.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::find;

/// A TCP connection to `to` from the loopback address `from`, with the receive buffer capped
/// at `recv_buffer` bytes if given (set before connecting, so the window starts small).
pub async fn connect_from(
    from: Ipv4Addr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.into(), 0))?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.connect(to).await
}

/// What came back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response head with this status.
    Status(u16),
    /// The connection closed (or was reset) before a whole response head.
    Closed,
    /// Nothing within the time allowed.
    Silent,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status(code) => write!(f, "{code}"),
            Answer::Closed => f.write_str("closed without an answer"),
            Answer::Silent => f.write_str("no answer"),
        }
    }
}

impl Answer {
    /// The status, if a response came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Status(code) => Some(*code),
            _ => None,
        }
    }
}

/// Reads from `socket` until a response head is complete (the bytes read so far are returned
/// too, head and whatever body came with it), the connection closes, or `within` passes.
pub async fn read_answer(
    socket: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (Answer, Vec<u8>) {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0; 8192];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return Answer::Closed,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if find(&received, b"\r\n\r\n").is_some() {
                return Answer::Status(status_of(&received).unwrap_or(0));
            }
        }
    };
    let answer = tokio::time::timeout(within, read)
        .await
        .unwrap_or(Answer::Silent);
    (answer, received)
}

/// The status code of the response head at the start of `bytes`.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// How many response heads (`HTTP/1.1 NNN` at the start of a line) `bytes` holds.
pub fn count_heads(bytes: &[u8]) -> usize {
    let mut count = usize::from(bytes.starts_with(b"HTTP/1."));
    count += bytes
        .windows(9)
        .filter(|window| window == b"\nHTTP/1.1")
        .count();
    count
}

/// Reads whatever arrives on `socket` for `duration` (or until it closes); returns the bytes
/// and whether it closed.
pub async fn read_for(
    socket: &mut (impl AsyncRead + Unpin),
    duration: Duration,
) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut closed = false;
    let _ = tokio::time::timeout(duration, async {
        let mut buf = [0; 16384];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    closed = true;
                    return;
                }
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (received, closed)
}

/// Sends `request` on a new connection from `from` and reads the answer.
pub async fn exchange(
    from: Ipv4Addr,
    to: SocketAddr,
    request: &[u8],
    within: Duration,
) -> io::Result<(Answer, Vec<u8>, TcpStream)> {
    let mut socket = connect_from(from, to, None).await?;
    socket.write_all(request).await?;
    let (answer, bytes) = read_answer(&mut socket, within).await;
    Ok((answer, bytes, socket))
}

/// A `GET /events?stream=NAME` request head for `host`.
pub fn events_request(stream: &str, host: &str) -> Vec<u8> {
    format!(
        "GET /events?stream={stream} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
}
