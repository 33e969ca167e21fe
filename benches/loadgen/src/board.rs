//! The board: what the publishers and every subscriber of one run write down, in one place.
//!
//! Everything runs on one thread, so the board is shared by `Rc` and its fields are `Cell`s and
//! `RefCell`s borrowed only between awaits. A run publishes to one stream or to several (each
//! with its own `seq`); the publisher of each notes when it started sending each `seq` and which
//! frame that was; a subscriber, on receiving an event, finds its stream (the event's JSON
//! names it) and looks its `seq` up here for the latency and, for sampled events, for the bytes
//! to compare against. An MJPEG part has no JSON: its `seq` is the generator's own number,
//! marked inside the JPEG ([`crate::mark`]), and its stream the one its connection asked for.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::frames::Frame;

/// Most latency samples kept; past it (hours of a large run) new ones are not recorded.
const MAX_LATENCY_SAMPLES: usize = 50_000_000;

/// Which server is under test: it decides the URLs, the request shape and the event type.
/// The floor speaks framecast's protocol; it has its own name only for the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// framecast: `POST /frames` with the JPEG, `GET /events`.
    Framecast,
    /// nginx + Nchan as set up by `benches/nchan.conf`: `POST /pub` with the JSON envelope,
    /// `GET /sub` as an EventSource.
    Nchan,
    /// `benches/floor`, the minimal one-thread writer: framecast's requests and events.
    Floor,
}

impl Server {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Server::Framecast => "framecast",
            Server::Nchan => "nchan",
            Server::Floor => "floor",
        }
    }

    /// The path and query that subscribe to `streams` (several on one connection: framecast's
    /// SSE only) on `output` with the `extra` query parameters (`KEY=VALUE`, already checked by
    /// [`query_param`]) after them.
    pub fn subscribe_path(self, output: Output, streams: &[String], extra: &[String]) -> String {
        let mut path = match (self, output) {
            (_, Output::Mjpeg) => "/mjpeg".to_string(),
            (Server::Framecast | Server::Floor, Output::Sse) => "/events".to_string(),
            (Server::Nchan, Output::Sse) => "/sub".to_string(),
        };
        let params = streams
            .iter()
            .map(|stream| format!("stream={stream}"))
            .chain(extra.iter().cloned());
        for (index, param) in params.enumerate() {
            path.push(if index == 0 { '?' } else { '&' });
            path.push_str(&param);
        }
        path
    }

    /// The `GET` request that subscribes to `streams` on `output` with the `extra` query
    /// parameters.
    pub fn subscribe_request(
        self,
        output: Output,
        streams: &[String],
        extra: &[String],
    ) -> Vec<u8> {
        let path = self.subscribe_path(output, streams, extra);
        let accept = match output {
            Output::Sse => "text/event-stream",
            Output::Mjpeg => "multipart/x-mixed-replace, image/jpeg",
        };
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\
             Cache-Control: no-cache\r\n\r\n"
        )
        .into_bytes()
    }

    /// The type of the events that carry frames.
    pub fn frame_event(self) -> &'static [u8] {
        match self {
            Server::Framecast | Server::Floor => b"frame",
            Server::Nchan => b"message",
        }
    }
}

/// What the subscribers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Server-Sent Events, one JSON event per frame with the JPEG in base64 (every server).
    #[default]
    Sse,
    /// framecast's `GET /mjpeg`: `multipart/x-mixed-replace`, one JPEG per part. The
    /// generator numbers the frames itself and marks each JPEG with its number
    /// ([`crate::mark`]), since a part carries no `seq`.
    Mjpeg,
}

impl Output {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Output::Sse => "sse",
            Output::Mjpeg => "mjpeg",
        }
    }
}

/// Checks one `--query` parameter, `KEY=VALUE`: both parts non-empty, and only characters
/// that need no escaping in a query (percent escapes allowed), so it goes into the request line
/// as it is.
pub fn query_param(param: &str) -> Result<String, String> {
    let Some((key, value)) = param.split_once('=') else {
        return Err(format!("{param:?}: expected KEY=VALUE"));
    };
    let plain = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$'()*+,;:@/?".contains(&b))
    };
    if !plain(key) || !plain(value) || key == "stream" {
        return Err(format!(
            "{param:?}: KEY and VALUE must be non-empty, without spaces, `&`, `=` or `#` \
             (percent-escape them), and KEY not `stream` (see --streams)"
        ));
    }
    Ok(param.to_string())
}

/// The `width` a list of `--query` parameters asks for, if any.
pub fn asked_width(extra: &[String]) -> Option<u16> {
    extra
        .iter()
        .find_map(|param| param.strip_prefix("width="))
        .and_then(|value| value.parse().ok())
}

/// The names of a run's `count` streams: `base` alone, or `base-1` … `base-COUNT`.
pub fn stream_names(base: &str, count: usize) -> Vec<String> {
    if count == 1 {
        vec![base.to_string()]
    } else {
        (1..=count).map(|i| format!("{base}-{i}")).collect()
    }
}

/// How a run's subscribers (viewers) map onto connections and streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Viewers, each watching every stream of the run.
    pub viewers: usize,
    /// Streams published.
    pub streams: usize,
    /// One connection per viewer carrying every stream (`?stream=a&stream=b…`), rather than
    /// one connection per viewer and stream.
    pub multiplex: bool,
}

impl Layout {
    /// One stream, one connection per viewer.
    pub fn single(viewers: usize) -> Self {
        Layout {
            viewers,
            streams: 1,
            multiplex: false,
        }
    }

    /// Connections the viewers open.
    pub fn connections(self) -> usize {
        if self.multiplex {
            self.viewers
        } else {
            self.viewers * self.streams
        }
    }

    /// The streams connection `index` carries: `(first, count)`. Without multiplexing,
    /// connection `index` is viewer `index / streams` watching stream `index % streams`.
    pub fn carried(self, index: usize) -> (usize, usize) {
        if self.multiplex {
            (0, self.streams)
        } else {
            (index % self.streams.max(1), 1)
        }
    }
}

/// One connection's tally of one of the streams it carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamTally {
    /// Frame events received whose `seq` is inside the stream's measured window.
    pub events: u64,
    /// Highest `seq` received.
    pub last_seq: u64,
    /// Events whose `seq` was not above the previous one of the same stream.
    pub disorder: u64,
}

/// One subscriber connection's tally.
#[derive(Debug, Default, Clone)]
pub struct Client {
    /// Got its response head and is reading events.
    pub ready: bool,
    /// The first of the streams it carries (an index into [`Board::streams`]).
    pub first_stream: usize,
    /// One tally per stream carried, from `first_stream` on.
    pub tallies: Vec<StreamTally>,
    /// Frame events without a readable `seq`.
    pub unparsed: u64,
    /// Frame events of a stream this connection did not ask for (or with no readable stream).
    pub foreign: u64,
    /// The response broke its own framing (MJPEG: a part without `Content-Length`, or no
    /// delimiter where the length says); the connection was then given up.
    pub malformed: bool,
    /// Why the connection failed or ended early.
    pub error: Option<String>,
}

impl Client {
    /// Frame events received inside the window, all streams.
    pub fn events(&self) -> u64 {
        self.tallies.iter().map(|t| t.events).sum()
    }

    /// Events out of order or repeated, all streams.
    pub fn disorder(&self) -> u64 {
        self.tallies.iter().map(|t| t.disorder).sum()
    }

    /// Whether it has received `last_seq[stream]` of every stream it carries.
    pub fn caught_up(&self, last_seq: &[u64]) -> bool {
        self.tallies
            .iter()
            .enumerate()
            .all(|(i, t)| t.last_seq >= last_seq[self.first_stream + i])
    }
}

/// What a sampled event is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The JPEG published, byte for byte.
    Exact,
    /// A scaled copy (`?width=`): the server re-encodes it, so only that its base64 decodes
    /// to a JPEG that decodes to the width and height the event announces, narrower than the
    /// frame published (and its aspect ratio), or the frame itself when that is no wider.
    Scaled,
}

/// When a `seq` was published, and which frame it was.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// Nanoseconds since the board's origin, plus one (zero means never sent).
    at: u64,
    frame: u32,
}

/// The shared record of one run.
#[derive(Debug)]
pub struct Board {
    /// Zero of every time on the board.
    pub origin: Instant,
    /// The frames being published.
    pub frames: Vec<Frame>,
    /// The server under test.
    pub server: Server,
    /// The streams (Nchan: channels) published, each with its own `seq`.
    pub streams: Vec<String>,
    /// One event in this many (per subscriber) is checked byte for byte.
    pub sample_every: u64,
    /// Scan every byte of unsampled events for line ends instead of trusting their `size`.
    pub scan_all: bool,
    /// What sampled events are checked against.
    pub expect: Expect,
    /// What the subscribers read.
    pub output: Output,

    /// Per stream, by `seq`.
    sent: RefCell<Vec<Vec<Sent>>>,
    /// Per stream, the first `seq` of the measured window; `u64::MAX` while warming up.
    pub window_start: Vec<Cell<u64>>,
    /// Whether socket bytes are being counted.
    pub counting_bytes: Cell<bool>,
    /// Socket bytes read by subscribers while counting.
    pub bytes: Cell<u64>,
    /// Event data bytes (the JSON) received inside the window.
    pub payload_bytes: Cell<u64>,
    /// Publish→receive latencies inside the window, in microseconds.
    pub latencies_us: RefCell<Vec<u32>>,
    /// Window events whose `seq` the publisher has no send time for.
    pub unmatched: Cell<u64>,
    /// Per-connection tallies, by connection index.
    pub clients: RefCell<Vec<Client>>,
    /// Connections that got their response head.
    pub ready: Cell<usize>,
    /// Connections that failed before or while streaming.
    pub failed: Cell<usize>,
    /// The first scaled event checked: its width and height.
    pub event_dims: Cell<Option<(u16, u16)>>,
    /// Sampled events checked byte for byte.
    pub checked: Cell<u64>,
    /// Sampled events that did not match what was sent.
    pub mismatched: Cell<u64>,
    /// What the first mismatch was.
    pub first_mismatch: RefCell<Option<String>>,
}

impl Board {
    /// A board for `streams` (as many as `layout` says) and `layout`'s connections.
    pub fn new(
        server: Server,
        streams: Vec<String>,
        frames: Vec<Frame>,
        layout: Layout,
        sample_every: u64,
    ) -> Self {
        assert_eq!(streams.len(), layout.streams, "one name per stream");
        let clients = (0..layout.connections())
            .map(|index| {
                let (first_stream, count) = layout.carried(index);
                Client {
                    first_stream,
                    tallies: vec![StreamTally::default(); count],
                    ..Client::default()
                }
            })
            .collect();
        Board {
            origin: Instant::now(),
            frames,
            server,
            sent: RefCell::new(vec![Vec::new(); streams.len()]),
            window_start: streams.iter().map(|_| Cell::new(u64::MAX)).collect(),
            streams,
            sample_every: sample_every.max(1),
            scan_all: false,
            expect: Expect::Exact,
            output: Output::Sse,
            counting_bytes: Cell::new(false),
            bytes: Cell::new(0),
            payload_bytes: Cell::new(0),
            latencies_us: RefCell::new(Vec::new()),
            unmatched: Cell::new(0),
            clients: RefCell::new(clients),
            ready: Cell::new(0),
            failed: Cell::new(0),
            event_dims: Cell::new(None),
            checked: Cell::new(0),
            mismatched: Cell::new(0),
            first_mismatch: RefCell::new(None),
        }
    }

    /// Whether the generator numbers the frames itself, the number travelling inside what it
    /// publishes (Nchan's JSON envelope, MJPEG's mark), rather than taking framecast's `seq`.
    pub fn numbers_frames(&self) -> bool {
        self.server == Server::Nchan || self.output == Output::Mjpeg
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Notes that sending `seq` of `stream` (frame `frame`) starts now.
    pub fn note_sent(&self, stream: usize, seq: u64, frame: usize) {
        let at = self.now_ns() + 1;
        self.put(
            stream,
            seq,
            Sent {
                at,
                frame: frame as u32,
            },
        );
    }

    /// The server gave the frame of `stream` noted as `guessed` the number `actual`: move the
    /// note.
    pub fn renumber(&self, stream: usize, guessed: u64, actual: u64) {
        let note = std::mem::take(&mut self.sent.borrow_mut()[stream][guessed as usize]);
        self.put(stream, actual, note);
    }

    fn put(&self, stream: usize, seq: u64, note: Sent) {
        let mut sent = self.sent.borrow_mut();
        let sent = &mut sent[stream];
        let index = seq as usize;
        if sent.len() <= index {
            sent.resize(index + 1024, Sent::default());
        }
        sent[index] = note;
    }

    /// Which of the run's streams an event's head names: the only one, when there is one.
    fn stream_of(&self, head: &[u8]) -> Option<usize> {
        if self.streams.len() == 1 {
            return Some(0);
        }
        let name = crate::sse::stream_in(head)?;
        self.streams.iter().position(|s| s.as_bytes() == name)
    }

    /// Records a frame event received on connection `client`.
    pub fn received(&self, client: usize, head: &[u8], data: Option<&[u8]>, len: usize) {
        let seq = crate::sse::seq_in(head);
        let Some((stream, seq, frame)) = self.record(client, seq, self.stream_of(head), len) else {
            return;
        };
        if let Some(data) = data {
            self.check(stream, seq, frame, |frame| {
                self.mismatch(stream, data, frame)
            });
        }
    }

    /// Records an MJPEG part received on connection `client`, which carries one stream.
    pub fn received_part(&self, client: usize, head: &[u8], body: Option<&[u8]>, len: usize) {
        let seq = crate::mark::seq_in(head);
        let stream = self.clients.borrow()[client].first_stream;
        let Some((stream, seq, frame)) = self.record(client, seq, Some(stream), len) else {
            return;
        };
        if let Some(body) = body {
            self.check(stream, seq, frame, |frame| part_mismatch(seq, body, frame));
        }
    }

    /// Tallies frame `seq` of `stream` (each as far as it is known), `len` bytes of event
    /// data, on connection `client`, and its latency if it is inside the window. Returns the
    /// stream, the `seq` and the frame sent as it (if this run sent it), unless the event is
    /// not one this connection should count.
    fn record(
        &self,
        client: usize,
        seq: Option<u64>,
        stream: Option<usize>,
        len: usize,
    ) -> Option<(usize, u64, Option<u32>)> {
        let now = self.now_ns();
        let Some(seq) = seq else {
            self.clients.borrow_mut()[client].unparsed += 1;
            return None;
        };
        let (stream, window_start) = {
            let mut clients = self.clients.borrow_mut();
            let connection = &mut clients[client];
            let carried = stream
                .and_then(|stream| stream.checked_sub(connection.first_stream))
                .filter(|carried| *carried < connection.tallies.len());
            let (Some(stream), Some(carried)) = (stream, carried) else {
                connection.foreign += 1;
                return None;
            };
            let tally = &mut connection.tallies[carried];
            if seq <= tally.last_seq {
                tally.disorder += 1;
            }
            tally.last_seq = tally.last_seq.max(seq);
            let window_start = self.window_start[stream].get();
            if seq >= window_start {
                tally.events += 1;
                self.payload_bytes
                    .set(self.payload_bytes.get() + len as u64);
            }
            (stream, window_start)
        };
        let sent = self.sent.borrow()[stream].get(seq as usize).copied();
        if seq >= window_start {
            match sent {
                Some(sent) if sent.at > 0 => {
                    let micros = (now.saturating_sub(sent.at - 1) / 1000).min(u32::MAX as u64);
                    let mut latencies = self.latencies_us.borrow_mut();
                    if latencies.len() < MAX_LATENCY_SAMPLES {
                        latencies.push(micros as u32);
                    }
                }
                _ => self.unmatched.set(self.unmatched.get() + 1),
            }
        }
        let frame = sent.filter(|sent| sent.at > 0).map(|sent| sent.frame);
        Some((stream, seq, frame))
    }

    /// Checks a sampled event against the frame that was sent as `seq` of `stream` with
    /// `mismatch`, which says what differs, if anything.
    fn check(
        &self,
        stream: usize,
        seq: u64,
        frame: Option<u32>,
        mismatch: impl FnOnce(&Frame) -> Option<String>,
    ) {
        self.checked.set(self.checked.get() + 1);
        let problem = match frame {
            None => Some(format!("seq {seq} was never published by this run")),
            Some(frame) => mismatch(&self.frames[frame as usize]),
        };
        if let Some(problem) = problem {
            self.mismatched.set(self.mismatched.get() + 1);
            self.first_mismatch
                .borrow_mut()
                .get_or_insert_with(|| format!("{} seq {seq}: {problem}", self.streams[stream]));
        }
    }

    fn mismatch(&self, stream: usize, data: &[u8], frame: &Frame) -> Option<String> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            stream: &'a str,
            width: u16,
            height: u16,
            size: usize,
            jpeg: &'a str,
        }
        let envelope: Envelope = match serde_json::from_slice(data) {
            Ok(envelope) => envelope,
            Err(err) => return Some(format!("data is not the frame JSON: {err}")),
        };
        if envelope.stream != self.streams[stream] {
            return Some(format!("stream {:?}", envelope.stream));
        }
        if self.expect == Expect::Scaled {
            return self.scaled_mismatch(
                (envelope.width, envelope.height, envelope.size),
                envelope.jpeg,
                frame,
            );
        }
        if (envelope.width, envelope.height) != (frame.width, frame.height) {
            return Some(format!("size {}x{}", envelope.width, envelope.height));
        }
        if envelope.size != frame.jpeg.len() {
            return Some(format!(
                "byte count {} ≠ {}",
                envelope.size,
                frame.jpeg.len()
            ));
        }
        match BASE64.decode(envelope.jpeg) {
            Ok(jpeg) if jpeg == frame.jpeg => None,
            Ok(_) => Some("JPEG bytes differ".to_string()),
            Err(err) => Some(format!("bad base64: {err}")),
        }
    }

    /// Checks a scaled event: its JPEG decodes, to the size the event announces, which keeps
    /// the published frame's aspect ratio and is no wider; the frame itself if as wide.
    fn scaled_mismatch(
        &self,
        (width, height, size): (u16, u16, usize),
        base64: &str,
        frame: &Frame,
    ) -> Option<String> {
        let jpeg = match BASE64.decode(base64) {
            Ok(jpeg) => jpeg,
            Err(err) => return Some(format!("bad base64: {err}")),
        };
        if jpeg.len() != size {
            return Some(format!("byte count {} ≠ size {size}", jpeg.len()));
        }
        if width >= frame.width {
            return (jpeg != frame.jpeg)
                .then(|| format!("{width}x{height}: not scaled, yet not the frame sent"));
        }
        let expected_height = (u32::from(frame.height) * u32::from(width)
            + u32::from(frame.width) / 2)
            / u32::from(frame.width.max(1));
        if u32::from(height).abs_diff(expected_height) > 1 {
            return Some(format!(
                "{width}x{height} does not keep {}x{}'s aspect ratio",
                frame.width, frame.height
            ));
        }
        match crate::frames::decoded_dimensions(&jpeg) {
            Ok(decoded) if decoded == (width, height) => {
                self.event_dims.set(self.event_dims.get().or(Some(decoded)));
                None
            }
            Ok((w, h)) => Some(format!(
                "JPEG decodes to {w}x{h}, event says {width}x{height}"
            )),
            Err(err) => Some(format!("JPEG does not decode: {err}")),
        }
    }
}

/// What differs between a sampled MJPEG part and `frame` marked with `seq`, if anything.
fn part_mismatch(seq: u64, body: &[u8], frame: &Frame) -> Option<String> {
    let expected = frame.jpeg.len() + crate::mark::LEN;
    if body.len() != expected {
        return Some(format!("byte count {} ≠ {expected}", body.len()));
    }
    let (head, rest) = body.split_at(crate::mark::HEAD_LEN);
    let mark_ok = head[..2] == frame.jpeg[..2] && head[2..] == crate::mark::segment(seq);
    (!mark_ok || rest != &frame.jpeg[2..]).then(|| "JPEG bytes differ".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(jpeg: Vec<u8>, width: u16, height: u16) -> Frame {
        Frame {
            base64: BASE64.encode(&jpeg),
            jpeg,
            width,
            height,
        }
    }

    fn board() -> Board {
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        Board::new(
            Server::Framecast,
            vec!["s".into()],
            vec![frame(jpeg, 4, 2)],
            Layout::single(1),
            1,
        )
    }

    fn event(jpeg_base64: &str) -> String {
        format!(
            r#"{{"stream":"s","seq":1,"ts":0,"width":4,"height":2,"size":7,"jpeg":"{jpeg_base64}"}}"#
        )
    }

    #[test]
    fn a_sampled_event_matching_the_sent_frame_passes() {
        let board = board();
        board.window_start[0].set(1);
        board.note_sent(0, 1, 0);
        let data = event(&board.frames[0].base64.clone());
        board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
        assert_eq!((board.checked.get(), board.mismatched.get()), (1, 0));
        assert_eq!(board.clients.borrow()[0].events(), 1);
        assert_eq!(board.latencies_us.borrow().len(), 1);
    }

    #[test]
    fn a_sampled_event_with_other_bytes_is_a_mismatch() {
        let board = board();
        board.note_sent(0, 1, 0);
        let data = event(&BASE64.encode([0xFF, 0xD8, 1, 2, 4, 0xFF, 0xD9]));
        board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
        assert_eq!(board.mismatched.get(), 1);
        assert!(
            board
                .first_mismatch
                .borrow()
                .as_deref()
                .unwrap()
                .contains("differ")
        );
    }

    #[test]
    fn a_renumbered_frame_is_found_under_its_new_seq() {
        let board = board();
        board.note_sent(0, 3, 0);
        board.renumber(0, 3, 5);
        let data = event(&board.frames[0].base64.clone()).replace("\"seq\":1", "\"seq\":5");
        board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
        assert_eq!((board.checked.get(), board.mismatched.get()), (1, 0));
    }

    #[test]
    fn subscribe_paths_carry_every_stream_then_the_extra_parameters() {
        let one = stream_names("cam", 1);
        let three = stream_names("cam", 3);
        assert_eq!(one, ["cam"]);
        assert_eq!(three, ["cam-1", "cam-2", "cam-3"]);
        let width = vec![query_param("width=320").unwrap()];
        assert_eq!(
            Server::Framecast.subscribe_path(Output::Sse, &one, &[]),
            "/events?stream=cam"
        );
        assert_eq!(
            Server::Floor.subscribe_path(Output::Sse, &one, &[]),
            "/events?stream=cam"
        );
        assert_eq!(
            Server::Nchan.subscribe_path(Output::Sse, &one, &[]),
            "/sub?stream=cam"
        );
        assert_eq!(
            Server::Framecast.subscribe_path(Output::Sse, &three, &width),
            "/events?stream=cam-1&stream=cam-2&stream=cam-3&width=320"
        );
        let request = Server::Framecast.subscribe_request(Output::Sse, &one, &width);
        assert!(request.starts_with(b"GET /events?stream=cam&width=320 HTTP/1.1\r\n"));
        assert!(request.ends_with(b"\r\n\r\n"));
        assert_eq!(
            Server::Framecast.subscribe_path(Output::Mjpeg, &one, &[]),
            "/mjpeg?stream=cam"
        );
        assert_eq!(asked_width(&width), Some(320));
        assert_eq!(asked_width(&["fps=5".into()]), None);
    }

    #[test]
    fn query_parameters_must_go_into_a_request_line_as_they_are() {
        assert_eq!(query_param("width=160").unwrap(), "width=160");
        assert!(query_param("access_token=a.b-c_d%2B").is_ok());
        for bad in [
            "width", "=1", "width=", "a=b&c=d", "a=b c", "a=b\r\n", "stream=x", "a=#",
        ] {
            assert!(query_param(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn layouts_map_connections_to_streams() {
        let separate = Layout {
            viewers: 3,
            streams: 4,
            multiplex: false,
        };
        assert_eq!(separate.connections(), 12);
        assert_eq!(separate.carried(0), (0, 1));
        assert_eq!(separate.carried(5), (1, 1));
        assert_eq!(separate.carried(11), (3, 1));
        let multiplexed = Layout {
            multiplex: true,
            ..separate
        };
        assert_eq!(multiplexed.connections(), 3);
        assert_eq!(multiplexed.carried(2), (0, 4));
        assert_eq!(Layout::single(7).connections(), 7);
        assert_eq!(Layout::single(7).carried(6), (0, 1));
    }

    fn multi_event(stream: &str, seq: u64) -> String {
        format!(
            r#"{{"stream":"{stream}","seq":{seq},"ts":0,"width":4,"height":2,"size":7,"jpeg":""}}"#
        )
    }

    #[test]
    fn each_stream_counts_its_own_seq_on_a_multiplexed_connection() {
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let layout = Layout {
            viewers: 1,
            streams: 2,
            multiplex: true,
        };
        let board = Board::new(
            Server::Framecast,
            stream_names("b", 2),
            vec![frame(jpeg, 4, 2)],
            layout,
            u64::MAX,
        );
        // Stream b-1's window opens at seq 3, b-2's at seq 2.
        board.window_start[0].set(3);
        board.window_start[1].set(2);
        for seq in 1..=4 {
            board.note_sent(0, seq, 0);
            board.note_sent(1, seq, 0);
        }
        let receive = |stream: &str, seq: u64| {
            let head = multi_event(stream, seq);
            board.received(0, head.as_bytes(), None, head.len());
        };
        // Interleaved, each stream in order: no disorder although seqs repeat across streams.
        for seq in 1..=4 {
            receive("b-1", seq);
            receive("b-2", seq);
        }
        {
            let clients = board.clients.borrow();
            let tallies = &clients[0].tallies;
            assert_eq!(tallies[0].events, 2, "b-1: seqs 3 and 4 are in its window");
            assert_eq!(tallies[1].events, 3, "b-2: seqs 2, 3 and 4");
            assert_eq!(clients[0].disorder(), 0);
            assert!(clients[0].caught_up(&[4, 4]));
            assert!(!clients[0].caught_up(&[4, 5]));
        }
        assert_eq!(board.latencies_us.borrow().len(), 5);
        // A repeat within one stream is disorder; a stream not in the run is foreign.
        receive("b-2", 4);
        receive("b-3", 9);
        let clients = board.clients.borrow();
        assert_eq!(clients[0].tallies[1].disorder, 1);
        assert_eq!(clients[0].tallies[0].disorder, 0);
        assert_eq!(clients[0].foreign, 1);
    }

    #[test]
    fn a_connection_for_one_stream_counts_the_others_as_foreign() {
        let layout = Layout {
            viewers: 1,
            streams: 2,
            multiplex: false,
        };
        let board = Board::new(
            Server::Framecast,
            stream_names("b", 2),
            Vec::new(),
            layout,
            1,
        );
        let head = multi_event("b-1", 1);
        board.received(1, head.as_bytes(), None, head.len());
        let head = multi_event("b-2", 1);
        board.received(1, head.as_bytes(), None, head.len());
        let clients = board.clients.borrow();
        assert_eq!(clients[1].first_stream, 1);
        assert_eq!(clients[1].foreign, 1);
        assert_eq!(clients[1].tallies[0].last_seq, 1);
        assert_eq!(clients[0].tallies[0].last_seq, 0);
    }

    #[test]
    fn an_mjpeg_part_is_known_by_its_mark_and_checked_byte_for_byte() {
        let layout = Layout {
            viewers: 1,
            streams: 2,
            multiplex: false,
        };
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let mut board = Board::new(
            Server::Framecast,
            stream_names("m", 2),
            vec![frame(jpeg.clone(), 4, 2)],
            layout,
            1,
        );
        board.output = Output::Mjpeg;
        assert!(board.numbers_frames());
        board.window_start[1].set(2);
        board.note_sent(1, 1, 0);
        board.note_sent(1, 2, 0);
        let part = |seq| {
            let mut marked = Vec::new();
            crate::mark::write(&mut marked, &jpeg, seq);
            marked
        };
        let receive = |body: &[u8], keep: bool| {
            let head = &body[..body.len().min(crate::multipart::HEAD_BYTES)];
            // Connection 1 carries stream m-2.
            board.received_part(1, head, keep.then_some(body), body.len());
        };
        receive(&part(1), false);
        receive(&part(2), true);
        assert_eq!((board.checked.get(), board.mismatched.get()), (1, 0));
        assert_eq!(
            board.latencies_us.borrow().len(),
            1,
            "seq 1 is before the window"
        );
        assert_eq!(
            board.payload_bytes.get(),
            (jpeg.len() + crate::mark::LEN) as u64
        );
        {
            let clients = board.clients.borrow();
            assert_eq!(clients[1].tallies[0].events, 1);
            assert_eq!(clients[1].tallies[0].last_seq, 2);
            assert_eq!(clients[0].tallies[0].last_seq, 0);
        }
        let mut other = part(2);
        other[crate::mark::HEAD_LEN] ^= 1;
        receive(&other, true);
        assert_eq!(board.mismatched.get(), 1);
        assert_eq!(board.clients.borrow()[1].disorder(), 1, "seq 2 twice");
        receive(&jpeg, false);
        assert_eq!(board.clients.borrow()[1].unparsed, 1, "no mark");
    }

    #[test]
    fn a_scaled_event_must_decode_to_its_announced_narrower_size() {
        let source = crate::frames::test_jpeg(64, 36);
        let mut board = Board::new(
            Server::Framecast,
            vec!["s".into()],
            vec![frame(source.clone(), 64, 36)],
            Layout::single(1),
            1,
        );
        board.expect = Expect::Scaled;
        board.note_sent(0, 1, 0);
        let check = |jpeg: &[u8], width: u16, height: u16, size: usize| {
            let data = format!(
                r#"{{"stream":"s","seq":1,"ts":0,"width":{width},"height":{height},"size":{size},"jpeg":"{}"}}"#,
                BASE64.encode(jpeg)
            );
            let before = board.mismatched.get();
            board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
            board.mismatched.get() == before
        };
        let scaled = crate::frames::test_jpeg(16, 9);
        assert!(check(&scaled, 16, 9, scaled.len()));
        assert_eq!(board.event_dims.get(), Some((16, 9)));
        assert!(
            !check(&scaled, 16, 8, scaled.len()),
            "announced size differs"
        );
        assert!(
            !check(&scaled, 16, 9, scaled.len() + 1),
            "byte count differs"
        );
        let squashed = crate::frames::test_jpeg(16, 4);
        assert!(
            !check(&squashed, 16, 4, squashed.len()),
            "aspect ratio lost"
        );
        assert!(!check(&scaled[..40], 16, 9, 40), "truncated JPEG");
        assert!(
            check(&source, 64, 36, source.len()),
            "as wide: the frame itself"
        );
        assert!(
            !check(&scaled, 64, 36, scaled.len()),
            "as wide but other bytes"
        );
    }
}
