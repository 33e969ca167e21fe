//! The board: what the publisher and every subscriber of one run write down, in one place.
//!
//! Everything runs on one thread, so the board is shared by `Rc` and its fields are `Cell`s and
//! `RefCell`s borrowed only between awaits. The publisher notes when it started sending each
//! `seq` and which frame that was; a subscriber, on receiving an event, looks its `seq` up here
//! for the latency and, for sampled events, for the bytes to compare against.

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

    /// The `GET` request that subscribes to `stream`.
    pub fn subscribe_request(self, stream: &str) -> Vec<u8> {
        let path = match self {
            Server::Framecast | Server::Floor => format!("/events?stream={stream}"),
            Server::Nchan => format!("/sub?stream={stream}"),
        };
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
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

/// One subscriber's tally.
#[derive(Debug, Default, Clone)]
pub struct Client {
    /// Got its response head and is reading events.
    pub ready: bool,
    /// Frame events received whose `seq` is inside the measured window.
    pub events: u64,
    /// Highest `seq` received.
    pub last_seq: u64,
    /// Events whose `seq` was not above the previous one.
    pub disorder: u64,
    /// Frame events without a readable `seq`.
    pub unparsed: u64,
    /// Why the connection failed or ended early.
    pub error: Option<String>,
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
    /// The stream (Nchan: channel) name.
    pub stream: String,
    /// One event in this many (per subscriber) is checked byte for byte.
    pub sample_every: u64,
    /// Scan every byte of unsampled events for line ends instead of trusting their `size`.
    pub scan_all: bool,

    sent: RefCell<Vec<Sent>>,
    /// First `seq` of the measured window; `u64::MAX` while warming up.
    pub window_start: Cell<u64>,
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
    /// Per-subscriber tallies, by subscriber index.
    pub clients: RefCell<Vec<Client>>,
    /// Subscribers that got their response head.
    pub ready: Cell<usize>,
    /// Subscribers that failed before or while streaming.
    pub failed: Cell<usize>,
    /// Sampled events checked byte for byte.
    pub checked: Cell<u64>,
    /// Sampled events that did not match what was sent.
    pub mismatched: Cell<u64>,
    /// What the first mismatch was.
    pub first_mismatch: RefCell<Option<String>>,
}

impl Board {
    /// A board for `subscribers` clients.
    pub fn new(
        server: Server,
        stream: String,
        frames: Vec<Frame>,
        subscribers: usize,
        sample_every: u64,
    ) -> Self {
        Board {
            origin: Instant::now(),
            frames,
            server,
            stream,
            sample_every: sample_every.max(1),
            scan_all: false,
            sent: RefCell::new(Vec::new()),
            window_start: Cell::new(u64::MAX),
            counting_bytes: Cell::new(false),
            bytes: Cell::new(0),
            payload_bytes: Cell::new(0),
            latencies_us: RefCell::new(Vec::new()),
            unmatched: Cell::new(0),
            clients: RefCell::new(vec![Client::default(); subscribers]),
            ready: Cell::new(0),
            failed: Cell::new(0),
            checked: Cell::new(0),
            mismatched: Cell::new(0),
            first_mismatch: RefCell::new(None),
        }
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Notes that sending `seq` (frame `frame`) starts now.
    pub fn note_sent(&self, seq: u64, frame: usize) {
        let at = self.now_ns() + 1;
        self.put(
            seq,
            Sent {
                at,
                frame: frame as u32,
            },
        );
    }

    /// The server gave the frame noted as `guessed` the number `actual`: move the note.
    pub fn renumber(&self, guessed: u64, actual: u64) {
        let note = std::mem::take(&mut self.sent.borrow_mut()[guessed as usize]);
        self.put(actual, note);
    }

    fn put(&self, seq: u64, note: Sent) {
        let mut sent = self.sent.borrow_mut();
        let index = seq as usize;
        if sent.len() <= index {
            sent.resize(index + 1024, Sent::default());
        }
        sent[index] = note;
    }

    /// Records a frame event received by subscriber `client`.
    pub fn received(&self, client: usize, head: &[u8], data: Option<&[u8]>, len: usize) {
        let now = self.now_ns();
        let Some(seq) = crate::sse::seq_in(head) else {
            self.clients.borrow_mut()[client].unparsed += 1;
            return;
        };
        {
            let mut clients = self.clients.borrow_mut();
            let tally = &mut clients[client];
            if seq <= tally.last_seq {
                tally.disorder += 1;
            }
            tally.last_seq = tally.last_seq.max(seq);
            if seq >= self.window_start.get() {
                tally.events += 1;
                self.payload_bytes
                    .set(self.payload_bytes.get() + len as u64);
            }
        }
        let sent = self.sent.borrow().get(seq as usize).copied();
        if seq >= self.window_start.get() {
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
        if let Some(data) = data {
            let frame = sent.filter(|sent| sent.at > 0).map(|sent| sent.frame);
            self.check(seq, frame, data);
        }
    }

    /// Compares a sampled event's data with the frame that was sent as its `seq`.
    fn check(&self, seq: u64, frame: Option<u32>, data: &[u8]) {
        self.checked.set(self.checked.get() + 1);
        let problem = match frame {
            None => Some(format!("seq {seq} was never published by this run")),
            Some(frame) => self.mismatch(data, &self.frames[frame as usize]),
        };
        if let Some(problem) = problem {
            self.mismatched.set(self.mismatched.get() + 1);
            self.first_mismatch
                .borrow_mut()
                .get_or_insert_with(|| format!("seq {seq}: {problem}"));
        }
    }

    fn mismatch(&self, data: &[u8], frame: &Frame) -> Option<String> {
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
        if envelope.stream != self.stream {
            return Some(format!("stream {:?}", envelope.stream));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let frame = Frame {
            base64: BASE64.encode(&jpeg),
            jpeg,
            width: 4,
            height: 2,
        };
        Board::new(Server::Framecast, "s".into(), vec![frame], 1, 1)
    }

    fn event(jpeg_base64: &str) -> String {
        format!(
            r#"{{"stream":"s","seq":1,"ts":0,"width":4,"height":2,"size":7,"jpeg":"{jpeg_base64}"}}"#
        )
    }

    #[test]
    fn a_sampled_event_matching_the_sent_frame_passes() {
        let board = board();
        board.window_start.set(1);
        board.note_sent(1, 0);
        let data = event(&board.frames[0].base64.clone());
        board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
        assert_eq!((board.checked.get(), board.mismatched.get()), (1, 0));
        assert_eq!(board.clients.borrow()[0].events, 1);
        assert_eq!(board.latencies_us.borrow().len(), 1);
    }

    #[test]
    fn a_sampled_event_with_other_bytes_is_a_mismatch() {
        let board = board();
        board.note_sent(1, 0);
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
        board.note_sent(3, 0);
        board.renumber(3, 5);
        let data = event(&board.frames[0].base64.clone()).replace("\"seq\":1", "\"seq\":5");
        board.received(0, data.as_bytes(), Some(data.as_bytes()), data.len());
        assert_eq!((board.checked.get(), board.mismatched.get()), (1, 0));
    }
}
