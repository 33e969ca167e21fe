//! An incremental `text/event-stream` parser that only copies what it is asked to keep.
//!
//! It follows the line and field rules of the HTML spec (`\n`, `\r\n` or `\r` end a line; a
//! blank line dispatches; `data` lines are joined with `\n`; one space after the colon is
//! dropped), but a frame event is ~50–200 KB of base64 and most are only counted, so by default
//! it keeps just the first [`HEAD_BYTES`] of an event's data. The caller decides, as each event's
//! data begins, whether to keep the whole of it (the sampled events that get checked byte for
//! byte). Pure code, no I/O: bytes in, [`Event`]s out, split anywhere.

/// How much of each line and of each event's data is always kept: enough for the field name
/// and the JSON fields before the JPEG.
pub const HEAD_BYTES: usize = 256;

/// One dispatched event.
#[derive(Debug)]
pub struct Event<'a> {
    /// The `event:` field, or `message` when there was none.
    pub kind: &'a [u8],
    /// The first [`HEAD_BYTES`] of the data.
    pub head: &'a [u8],
    /// The whole data, when the caller asked to keep it.
    pub data: Option<&'a [u8]>,
    /// Length of the whole data in bytes.
    pub len: usize,
}

/// What the parser asks of its caller.
pub trait Handler {
    /// Called when an event's first `data` line starts: return true to keep all of its data.
    fn keep_data(&mut self) -> bool;
    /// Called for each event that had data.
    fn event(&mut self, event: Event<'_>);
    /// Called once the head of an unkept event's data is complete: the whole data length, if
    /// the head tells it. The parser then counts the rest of the line without scanning it for
    /// a line end (a wrong answer shows up as the next event not parsing where it should).
    fn data_len(&mut self, _head: &[u8]) -> Option<usize> {
        None
    }
}

/// What the current line turned out to be, once enough of it has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Too little seen yet to know the field name.
    Unknown,
    /// A `data` line: its value bytes go to the event's data.
    Data,
    /// Anything else already handled, or ignored.
    Other,
}

/// Parser state between chunks.
#[derive(Debug)]
pub struct Parser {
    /// The first bytes of the current line, until it is classified.
    line: Vec<u8>,
    class: Line,
    /// The colon ended the classified head, so a space starting the next bytes is dropped.
    skip_space: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next one ends no line.
    after_cr: bool,
    has_data: bool,
    keep: bool,
    /// The handler was asked for this event's data length.
    asked_len: bool,
    /// Bytes of the current data line still to be counted without scanning.
    blind: usize,
    head: Vec<u8>,
    data: Vec<u8>,
    len: usize,
    kind: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Parser {
            line: Vec::with_capacity(HEAD_BYTES),
            class: Line::Unknown,
            skip_space: false,
            after_cr: false,
            has_data: false,
            keep: false,
            asked_len: false,
            blind: 0,
            head: Vec::new(),
            data: Vec::new(),
            len: 0,
            kind: Vec::new(),
        }
    }

    /// Feeds the next bytes of the stream, calling `handler` for every event they complete.
    pub fn feed(&mut self, mut input: &[u8], handler: &mut impl Handler) {
        if self.after_cr {
            self.after_cr = false;
            if input.first() == Some(&b'\n') {
                input = &input[1..];
            }
        }
        while !input.is_empty() {
            if self.blind > 0 {
                let n = self.blind.min(input.len());
                self.blind -= n;
                self.len += n;
                self.skip_space = false;
                input = &input[n..];
                continue;
            }
            match memchr::memchr2(b'\n', b'\r', input) {
                None => {
                    self.line_bytes(input, handler);
                    return;
                }
                Some(end) => {
                    self.line_bytes(&input[..end], handler);
                    self.end_line(handler);
                    let mut next = end + 1;
                    if input[end] == b'\r' {
                        match input.get(next) {
                            Some(b'\n') => next += 1,
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    input = &input[next..];
                }
            }
        }
    }

    /// Bytes in the middle of a line.
    fn line_bytes(&mut self, mut bytes: &[u8], handler: &mut impl Handler) {
        if self.class == Line::Unknown {
            let room = HEAD_BYTES - self.line.len();
            let take = room.min(bytes.len());
            self.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.line.len() < HEAD_BYTES {
                return;
            }
            // The head is full: decide now; what is left of `bytes` continues the value.
            self.classify(handler);
        }
        if self.class == Line::Data && !bytes.is_empty() {
            if self.skip_space {
                self.skip_space = false;
                if bytes[0] == b' ' {
                    bytes = &bytes[1..];
                }
            }
            // Once the head is complete, ask how long the data is and stop scanning.
            let before_head_full = HEAD_BYTES.saturating_sub(self.head.len());
            if !self.keep && !self.asked_len && bytes.len() > before_head_full {
                self.data_value(&bytes[..before_head_full]);
                bytes = &bytes[before_head_full..];
                self.asked_len = true;
                if let Some(total) = handler.data_len(&self.head) {
                    self.blind = total.saturating_sub(self.len);
                    let n = self.blind.min(bytes.len());
                    self.blind -= n;
                    self.len += n;
                    bytes = &bytes[n..];
                }
            }
            self.data_value(bytes);
        }
    }

    /// Classifies the current line from its head and handles fields other than `data`.
    fn classify(&mut self, handler: &mut impl Handler) {
        let line = std::mem::take(&mut self.line);
        self.class = Line::Other;
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(0) => (&line[..0], None), // a comment
            Some(colon) => (&line[..colon], Some(&line[colon + 1..])),
            None if line.len() < HEAD_BYTES => (&line[..], Some(&line[line.len()..])),
            None => (&line[..0], None), // a field name too long to be one we know
        };
        if let Some(mut value) = value {
            let colon_ended_head = value.is_empty() && field.len() < line.len();
            if value.first() == Some(&b' ') {
                value = &value[1..];
            }
            match field {
                b"data" => {
                    self.class = Line::Data;
                    self.skip_space = colon_ended_head;
                    if self.has_data {
                        self.data_value(b"\n");
                    } else {
                        self.has_data = true;
                        self.keep = handler.keep_data();
                    }
                    self.data_value(value);
                }
                b"event" => self.kind = value.to_vec(),
                _ => {} // `id`, `retry` and unknown fields change nothing we measure
            }
        }
        self.line = line;
        self.line.clear();
    }

    /// Appends part of the current event's data.
    fn data_value(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        if self.keep {
            self.data.extend_from_slice(bytes);
        }
    }

    /// The end of a line: a blank one dispatches the pending event.
    fn end_line(&mut self, handler: &mut impl Handler) {
        match self.class {
            Line::Unknown if self.line.is_empty() => self.dispatch(handler),
            Line::Unknown => self.classify(handler),
            Line::Data | Line::Other => {}
        }
        self.class = Line::Unknown;
        self.skip_space = false;
        self.line.clear();
    }

    fn dispatch(&mut self, handler: &mut impl Handler) {
        if self.has_data {
            let kind: &[u8] = if self.kind.is_empty() {
                b"message"
            } else {
                &self.kind
            };
            handler.event(Event {
                kind,
                head: &self.head,
                data: self.keep.then_some(&self.data[..]),
                len: self.len,
            });
        }
        self.has_data = false;
        self.keep = false;
        self.asked_len = false;
        self.blind = 0;
        self.head.clear();
        self.data = Vec::new();
        self.len = 0;
        self.kind.clear();
    }
}

/// The number after `"seq":` in a JSON head, if it is there.
pub fn seq_in(head: &[u8]) -> Option<u64> {
    number_after(head, b"\"seq\":")
}

/// The name after `"stream":"` in a JSON head, up to its closing quote, if it is there (stream
/// names need no JSON escaping: letters, digits, `-`, `_`, `.`).
pub fn stream_in(head: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"stream\":\"";
    let at = find(head, KEY)? + KEY.len();
    let name = &head[at..];
    let end = memchr::memchr(b'"', name)?;
    Some(&name[..end])
}

/// The whole length of a frame event's data, worked out from its head: both servers' frame
/// JSON ends with `"jpeg":"<base64 of size bytes>"}`.
pub fn frame_data_len(head: &[u8]) -> Option<usize> {
    let size = number_after(head, b"\"size\":")? as usize;
    let jpeg = find(head, b"\"jpeg\":\"")?;
    Some(jpeg + 8 + size.div_ceil(3) * 4 + 2)
}

fn number_after(head: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(head, key)? + key.len();
    let digits = &head[at..];
    let digits = &digits[digits.iter().take_while(|b| **b == b' ').count()..];
    let end = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if end == 0 || end > 19 {
        return None;
    }
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// Where `needle` first occurs in the short `head`: a plain scan, cheaper here than building a
/// substring searcher per call.
fn find(head: &[u8], needle: &[u8]) -> Option<usize> {
    head.windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        keep_every: usize,
        asked: usize,
        events: Vec<(String, String, Option<String>, usize)>,
    }

    impl Handler for Collect {
        fn keep_data(&mut self) -> bool {
            self.asked += 1;
            self.keep_every != 0 && self.asked.is_multiple_of(self.keep_every)
        }
        fn event(&mut self, e: Event<'_>) {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            self.events
                .push((text(e.kind), text(e.head), e.data.map(text), e.len));
        }
    }

    fn parse_in_pieces(input: &[u8], piece: usize, keep_every: usize) -> Collect {
        let mut parser = Parser::new();
        let mut out = Collect {
            keep_every,
            ..Collect::default()
        };
        for chunk in input.chunks(piece) {
            parser.feed(chunk, &mut out);
        }
        out
    }

    fn stream() -> Vec<u8> {
        let big = "x".repeat(1000);
        format!(
            "retry: 2000\n\n: keep-alive\n\nid: 7\nevent: frame\ndata: {{\"seq\":7,\"j\":\"{big}\"}}\n\n\
             data:no space\r\ndata:  two\r\n\r\nid: 9\rdata: a\r\rdata\n\n"
        )
        .into_bytes()
    }

    #[test]
    fn events_are_the_same_whatever_the_chunk_size() {
        let whole = parse_in_pieces(&stream(), usize::MAX, 1).events;
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].0, "frame");
        assert_eq!(whole[0].3, 1000 + 16);
        assert_eq!(whole[1].2.as_deref(), Some("no space\n two"));
        assert_eq!(whole[1].0, "message");
        assert_eq!(whole[2].2.as_deref(), Some("a"));
        assert_eq!(whole[3].2.as_deref(), Some(""), "a bare `data` line");
        for piece in [1, 2, 3, 7, 255, 256, 257, 1000] {
            assert_eq!(
                parse_in_pieces(&stream(), piece, 1).events,
                whole,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn unkept_events_keep_only_the_head() {
        let events = parse_in_pieces(&stream(), 5, 0).events;
        assert_eq!(events[0].1.len(), HEAD_BYTES);
        assert!(events[0].2.is_none());
        assert_eq!(seq_in(events[0].1.as_bytes()), Some(7));
    }

    #[test]
    fn a_space_after_a_colon_that_ends_the_head_is_dropped() {
        // "data:" then a space exactly at the head boundary is impossible for `data` (short),
        // but a long unknown field must not leak into the data either.
        let long_field = "f".repeat(HEAD_BYTES + 10);
        let input = format!("{long_field}: v\ndata: ok\n\n");
        let events = parse_in_pieces(input.as_bytes(), 3, 1).events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].2.as_deref(), Some("ok"));
    }

    #[test]
    fn frame_data_len_counts_the_base64_and_the_closing_quote_and_brace() {
        let data = br#"{"seq":1,"size":4,"jpeg":"/9j/2Q=="}"#;
        assert_eq!(frame_data_len(data), Some(data.len()));
        let data = br#"{"seq":1,"size":5,"jpeg":"/9j/2QA="}"#;
        assert_eq!(frame_data_len(data), Some(data.len()));
    }

    #[test]
    fn blind_counting_gives_the_same_events_whatever_the_chunk_size() {
        struct Hinted(Collect);
        impl Handler for Hinted {
            fn keep_data(&mut self) -> bool {
                self.0.keep_data()
            }
            fn event(&mut self, e: Event<'_>) {
                self.0.event(e)
            }
            fn data_len(&mut self, head: &[u8]) -> Option<usize> {
                frame_data_len(head)
            }
        }
        let jpeg = "A".repeat(4 * 300);
        let one = format!(
            "id: 1\nevent: frame\ndata: {{\"seq\":1,\"size\":900,\"jpeg\":\"{jpeg}\"}}\n\n"
        );
        let input = format!("{one}{}", one.replace("\"seq\":1", "\"seq\":2"));
        let expected = parse_in_pieces(input.as_bytes(), usize::MAX, 0).events;
        assert_eq!(expected.len(), 2);
        for piece in [1, 2, 5, 100, 255, 256, 257, 1000, usize::MAX] {
            let mut parser = Parser::new();
            let mut out = Hinted(Collect::default());
            for chunk in input.as_bytes().chunks(piece) {
                parser.feed(chunk, &mut out);
            }
            assert_eq!(out.0.events, expected, "piece {piece}");
        }
    }

    #[test]
    fn the_stream_is_found_in_a_head() {
        let head = br#"{"stream":"cam-12","seq":3,"ts":1}"#;
        assert_eq!(stream_in(head), Some(&b"cam-12"[..]));
        assert_eq!(
            stream_in(br#"{"stream":"cut"#),
            None,
            "no closing quote yet"
        );
        assert_eq!(stream_in(br#"{"seq":3}"#), None);
    }

    #[test]
    fn seq_is_found_in_framecast_and_envelope_heads() {
        assert_eq!(seq_in(br#"{"stream":"s","seq":123,"ts":1}"#), Some(123));
        assert_eq!(seq_in(br#"{"seq": 5}"#), Some(5));
        assert_eq!(seq_in(br#"{"stream":"s"}"#), None);
    }
}
