//! The event loop: one thread, one edge-triggered epoll set. It accepts connections, reads
//! requests, and writes each frame's one shared buffer to every subscriber without blocking.
//!
//! A subscriber holds the buffer it is writing (a reference count, no copy) and how far into it
//! it got. When it has written all of it, it takes its stream's newest frame if that is newer
//! than the last one it started; frames published meanwhile are skipped (latest-frame-wins).
//! When a frame is published, the subscribers with nothing left to write start on it at once;
//! the others come to it when their socket drains.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::event::{self, Meta, Shared};
use crate::request::{self, Parsed, Request};

/// The listening socket's token; connections use their index in the slab.
const LISTENER: Token = Token(usize::MAX);
/// Readiness events taken per `epoll_wait`.
const EVENTS_PER_POLL: usize = 1024;
/// Bytes read per `read` call from a client.
const READ_CHUNK: usize = 64 * 1024;
/// After a failed `accept` (out of file descriptors, say), try again this soon: the listener
/// is edge-triggered, so the connections still queued would otherwise wait for a new one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Settings, each matching framecast's default so both do the same work.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Each connection's kernel send buffer (`SO_SNDBUF`), 0 to leave it to the kernel.
    pub send_buffer_bytes: usize,
    /// The `retry:` sent at the start of every event stream, in milliseconds.
    pub retry_ms: u32,
    /// Largest JPEG accepted.
    pub max_frame_bytes: usize,
}

/// One stream: its newest frame and who reads it. Streams are never removed (the benchmark
/// starts the server afresh for every step).
struct Stream {
    name: String,
    /// Last `seq` given out.
    seq: u64,
    latest: Option<Rc<Shared>>,
    subscribers: Vec<Token>,
}

/// A connection that is not (yet) a subscriber: requests in, answers out.
struct Client {
    socket: TcpStream,
    /// Bytes read and not yet consumed by a request.
    input: Vec<u8>,
    /// Answers not yet written, from `written` on.
    output: Vec<u8>,
    written: usize,
    /// Close once `output` is written (after a refusal).
    closing: bool,
}

/// A connection streaming events.
struct Subscriber {
    socket: TcpStream,
    /// Index of its stream, and its own index in that stream's `subscribers`.
    stream: usize,
    slot: usize,
    /// The shared buffer being written and how much of it has been; `None` when caught up.
    writing: Option<(Rc<Shared>, usize)>,
    /// `seq` of the last frame started.
    started: u64,
}

enum Conn {
    Client(Client),
    Subscriber(Subscriber),
}

/// The server's whole state, owned by the one thread that runs it.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    config: Config,
    /// Connections by token; `free` lists the empty slots.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    streams: Vec<Stream>,
    by_name: HashMap<String, usize>,
    /// Response head plus `retry:` chunk every subscriber gets first, rebuilt when the `date`
    /// header's second changes.
    preamble: Rc<Shared>,
    preamble_at: u64,
}

impl Server {
    /// A server listening on `addr`.
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Server> {
        let mut listener = TcpListener::bind(addr)?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            listener,
            config,
            conns: Vec::new(),
            free: Vec::new(),
            streams: Vec::new(),
            by_name: HashMap::new(),
            preamble: Rc::new(Shared {
                seq: 0,
                bytes: Vec::new(),
            }),
            preamble_at: u64::MAX,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process is killed or polling fails.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        let mut timeout = None;
        loop {
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
            timeout = None;
            if events.is_empty() && !self.accept() {
                timeout = Some(ACCEPT_RETRY);
            }
            for event in events.iter() {
                if event.token() == LISTENER {
                    if !self.accept() {
                        timeout = Some(ACCEPT_RETRY);
                    }
                    continue;
                }
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                self.ready(event.token(), readable, event.is_writable());
            }
        }
    }

    /// Accepts every queued connection; false if `accept` failed and should be retried.
    fn accept(&mut self) -> bool {
        loop {
            let (mut socket, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    eprintln!("floor: accept failed: {err}");
                    return false;
                }
            };
            // As framecast does for every connection.
            let _ = socket.set_nodelay(true);
            if self.config.send_buffer_bytes > 0 {
                let _ = socket2::SockRef::from(&socket)
                    .set_send_buffer_size(self.config.send_buffer_bytes);
            }
            let index = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(err) = self
                .poll
                .registry()
                .register(&mut socket, Token(index), interest)
            {
                eprintln!("floor: cannot watch a connection: {err}");
                self.free.push(index);
                continue;
            }
            self.conns[index] = Some(Conn::Client(Client {
                socket,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                closing: false,
            }));
        }
    }

    /// Handles readiness of connection `token`.
    fn ready(&mut self, token: Token, readable: bool, writable: bool) {
        // Taken out of its slot while handled, so the rest of the state can be borrowed.
        let Some(conn) = self.conns.get_mut(token.0).and_then(Option::take) else {
            return; // closed earlier in this batch
        };
        let kept = match conn {
            Conn::Client(client) => self.serve_client(token, client, readable),
            Conn::Subscriber(mut subscriber) => {
                let open = (!readable || drain(&mut subscriber.socket))
                    && (!writable || subscriber.flush(&self.streams).is_ok());
                if !open {
                    self.unlist(&subscriber);
                }
                open.then_some(Conn::Subscriber(subscriber))
            }
        };
        match kept {
            Some(conn) => self.conns[token.0] = Some(conn),
            // Dropped: closing the socket also took it out of the epoll set.
            None => self.free.push(token.0),
        }
    }

    /// Reads and answers a client's requests; the connection to keep, if any.
    fn serve_client(&mut self, token: Token, mut client: Client, readable: bool) -> Option<Conn> {
        if readable && !client.closing {
            match read_all(&mut client.socket, &mut client.input) {
                Ok(true) => {}
                Ok(false) | Err(_) => return None,
            }
        }
        while !client.closing {
            let (request, head_len) = match request::parse(&client.input) {
                Parsed::Partial => break,
                Parsed::Complete(request, head_len) => (request, head_len),
                Parsed::Refused(status, why) => {
                    client.refuse(status, why);
                    break;
                }
            };
            match request {
                Request::Subscribe { stream } => {
                    if client.written < client.output.len() {
                        client.refuse("503 Service Unavailable", "an answer is still unwritten");
                        break;
                    }
                    return self.subscribe(token, client.socket, &stream);
                }
                Request::Publish { stream, body_len } => {
                    if body_len > self.config.max_frame_bytes {
                        client.refuse("413 Payload Too Large", "frame larger than the limit");
                        break;
                    }
                    let end = head_len + body_len;
                    if client.input.len() < end {
                        client.input.reserve(end - client.input.len());
                        break;
                    }
                    let published = self.publish(&stream, &client.input[head_len..end]);
                    client.input.drain(..end);
                    match published {
                        Ok((index, reply)) => {
                            client.answer("200 OK", "application/json", reply.as_bytes(), false);
                            // The publisher hears back first, then the frame goes out.
                            let answered = client.flush();
                            self.fan_out(index);
                            answered.ok()?;
                        }
                        Err(why) => client.refuse("400 Bad Request", why),
                    }
                }
            }
        }
        match client.flush() {
            Ok(()) if client.closing && client.written == client.output.len() => None,
            Ok(()) => Some(Conn::Client(client)),
            Err(_) => None,
        }
    }

    /// Makes `socket` a subscriber of `stream`: the response head goes out, then frames.
    fn subscribe(&mut self, token: Token, socket: TcpStream, stream: &str) -> Option<Conn> {
        let index = self.stream(stream);
        let preamble = self.preamble();
        let stream = &mut self.streams[index];
        let mut subscriber = Subscriber {
            socket,
            stream: index,
            slot: stream.subscribers.len(),
            writing: Some((preamble, 0)),
            started: 0,
        };
        stream.subscribers.push(token);
        match subscriber.flush(&self.streams) {
            Ok(()) => Some(Conn::Subscriber(subscriber)),
            Err(_) => {
                self.unlist(&subscriber);
                None
            }
        }
    }

    /// Numbers the frame and builds its shared buffer; the stream's index and the JSON reply.
    fn publish(&mut self, stream: &str, jpeg: &[u8]) -> Result<(usize, String), &'static str> {
        // framecast's own JPEG walker: the floor reads frames exactly as the server does.
        let info = framecast::jpeg::inspect(jpeg).map_err(|_| "not a valid JPEG")?;
        let (width, height) = (info.width, info.height);
        let index = self.stream(stream);
        let stream = &mut self.streams[index];
        stream.seq += 1;
        let seq = stream.seq;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let meta = Meta {
            stream: &stream.name,
            seq,
            ts,
            width,
            height,
        };
        let bytes = event::frame_chunk(meta, jpeg);
        stream.latest = Some(Rc::new(Shared { seq, bytes }));
        let reply = format!(
            "{{\"stream\":\"{}\",\"seq\":{seq},\"width\":{width},\"height\":{height}}}",
            stream.name
        );
        Ok((index, reply))
    }

    /// Starts the newest frame of stream `index` on every subscriber that is caught up.
    fn fan_out(&mut self, index: usize) {
        let mut gone = Vec::new();
        for &token in &self.streams[index].subscribers {
            let Some(Some(Conn::Subscriber(subscriber))) = self.conns.get_mut(token.0) else {
                continue;
            };
            // One still writing an older frame comes to the newest when it is done.
            if subscriber.writing.is_none() && subscriber.flush(&self.streams).is_err() {
                gone.push(token);
            }
        }
        for token in gone {
            self.close(token);
        }
    }

    /// The index of the stream named `name`, created if new.
    fn stream(&mut self, name: &str) -> usize {
        if let Some(&index) = self.by_name.get(name) {
            return index;
        }
        self.streams.push(Stream {
            name: name.to_owned(),
            seq: 0,
            latest: None,
            subscribers: Vec::new(),
        });
        self.by_name.insert(name.to_owned(), self.streams.len() - 1);
        self.streams.len() - 1
    }

    /// The response head and `retry:` chunk, as framecast sends them (without its opening
    /// `event: status`).
    fn preamble(&mut self) -> Rc<Shared> {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.preamble_at {
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                 x-accel-buffering: no\r\ntransfer-encoding: chunked\r\ndate: {}\r\n\r\n",
                httpdate::fmt_http_date(now)
            )
            .into_bytes();
            bytes.extend(event::chunk(
                format!("retry: {}\n\n", self.config.retry_ms).as_bytes(),
            ));
            self.preamble = Rc::new(Shared { seq: 0, bytes });
            self.preamble_at = second;
        }
        self.preamble.clone()
    }

    /// Closes connection `token`, wherever it is.
    fn close(&mut self, token: Token) {
        if let Some(Some(conn)) = self.conns.get_mut(token.0).map(Option::take) {
            if let Conn::Subscriber(subscriber) = &conn {
                self.unlist(subscriber);
            }
            drop(conn);
            self.free.push(token.0);
        }
    }

    /// Removes a subscriber from its stream's list.
    fn unlist(&mut self, subscriber: &Subscriber) {
        let list = &mut self.streams[subscriber.stream].subscribers;
        list.swap_remove(subscriber.slot);
        if let Some(&moved) = list.get(subscriber.slot)
            && let Some(Some(Conn::Subscriber(other))) = self.conns.get_mut(moved.0)
        {
            other.slot = subscriber.slot;
        }
    }
}

impl Subscriber {
    /// Writes until the socket is full or the subscriber has had the newest frame.
    fn flush(&mut self, streams: &[Stream]) -> io::Result<()> {
        loop {
            if let Some((shared, offset)) = &mut self.writing {
                if !write_from(&mut self.socket, &shared.bytes, offset)? {
                    return Ok(()); // socket full: wait for it to be writable
                }
                self.writing = None;
            }
            match &streams[self.stream].latest {
                Some(latest) if latest.seq > self.started => {
                    self.started = latest.seq;
                    self.writing = Some((latest.clone(), 0));
                }
                _ => return Ok(()),
            }
        }
    }
}

impl Client {
    /// Queues a complete response.
    fn answer(&mut self, status: &str, content_type: &str, body: &[u8], close: bool) {
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}\
             date: {}\r\n\r\n",
            body.len(),
            if close { "connection: close\r\n" } else { "" },
            httpdate::fmt_http_date(SystemTime::now())
        );
        self.output.extend_from_slice(head.as_bytes());
        self.output.extend_from_slice(body);
    }

    /// Queues a refusal, after which the connection closes.
    fn refuse(&mut self, status: &str, why: &str) {
        self.answer(status, "text/plain; charset=utf-8", why.as_bytes(), true);
        self.closing = true;
    }

    /// Writes what it can of the queued answers.
    fn flush(&mut self) -> io::Result<()> {
        if write_from(&mut self.socket, &self.output, &mut self.written)? {
            self.output.clear();
            self.written = 0;
        }
        Ok(())
    }
}

/// Writes `bytes[*offset..]`, advancing `offset`; true once all of it is written, false when
/// the socket is full.
fn write_from(socket: &mut TcpStream, bytes: &[u8], offset: &mut usize) -> io::Result<bool> {
    while *offset < bytes.len() {
        match socket.write(&bytes[*offset..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *offset += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

/// Reads everything available onto `input`; false once the peer has closed.
fn read_all(socket: &mut TcpStream, input: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let len = input.len();
        input.resize(len + READ_CHUNK, 0);
        let read = socket.read(&mut input[len..]);
        input.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads and drops whatever a subscriber sends; false once it has closed.
fn drain(socket: &mut TcpStream) -> bool {
    let mut scrap = [0u8; 1024];
    loop {
        match socket.read(&mut scrap) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
