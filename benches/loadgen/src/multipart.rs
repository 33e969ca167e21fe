//! An incremental parser for the MJPEG framecast writes (`multipart/x-mixed-replace`) that
//! never scans a JPEG: it reads each part's headers, keeps the first [`HEAD_BYTES`] of its
//! body, and counts the rest by the part's `Content-Length`.
//!
//! The body is the delimiter `--BOUNDARY`, then parts: `\r\n`, header lines, a blank line,
//! `Content-Length` bytes, `\r\n--BOUNDARY` (the CRLF before a delimiter belongs to it, RFC
//! 2046); `--` after a delimiter closes the body. A part is handed on once the delimiter
//! after it has been read, which is when a browser shows it. It reads one server's output
//! strictly, rather than any multipart leniently: a part without `Content-Length`, a
//! delimiter that is not where the length says, or an overlong header is an error. Pure code,
//! no I/O: bytes in, [`Part`]s out, split anywhere.

use anyhow::{Context, bail};

/// How much of each part's body is always kept: the start of the JPEG, with the mark that
/// numbers it ([`crate::mark`]).
pub const HEAD_BYTES: usize = 64;
/// Longest header line accepted.
const MAX_HEADER_LINE: usize = 1024;
/// Most header lines in one part.
const MAX_HEADERS: usize = 32;

/// One part, handed on once the delimiter after it was read.
#[derive(Debug)]
pub struct Part<'a> {
    /// The first [`HEAD_BYTES`] of the body.
    pub head: &'a [u8],
    /// The whole body, when the caller asked to keep it.
    pub body: Option<&'a [u8]>,
    /// Length of the body in bytes (its `Content-Length`).
    pub len: usize,
}

/// What the parser asks of its caller.
pub trait Handler {
    /// Called as a part's body starts: return true to keep all of it.
    fn keep_body(&mut self) -> bool;
    /// Called for each complete part.
    fn part(&mut self, part: Part<'_>);
}

/// Where the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching the delimiter, `\r\n--BOUNDARY`: this many of its bytes matched.
    Delimiter(usize),
    /// After a delimiter: `\r\n` starts a part, `--` closes the body. The first of the two,
    /// once seen.
    AfterDelimiter(Option<u8>),
    /// Reading a part's header lines.
    Headers,
    /// Inside a part's body, with this many bytes left.
    Body(usize),
    /// The body was closed; what follows (the epilogue) is ignored.
    Closed,
}

/// Parser state between chunks.
#[derive(Debug)]
pub struct Parser {
    /// `\r\n--BOUNDARY`.
    delimiter: Vec<u8>,
    state: State,
    /// The header line read so far, without its line end.
    line: Vec<u8>,
    /// Header lines of the current part.
    headers: usize,
    /// The current part's `Content-Length`, once read.
    length: Option<usize>,
    /// A part's body is complete and waits for the delimiter after it.
    pending: bool,
    keep: bool,
    head: Vec<u8>,
    body: Vec<u8>,
    len: usize,
}

impl Parser {
    /// A parser at the start of a body whose parts are separated by `boundary`.
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Parser {
            delimiter,
            // The first delimiter has no line end before it: there is no body before it.
            state: State::Delimiter(2),
            line: Vec::new(),
            headers: 0,
            length: None,
            pending: false,
            keep: false,
            head: Vec::with_capacity(HEAD_BYTES),
            body: Vec::new(),
            len: 0,
        }
    }

    /// Feeds the next bytes of the body, calling `handler` for every part they complete;
    /// true once the body has been closed.
    pub fn feed(&mut self, mut input: &[u8], handler: &mut impl Handler) -> anyhow::Result<bool> {
        while !input.is_empty() {
            match self.state {
                State::Delimiter(matched) => {
                    let want = &self.delimiter[matched..];
                    let n = want.len().min(input.len());
                    if input[..n] != want[..n] {
                        bail!(
                            "expected the delimiter {:?}, got {:?}",
                            String::from_utf8_lossy(&self.delimiter[2..]),
                            String::from_utf8_lossy(&input[..n])
                        );
                    }
                    input = &input[n..];
                    if matched + n < self.delimiter.len() {
                        self.state = State::Delimiter(matched + n);
                    } else {
                        self.state = State::AfterDelimiter(None);
                        if self.pending {
                            self.dispatch(handler);
                        }
                    }
                }
                State::AfterDelimiter(first) => {
                    let byte = input[0];
                    input = &input[1..];
                    self.state = match (first, byte) {
                        (None, b'\r' | b'-') => State::AfterDelimiter(Some(byte)),
                        (Some(b'\r'), b'\n') => {
                            self.headers = 0;
                            self.length = None;
                            State::Headers
                        }
                        (Some(b'-'), b'-') => State::Closed,
                        _ => bail!("a delimiter followed by neither CRLF nor `--`"),
                    };
                }
                State::Headers => match memchr::memchr(b'\n', input) {
                    None => {
                        self.line_bytes(input)?;
                        input = &[];
                    }
                    Some(end) => {
                        self.line_bytes(&input[..end])?;
                        input = &input[end + 1..];
                        self.end_line(handler)?;
                    }
                },
                State::Body(left) => {
                    let n = left.min(input.len());
                    self.body_bytes(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        self.body_done()
                    } else {
                        State::Body(left - n)
                    };
                }
                State::Closed => return Ok(true),
            }
        }
        Ok(self.state == State::Closed)
    }

    fn line_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if self.line.len() + bytes.len() > MAX_HEADER_LINE {
            bail!("a part's header line is longer than {MAX_HEADER_LINE} bytes");
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// A header line is complete: a blank one starts the body.
    fn end_line(&mut self, handler: &mut impl Handler) -> anyhow::Result<()> {
        let line = std::mem::take(&mut self.line);
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.is_empty() {
            let Some(len) = self.length else {
                bail!("a part without Content-Length");
            };
            self.keep = handler.keep_body();
            self.len = len;
            self.state = if len == 0 {
                self.body_done()
            } else {
                State::Body(len)
            };
        } else {
            self.headers += 1;
            if self.headers > MAX_HEADERS {
                bail!("a part with more than {MAX_HEADERS} header lines");
            }
            let text = std::str::from_utf8(text).context("a part's header is not UTF-8")?;
            let (name, value) = text
                .split_once(':')
                .with_context(|| format!("a part's header line {text:?} has no colon"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let len = value
                    .parse()
                    .with_context(|| format!("a part's Content-Length {value:?}"))?;
                self.length = Some(len);
            } else if name.eq_ignore_ascii_case("content-type")
                && !value.to_ascii_lowercase().starts_with("image/jpeg")
            {
                bail!("a part's Content-Type is {value:?}, not image/jpeg");
            }
        }
        self.line = line;
        self.line.clear();
        Ok(())
    }

    fn body_bytes(&mut self, bytes: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        if self.keep {
            self.body.extend_from_slice(bytes);
        }
    }

    /// The body is complete: the delimiter must follow.
    fn body_done(&mut self) -> State {
        self.pending = true;
        State::Delimiter(0)
    }

    fn dispatch(&mut self, handler: &mut impl Handler) {
        handler.part(Part {
            head: &self.head,
            body: self.keep.then_some(&self.body[..]),
            len: self.len,
        });
        self.pending = false;
        self.keep = false;
        self.head.clear();
        self.body = Vec::new();
        self.len = 0;
    }
}

/// The `boundary` parameter of a `multipart/x-mixed-replace` Content-Type, unquoted.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (media_type, params) = content_type.split_once(';')?;
    if !media_type
        .trim()
        .eq_ignore_ascii_case("multipart/x-mixed-replace")
    {
        return None;
    }
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "framecast-frame";

    /// Kept parts as (head, body, len).
    #[derive(Default)]
    struct Collect {
        keep_every: usize,
        asked: usize,
        parts: Vec<(Vec<u8>, Option<Vec<u8>>, usize)>,
    }

    impl Handler for Collect {
        fn keep_body(&mut self) -> bool {
            self.asked += 1;
            self.keep_every != 0 && self.asked.is_multiple_of(self.keep_every)
        }
        fn part(&mut self, part: Part<'_>) {
            self.parts
                .push((part.head.to_vec(), part.body.map(<[u8]>::to_vec), part.len));
        }
    }

    /// A body as framecast writes it (`src/mjpeg/part.rs`): the opening delimiter, then each
    /// part with the delimiter after it.
    fn framecast_body(jpegs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = format!("--{BOUNDARY}\r\n").into_bytes();
        for jpeg in jpegs {
            body.extend_from_slice(
                format!(
                    "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                )
                .as_bytes(),
            );
            body.extend_from_slice(jpeg);
            body.extend_from_slice(format!("\r\n--{BOUNDARY}\r\n").as_bytes());
        }
        body
    }

    /// Bodies that would fool a parser looking for the boundary or for line ends.
    fn jpegs() -> Vec<Vec<u8>> {
        let mut tricky = b"\xFF\xD8".to_vec();
        tricky.extend_from_slice(format!("\r\n--{BOUNDARY}\r\n\r\n--{BOUNDARY}--").as_bytes());
        tricky.extend((0..300).map(|i| (i * 7) as u8));
        vec![
            tricky,
            vec![0xFF, 0xD8, 0xFF, 0xD9],
            (0..=255).collect(),
            b"\n\r\n\r".repeat(40),
            Vec::new(),
        ]
    }

    fn parse(chunks: &[&[u8]], keep_every: usize) -> anyhow::Result<(Collect, bool)> {
        let mut parser = Parser::new(BOUNDARY);
        let mut out = Collect {
            keep_every,
            ..Collect::default()
        };
        let mut closed = false;
        for chunk in chunks {
            closed = parser.feed(chunk, &mut out)?;
        }
        Ok((out, closed))
    }

    #[test]
    fn parts_are_the_same_however_the_body_is_split() {
        let jpegs = jpegs();
        let input = framecast_body(&jpegs);
        let (whole, closed) = parse(&[&input], 1).unwrap();
        assert!(!closed);
        assert_eq!(whole.parts.len(), jpegs.len());
        for (part, jpeg) in whole.parts.iter().zip(&jpegs) {
            assert_eq!(part.1.as_deref(), Some(&jpeg[..]));
            assert_eq!(part.0, jpeg[..jpeg.len().min(HEAD_BYTES)]);
            assert_eq!(part.2, jpeg.len());
        }
        for cut in 0..=input.len() {
            let (two, _) = parse(&[&input[..cut], &input[cut..]], 1).unwrap();
            assert_eq!(two.parts, whole.parts, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse(&bytes, 1).unwrap().0.parts, whole.parts);
    }

    #[test]
    fn unkept_parts_keep_only_the_head() {
        let jpegs = jpegs();
        let input = framecast_body(&jpegs);
        for piece in [1, 3, 64, 65, 1000] {
            let chunks: Vec<&[u8]> = input.chunks(piece).collect();
            let (out, _) = parse(&chunks, 0).unwrap();
            assert_eq!(out.parts.len(), jpegs.len());
            assert!(out.parts.iter().all(|part| part.1.is_none()));
            assert_eq!(
                out.parts[2].0,
                (0..64).collect::<Vec<u8>>(),
                "piece {piece}"
            );
            assert_eq!(out.parts[2].2, 256);
        }
    }

    #[test]
    fn a_part_is_handed_on_only_with_the_delimiter_after_it() {
        let input = framecast_body(&[b"\xFF\xD8abc".to_vec()]);
        let delimiter = format!("\r\n--{BOUNDARY}\r\n").len();
        let body_end = input.len() - delimiter;
        let (out, _) = parse(&[&input[..body_end + 2 + BOUNDARY.len() + 1]], 0).unwrap();
        assert!(out.parts.is_empty());
        let (out, _) = parse(&[&input[..body_end + 2 + BOUNDARY.len() + 2]], 0).unwrap();
        assert_eq!(out.parts.len(), 1);
    }

    #[test]
    fn a_closing_delimiter_ends_the_body() {
        let mut input = framecast_body(&[b"\xFF\xD8abc".to_vec()]);
        input.truncate(input.len() - 2);
        input.extend_from_slice(b"--\r\nepilogue");
        let (out, closed) = parse(&[&input], 0).unwrap();
        assert!(closed);
        assert_eq!(out.parts.len(), 1);
    }

    #[test]
    fn broken_framing_is_an_error() {
        let good = framecast_body(&[b"jpeg!".to_vec()]);
        let text = String::from_utf8(good.clone()).unwrap();
        let broken = [
            text.replace("Content-Length: 5\r\n", ""),
            text.replace("Content-Length: 5", "Content-Length: 4"),
            text.replace("Content-Length: 5", "Content-Length: 6"),
            text.replace("Content-Length: 5", "Content-Length: five"),
            text.replace("image/jpeg", "text/plain"),
            text.replacen(BOUNDARY, "other", 1),
            text.replace("Content-Type", &"X".repeat(MAX_HEADER_LINE + 1)),
        ];
        for input in broken {
            assert!(parse(&[input.as_bytes()], 0).is_err(), "{input:?}");
        }
        assert!(parse(&[&good], 0).is_ok());
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        let framecast = "multipart/x-mixed-replace; boundary=framecast-frame";
        assert_eq!(boundary(framecast), Some("framecast-frame"));
        assert_eq!(
            boundary("Multipart/X-Mixed-Replace;charset=x; Boundary=\"Ab c\""),
            Some("Ab c")
        );
        assert_eq!(boundary("multipart/x-mixed-replace"), None);
        assert_eq!(boundary("multipart/x-mixed-replace; boundary="), None);
        assert_eq!(boundary("text/event-stream; boundary=x"), None);
    }
}
