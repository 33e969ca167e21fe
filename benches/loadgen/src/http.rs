//! Just enough HTTP/1.1 client for the benchmark: response heads, chunked bodies, one request
//! at a time on a keep-alive connection. Hand-rolled so that ten thousand subscribers cost a
//! socket and a few hundred bytes each, not a client library's connection pool.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Turns `http://host:port` (a trailing `/` allowed) into a socket address.
pub fn parse_base_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        bail!("give the server's base URL without a path: {url}");
    }
    let authority = authority.replace("localhost", "127.0.0.1");
    authority
        .parse()
        .with_context(|| format!("{url}: expected http://IP:PORT"))
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    Close,
}

/// The parts of a response head the benchmark looks at.
#[derive(Debug)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// How the body ends.
    pub framing: Framing,
    /// `Content-Type`, as sent (a multipart boundary is case-sensitive).
    pub content_type: String,
}

/// Parses a response head if `buf` holds all of it: the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(Head, usize)>> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut framing = Framing::Close;
    let mut content_type = String::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if framing != Framing::Chunked {
                framing = Framing::Length(value.parse().context("bad Content-Length")?);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = value.to_string();
        }
    }
    Ok(Some((
        Head {
            status,
            framing,
            content_type,
        },
        end + 4,
    )))
}

/// Where a chunked decoder is within the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits of a chunk size.
    Size,
    /// Past the size (an extension, or the `\r`), waiting for `\n`.
    SizeLineEnd,
    /// Inside a chunk with this many bytes left.
    Data(usize),
    /// After a chunk's data, waiting for `\r\n`.
    DataEnd,
    /// The last chunk was read.
    Done,
}

/// Decodes `Transfer-Encoding: chunked` incrementally, however the input is split.
#[derive(Debug)]
pub struct Dechunker {
    state: Chunk,
    size: usize,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: Chunk::Size,
            size: 0,
        }
    }
}

impl Dechunker {
    /// Feeds raw body bytes, passing the decoded ones to `out`; true once the body has ended.
    pub fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) -> anyhow::Result<bool> {
        while !input.is_empty() {
            match self.state {
                Chunk::Size => {
                    let byte = input[0];
                    input = &input[1..];
                    match (byte as char).to_digit(16) {
                        Some(digit) => {
                            if self.size > usize::MAX >> 8 {
                                bail!("chunk size overflows");
                            }
                            self.size = self.size * 16 + digit as usize;
                        }
                        None => {
                            self.state = Chunk::SizeLineEnd;
                            if byte == b'\n' {
                                self.size_line_done();
                            }
                        }
                    }
                }
                Chunk::SizeLineEnd => {
                    let Some(at) = memchr::memchr(b'\n', input) else {
                        return Ok(false);
                    };
                    input = &input[at + 1..];
                    self.size_line_done();
                }
                Chunk::Data(left) => {
                    let take = left.min(input.len());
                    out(&input[..take]);
                    input = &input[take..];
                    self.state = if take == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - take)
                    };
                }
                Chunk::DataEnd => {
                    let byte = input[0];
                    input = &input[1..];
                    match byte {
                        b'\r' => {}
                        b'\n' => self.state = Chunk::Size,
                        _ => bail!("chunk data not followed by CRLF"),
                    }
                }
                Chunk::Done => return Ok(true),
            }
        }
        Ok(self.state == Chunk::Done)
    }

    fn size_line_done(&mut self) {
        self.state = if self.size == 0 {
            Chunk::Done
        } else {
            Chunk::Data(self.size)
        };
        self.size = 0;
    }
}

/// Writes a request with a body and reads the whole response on a keep-alive connection.
pub async fn exchange(
    conn: &mut TcpStream,
    head: &[u8],
    body: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    conn.write_all(head).await?;
    conn.write_all(body).await?;
    buf.clear();
    let (head, head_len) = loop {
        if let Some(done) = parse_head(buf)? {
            break done;
        }
        read_more(conn, buf).await?;
    };
    let mut raw = buf.split_off(head_len);
    let mut body = Vec::new();
    match head.framing {
        Framing::Length(len) => {
            while raw.len() < len {
                read_more(conn, &mut raw).await?;
            }
            body = raw;
            body.truncate(len);
        }
        Framing::Chunked => {
            let mut dechunker = Dechunker::default();
            loop {
                if dechunker.feed(&raw, |part| body.extend_from_slice(part))? {
                    break;
                }
                raw.clear();
                read_more(conn, &mut raw).await?;
            }
        }
        Framing::Close => bail!("publish response without a length on a keep-alive connection"),
    }
    Ok((head.status, body))
}

/// `GET path` on a connection of its own: the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut conn = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut buf = Vec::new();
    exchange(&mut conn, head.as_bytes(), &[], &mut buf).await
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.reserve(8 * 1024);
    if conn.read_buf(buf).await? == 0 {
        bail!("server closed the connection");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let raw = b"5\r\nhello\r\n1;ext=1\r\n \r\nC\r\nworld, again\r\n0\r\n\r\n";
        for piece in 1..raw.len() {
            let mut dechunker = Dechunker::default();
            let mut out = Vec::new();
            let mut done = false;
            for chunk in raw.chunks(piece) {
                done = dechunker
                    .feed(chunk, |part| out.extend_from_slice(part))
                    .unwrap();
            }
            assert!(done, "piece {piece}");
            assert_eq!(out, b"hello world, again", "piece {piece}");
        }
    }

    #[test]
    fn heads_give_status_and_framing() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    transfer-encoding: chunked\r\n\r\nrest";
        let (head, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(head.content_type, "text/event-stream");
        assert_eq!(&raw[len..], b"rest");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
    }

    #[test]
    fn base_urls_become_addresses() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(parse_base_url("http://127.0.0.1:8080/events").is_err());
    }
}
