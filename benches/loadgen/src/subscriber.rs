//! One subscriber: a raw TCP connection, its response head, then SSE events or MJPEG parts
//! until the end.
//!
//! All subscribers read into one thread-local buffer and keep only their parser state, so an
//! idle subscriber costs its socket and a few hundred bytes. (An edge-triggered epoll set read
//! by a single task, saving tokio's extra `WouldBlock` read per event, measured no cheaper: the
//! generator's cost is the kernel's TCP receive work, not the wake-ups.)

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::board::{Board, Output};
use crate::http::{self, Dechunker, Framing};
use crate::multipart;
use crate::sse;

/// Size of the shared read buffer: a few events' worth per read.
const READ_BUFFER: usize = 256 * 1024;
/// Most reads from one socket before letting the others run.
const READS_PER_TURN: usize = 16;
/// Longest wait for the connection and the response head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Receive buffer of a stalled subscriber: small, so the server's send queue fills quickly.
const STALLED_RCVBUF: u32 = 4 * 1024;

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER]);
}

/// Runs subscriber `index` until its connection ends, recording on `board`.
///
/// `connecting` bounds how many connections are being set up at once (the listen backlog).
pub async fn run(
    board: Rc<Board>,
    index: usize,
    addr: SocketAddr,
    request: Rc<[u8]>,
    connecting: Arc<Semaphore>,
) {
    let permit = connecting.acquire_owned().await;
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, open(addr, &request, board.output)).await;
    drop(permit);
    let result = match opened {
        Ok(Ok((stream, framing, body, rest))) => {
            board.clients.borrow_mut()[index].ready = true;
            board.ready.set(board.ready.get() + 1);
            stream_events(&board, index, stream, framing, body, &rest).await
        }
        Ok(Err(err)) => Err(err),
        Err(_) => Err(anyhow::anyhow!(
            "no response head within {CONNECT_TIMEOUT:?}"
        )),
    };
    let error = match result {
        Ok(()) => "server ended the stream".to_string(),
        Err(err) => format!("{err:#}"),
    };
    board.failed.set(board.failed.get() + 1);
    board.clients.borrow_mut()[index].error = Some(error);
}

/// Connects, sends the request and reads the response head; returns how the body is framed,
/// its parser and the bytes read past the head.
async fn open(
    addr: SocketAddr,
    request: &[u8],
    output: Output,
) -> anyhow::Result<(TcpStream, Framing, Body, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.write_all(request).await?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        stream.readable().await?;
        let mut chunk = [0u8; 1024];
        match stream.try_read(&mut chunk) {
            Ok(0) => bail!("connection closed before the response head"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err.into()),
        }
        if let Some((head, len)) = http::parse_head(&buf)? {
            if head.status != 200 {
                bail!("status {}", head.status);
            }
            let Some(body) = Body::for_response(output, &head.content_type) else {
                bail!("content type {:?}", head.content_type);
            };
            return Ok((stream, head.framing, body, buf.split_off(len)));
        }
    }
}

/// The parser of a response body.
enum Body {
    /// `text/event-stream`.
    Events(sse::Parser),
    /// `multipart/x-mixed-replace`.
    Mjpeg(multipart::Parser),
}

/// One subscriber's decoding state: chunked framing (if any), the body's parser, tally.
struct Reader<'a> {
    body: Body,
    dechunker: Option<Dechunker>,
    tally: Tally<'a>,
}

/// The event (or part) handler of one subscriber.
struct Tally<'a> {
    board: &'a Board,
    index: usize,
    /// Frame events seen, for choosing which ones to sample.
    seen: u64,
}

impl Tally<'_> {
    /// Whether to keep the whole of the frame event (or part) starting now, to check it.
    fn sample(&mut self) -> bool {
        self.seen += 1;
        (self.seen + self.index as u64).is_multiple_of(self.board.sample_every)
    }
}

impl sse::Handler for Tally<'_> {
    fn keep_data(&mut self) -> bool {
        self.sample()
    }

    fn event(&mut self, event: sse::Event<'_>) {
        if event.kind == self.board.server.frame_event() {
            self.board
                .received(self.index, event.head, event.data, event.len);
        }
    }

    fn data_len(&mut self, head: &[u8]) -> Option<usize> {
        if self.board.scan_all {
            None
        } else {
            sse::frame_data_len(head)
        }
    }
}

impl multipart::Handler for Tally<'_> {
    fn keep_body(&mut self) -> bool {
        self.sample()
    }

    fn part(&mut self, part: multipart::Part<'_>) {
        self.board
            .received_part(self.index, part.head, part.body, part.len);
    }
}

impl Body {
    /// The parser for a response of `content_type` to a request for `output`, if it is the
    /// right kind.
    fn for_response(output: Output, content_type: &str) -> Option<Body> {
        match output {
            Output::Sse => content_type
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
                .then(|| Body::Events(sse::Parser::new())),
            Output::Mjpeg => multipart::boundary(content_type)
                .map(|boundary| Body::Mjpeg(multipart::Parser::new(boundary))),
        }
    }

    /// Feeds decoded body bytes; true once the body has been closed.
    fn feed(&mut self, bytes: &[u8], tally: &mut Tally<'_>) -> anyhow::Result<bool> {
        match self {
            Body::Events(parser) => {
                parser.feed(bytes, tally);
                Ok(false)
            }
            Body::Mjpeg(parser) => parser.feed(bytes, tally).inspect_err(|_| {
                tally.board.clients.borrow_mut()[tally.index].malformed = true;
            }),
        }
    }
}

impl Reader<'_> {
    /// Feeds raw body bytes; true once the body has ended.
    fn feed(&mut self, bytes: &[u8]) -> anyhow::Result<bool> {
        let board = self.tally.board;
        if board.counting_bytes.get() {
            board.bytes.set(board.bytes.get() + bytes.len() as u64);
        }
        let (body, tally) = (&mut self.body, &mut self.tally);
        match self.dechunker.as_mut() {
            Some(dechunker) => {
                let mut closed = Ok(false);
                let ended = dechunker.feed(bytes, |part| {
                    if matches!(closed, Ok(false)) {
                        closed = body.feed(part, tally);
                    }
                })?;
                Ok(closed? || ended)
            }
            None => body.feed(bytes, tally),
        }
    }
}

/// Reads the event stream (or MJPEG) until it ends.
async fn stream_events(
    board: &Board,
    index: usize,
    stream: TcpStream,
    framing: Framing,
    body: Body,
    already_read: &[u8],
) -> anyhow::Result<()> {
    let mut reader = Reader {
        body,
        dechunker: (framing == Framing::Chunked).then(Dechunker::default),
        tally: Tally {
            board,
            index,
            seen: 0,
        },
    };
    if reader.feed(already_read)? {
        return Ok(());
    }
    loop {
        stream.readable().await?;
        let turn = READ_BUF.with_borrow_mut(|buf| -> anyhow::Result<Turn> {
            for _ in 0..READS_PER_TURN {
                match stream.try_read(buf) {
                    Ok(0) => return Ok(Turn::Ended),
                    Ok(n) => {
                        if reader.feed(&buf[..n])? {
                            return Ok(Turn::Ended);
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(Turn::Drained),
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(Turn::MoreWaiting)
        })?;
        match turn {
            Turn::Ended => return Ok(()),
            Turn::Drained => {}
            Turn::MoreWaiting => tokio::task::yield_now().await,
        }
    }
}

/// How one turn of reading a socket ended.
enum Turn {
    /// The stream is over.
    Ended,
    /// Nothing more to read for now.
    Drained,
    /// Data is still waiting; the other subscribers get a turn first.
    MoreWaiting,
}

/// A subscriber that sends its request and never reads: the server's send queue to it fills
/// and stays full. Returns once connected; the connection lives as long as the task.
pub async fn stall(addr: SocketAddr, request: Rc<[u8]>) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(STALLED_RCVBUF)?;
    let mut stream = socket.connect(addr).await?;
    stream.write_all(&request).await?;
    Ok(stream)
}
