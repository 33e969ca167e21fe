//! `multipart/x-mixed-replace` bodies as cameras and ffmpeg really send them: an incremental,
//! tolerant state machine that finds each JPEG part, resyncs after damage, and never buffers
//! more than one frame.
//!
//! Tolerated: any case in header names, LF or CRLF lines, missing or extra blank lines,
//! repeated delimiters, `--b--` mid-stream, a boundary written with extra dashes, no first
//! delimiter (headers first, or raw JPEG), a header glued to the delimiter, missing or wrong
//! Content-Length, padding after EOI, and parts that are not JPEGs (skipped without a report).
//! The part's JPEG is cut out from its `FF D8` to its `FF D9`; everything between parts is
//! thrown away as it is read. Which cameras and muxers do what, and the test that covers each
//! habit, is listed in `docs/camera-quirks.md`.

use bytes::{Buf, BytesMut};

use super::{ContentType, Piece, oversize};
use crate::jpeg::{EndScanner, IMAGE_START, Scan, partial_image_start_len};

/// Most bytes of header lines one part may have (multipart-stream-rs uses the same 8 KiB).
/// Above it the part is rejected and the parser resyncs, so headers can never eat memory.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

/// Longest line still examined as a possible delimiter. RFC 2046 caps a boundary at 70
/// characters; the slack covers extra dashes, a closing `--` and transport padding.
pub const MAX_DELIMITER_LINE: usize = 256;

/// The header prefix that starts a part without a delimiter (ESP32 sketches, AXIS cameras):
/// `Content-Type`, `Content-Length`. Matched case-insensitively at the start of a line while
/// resyncing.
const HEADER_PREFIX: &[u8] = b"content-";

/// What a part's `Content-Type` says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `image/jpeg` or `image/jpg`: anything but a JPEG in it is reported.
    Jpeg,
    /// No Content-Type: a JPEG if it starts like one, otherwise skipped.
    Unlabelled,
    /// Some other type (`video/x-h264`, `text/plain`, ...): skipped without a report.
    Other,
}

/// What the header lines of the current part said.
#[derive(Debug, Clone, Copy)]
struct PartHeaders {
    kind: Kind,
    /// The announced length, saturated: never used to allocate, only compared and counted.
    content_length: Option<u64>,
    /// Non-blank lines seen, so blank lines before the first one can be skipped.
    lines: usize,
}

impl PartHeaders {
    const fn new() -> Self {
        Self {
            kind: Kind::Unlabelled,
            content_length: None,
            lines: 0,
        }
    }
}

/// Where the parser is. In every state the buffer starts at the first unconsumed byte.
#[derive(Debug)]
enum State {
    /// Between parts (or lost): dropping bytes until a delimiter line, or, when `resync_jpeg`
    /// is set, a `Content-` header line or `FF D8 FF`.
    Seek {
        /// The buffer starts at the beginning of a line.
        line_start: bool,
        /// False while skipping a non-JPEG or oversize part: only a delimiter ends that.
        resync_jpeg: bool,
    },
    /// Reading a part's header lines.
    Headers {
        part: PartHeaders,
        /// Header bytes this part has used, against [`MAX_PART_HEADER_BYTES`].
        used: usize,
        /// Bytes of the current line already searched for its LF.
        searched: usize,
    },
    /// A possible JPEG part with a believable Content-Length: waiting for `len` bytes and one
    /// more to check that the part really ends there.
    Sized { len: usize, kind: Kind },
    /// A possible JPEG part whose end must be found from its structure: skip blank lines, then
    /// expect `FF D8 FF`.
    BodyStart { kind: Kind },
    /// Inside a JPEG that starts at offset 0 of the buffer, walking it to its end.
    Image { scanner: EndScanner },
    /// Dropping bytes of known length (a non-JPEG part, or the header segments of an oversize
    /// image), then resyncing at a line start or not.
    SkipBytes { remaining: u64, line_start: bool },
}

/// The line-oriented state a part ends in: the next delimiter may follow without a CRLF.
const AFTER_PART: State = State::Seek {
    line_start: true,
    resync_jpeg: true,
};

/// Splits a multipart body into one piece per JPEG part.
#[derive(Debug)]
pub(crate) struct MultipartSplitter {
    buf: BytesMut,
    max_frame_bytes: usize,
    /// The boundary without its leading dashes; `None` until learned from the first `--` line.
    boundary: Option<Vec<u8>>,
    state: State,
    eof: bool,
}

/// What one step of the state machine produced.
enum Step {
    /// State changed or bytes were consumed; keep going.
    Continue,
    /// Nothing more can be done with the buffered bytes.
    NeedMore,
    /// A piece for the caller.
    Piece(Piece),
}

impl MultipartSplitter {
    pub(crate) fn new(boundary: Option<&str>, max_frame_bytes: usize) -> Self {
        let boundary = boundary
            .map(|b| b.trim_start_matches('-').trim().as_bytes().to_vec())
            .filter(|b| !b.is_empty());
        Self {
            buf: BytesMut::new(),
            max_frame_bytes,
            boundary,
            state: State::Seek {
                line_start: true,
                resync_jpeg: true,
            },
            eof: false,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn finish(&mut self) -> Option<Piece> {
        self.eof = true;
        self.next_piece()
    }

    pub(crate) fn next_piece(&mut self) -> Option<Piece> {
        loop {
            match self.step() {
                Step::Continue => {}
                Step::Piece(piece) => return Some(piece),
                Step::NeedMore => {
                    if self.eof {
                        self.buf.clear();
                        self.state = AFTER_PART;
                    }
                    return None;
                }
            }
        }
    }

    fn step(&mut self) -> Step {
        match self.state {
            State::Seek {
                line_start: true,
                resync_jpeg,
            } => self.seek_line_start(resync_jpeg),
            State::Seek {
                line_start: false,
                resync_jpeg,
            } => self.seek_line(resync_jpeg),
            State::Headers {
                part,
                used,
                searched,
            } => self.headers(part, used, searched),
            State::Sized { len, kind } => self.sized(len, kind),
            State::BodyStart { kind } => self.body_start(kind),
            State::Image { .. } => self.image(),
            State::SkipBytes {
                remaining,
                line_start,
            } => {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                self.buf.advance(n);
                let remaining = remaining - n as u64;
                if remaining == 0 {
                    self.state = State::Seek {
                        line_start,
                        resync_jpeg: true,
                    };
                    return Step::Continue;
                }
                self.state = State::SkipBytes {
                    remaining,
                    line_start,
                };
                Step::NeedMore
            }
        }
    }

    /// At the start of a line while resyncing: is this a delimiter, a header, or a JPEG?
    fn seek_line_start(&mut self, resync_jpeg: bool) -> Step {
        let not_here = State::Seek {
            line_start: false,
            resync_jpeg,
        };
        let Some(&first) = self.buf.first() else {
            return Step::NeedMore;
        };
        match first {
            b'\r' | b'\n' => {
                self.buf.advance(1);
                return Step::Continue;
            }
            b'-' => {
                let window = &self.buf[..self.buf.len().min(MAX_DELIMITER_LINE)];
                let Some(lf) = window.iter().position(|&b| b == b'\n') else {
                    if window.len() == MAX_DELIMITER_LINE {
                        self.state = not_here; // too long to be a delimiter
                        return Step::Continue;
                    }
                    return Step::NeedMore;
                };
                match self.delimiter(lf) {
                    Some(rest) => {
                        self.buf.advance(rest);
                        self.state = State::Headers {
                            part: PartHeaders::new(),
                            used: 0,
                            searched: 0,
                        };
                    }
                    None => self.state = not_here,
                }
                return Step::Continue;
            }
            _ if !resync_jpeg => {}
            0xFF => match prefix_state(&self.buf, &IMAGE_START, false) {
                Prefix::Yes => {
                    self.state = State::Image {
                        scanner: EndScanner::new(),
                    };
                    return Step::Continue;
                }
                Prefix::Maybe if !self.eof => return Step::NeedMore,
                _ => {}
            },
            _ => match prefix_state(&self.buf, HEADER_PREFIX, true) {
                Prefix::Yes => {
                    self.state = State::Headers {
                        part: PartHeaders::new(),
                        used: 0,
                        searched: 0,
                    };
                    return Step::Continue;
                }
                Prefix::Maybe if !self.eof => return Step::NeedMore,
                _ => {}
            },
        }
        self.state = not_here;
        Step::Continue
    }

    /// Inside a line (or binary junk) while resyncing: drop bytes up to the next LF, or up to
    /// `FF D8 FF` when a JPEG may start anywhere.
    fn seek_line(&mut self, resync_jpeg: bool) -> Step {
        let found = if resync_jpeg {
            self.buf.iter().enumerate().position(|(i, &b)| {
                b == b'\n' || (b == 0xFF && self.buf[i..].starts_with(&IMAGE_START))
            })
        } else {
            self.buf.iter().position(|&b| b == b'\n')
        };
        match found {
            Some(at) if self.buf[at] == b'\n' => {
                self.buf.advance(at + 1);
                self.state = State::Seek {
                    line_start: true,
                    resync_jpeg,
                };
            }
            Some(at) => {
                self.buf.advance(at);
                self.state = State::Image {
                    scanner: EndScanner::new(),
                };
            }
            None => {
                let keep = if resync_jpeg {
                    partial_image_start_len(&self.buf)
                } else {
                    0
                };
                self.buf.advance(self.buf.len() - keep);
                return Step::NeedMore;
            }
        }
        Step::Continue
    }

    /// Checks whether the first `line_len` bytes (a line, without its LF) are a delimiter.
    /// Returns how many bytes to consume: the whole line, or only up to a header glued to the
    /// delimiter (`--boundaryContent-Type: image/jpeg`). Learns the boundary if unknown.
    fn delimiter(&mut self, line_len: usize) -> Option<usize> {
        let line = trim_cr(&self.buf[..line_len]);
        let after_dashes = trim_start_dashes(line);
        if line.len() - after_dashes.len() < 2 {
            return None;
        }
        match &self.boundary {
            Some(boundary) => {
                let rest = after_dashes.strip_prefix(boundary.as_slice())?;
                let rest = rest.strip_prefix(b"--").unwrap_or(rest); // `--b--` mid-stream
                if rest.trim_ascii().is_empty() {
                    return Some(line_len + 1);
                }
                if rest.contains(&b':') {
                    let glued = line.len() - rest.len();
                    return Some(glued);
                }
                None
            }
            None => {
                let token = boundary_token(line)?;
                self.boundary = Some(token.to_vec());
                Some(line_len + 1)
            }
        }
    }

    /// Reads header lines until the blank line that ends them.
    fn headers(&mut self, mut part: PartHeaders, used: usize, searched: usize) -> Step {
        // The body may start without a blank line before it (missing CRLF).
        match prefix_state(&self.buf, &IMAGE_START, false) {
            Prefix::Yes => return self.start_body(part),
            Prefix::Maybe if !self.eof && !self.buf.is_empty() => return Step::NeedMore,
            _ => {}
        }
        let budget = MAX_PART_HEADER_BYTES - used;
        let window = &self.buf[..self.buf.len().min(budget)];
        let Some(lf) = window[searched.min(window.len())..]
            .iter()
            .position(|&b| b == b'\n')
        else {
            if window.len() == budget {
                self.state = State::Seek {
                    line_start: false,
                    resync_jpeg: true,
                };
                return Step::Piece(Piece::Rejected(format!(
                    "malformed: part headers exceed {MAX_PART_HEADER_BYTES} bytes"
                )));
            }
            if self.eof && part.kind == Kind::Jpeg {
                self.state = AFTER_PART;
                return Step::Piece(Piece::Rejected(
                    "truncated: stream ended inside part headers".into(),
                ));
            }
            self.state = State::Headers {
                part,
                used,
                searched: window.len(),
            };
            return Step::NeedMore;
        };
        let lf = searched.min(window.len()) + lf;
        let used = used + lf + 1;
        if self.buf[..lf].trim_ascii().is_empty() {
            self.buf.advance(lf + 1);
            if part.lines == 0 {
                self.state = State::Headers {
                    part,
                    used,
                    searched: 0,
                };
                return Step::Continue; // extra blank lines before the headers
            }
            return self.start_body(part);
        }
        if self.buf.starts_with(b"--")
            && let Some(consume) = self.delimiter(lf)
        {
            // A repeated delimiter (Foscam): start the part afresh.
            self.buf.advance(consume);
            self.state = State::Headers {
                part: PartHeaders::new(),
                used: 0,
                searched: 0,
            };
            return Step::Continue;
        }
        let line = trim_cr(&self.buf[..lf]);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-type") {
                part.kind = kind_of(value);
            } else if name.eq_ignore_ascii_case(b"content-length") {
                part.content_length = parse_length(value);
            }
        }
        part.lines += 1;
        self.buf.advance(lf + 1);
        self.state = State::Headers {
            part,
            used,
            searched: 0,
        };
        Step::Continue
    }

    /// The headers are done: choose how to find the end of the body.
    fn start_body(&mut self, part: PartHeaders) -> Step {
        let max = self.max_frame_bytes;
        let length = part.content_length.filter(|&n| n > 0);
        match (part.kind, length) {
            (Kind::Other, Some(n)) if n <= max as u64 => {
                self.state = State::SkipBytes {
                    remaining: n,
                    line_start: true,
                };
            }
            (Kind::Other, _) => {
                self.state = State::Seek {
                    line_start: true,
                    resync_jpeg: false,
                }
            }
            (_, Some(n)) if n > max as u64 => {
                // Compared before anything is buffered; the part is skipped by delimiter.
                self.state = State::Seek {
                    line_start: true,
                    resync_jpeg: false,
                };
                return Step::Piece(Piece::Rejected(format!(
                    "too large: part announces {n} bytes, limit is {max}"
                )));
            }
            (kind, Some(n)) => {
                self.state = State::Sized {
                    len: n as usize,
                    kind,
                }
            }
            (kind, None) => self.state = State::BodyStart { kind },
        }
        Step::Continue
    }

    /// A part with a Content-Length: trust it only if the stream looks like a part boundary
    /// right after it, otherwise find the end from the JPEG structure (wrong lengths exist).
    fn sized(&mut self, len: usize, kind: Kind) -> Step {
        let fits = match self.buf.get(len) {
            Some(b'\r' | b'\n' | b'-') => true,
            Some(_) => false,
            None if self.eof => self.buf.len() == len,
            None => return Step::NeedMore,
        };
        if !fits {
            self.state = State::BodyStart { kind };
            return Step::Continue;
        }
        self.state = AFTER_PART;
        if !self.buf.starts_with(&IMAGE_START) {
            self.buf.advance(len);
            return match kind {
                Kind::Jpeg => Step::Piece(not_a_jpeg()),
                _ => Step::Continue,
            };
        }
        match EndScanner::new().scan(&self.buf[..len]) {
            Scan::End(end) => {
                let frame = self.buf.split_to(end).freeze();
                self.buf.advance(len - end); // padding after EOI
                Step::Piece(Piece::Frame(frame))
            }
            Scan::NewImage(at) => {
                // A cut-off image, then another one: walk the second without the length.
                self.buf.advance(at);
                self.state = State::Image {
                    scanner: EndScanner::new(),
                };
                Step::Piece(truncated_by_next())
            }
            Scan::NeedMore => {
                self.buf.advance(len);
                Step::Piece(Piece::Rejected(
                    "truncated: part ended before end-of-image marker".into(),
                ))
            }
            Scan::Malformed(reason, _) => {
                self.buf.advance(len);
                Step::Piece(Piece::Rejected(format!("malformed: {reason}")))
            }
        }
    }

    /// A part whose end is unknown: skip blank lines, then it must start with `FF D8 FF`.
    fn body_start(&mut self, kind: Kind) -> Step {
        let blank = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        self.buf.advance(blank);
        match prefix_state(&self.buf, &IMAGE_START, false) {
            Prefix::Yes => {
                self.state = State::Image {
                    scanner: EndScanner::new(),
                };
                Step::Continue
            }
            Prefix::Maybe if !self.eof => Step::NeedMore,
            _ if self.buf.is_empty() && !self.eof => Step::NeedMore,
            _ => {
                self.state = AFTER_PART;
                match kind {
                    Kind::Jpeg if self.eof && self.buf.is_empty() => Step::Piece(Piece::Rejected(
                        "truncated: stream ended before the part's image".into(),
                    )),
                    Kind::Jpeg => Step::Piece(not_a_jpeg()),
                    _ => Step::Continue,
                }
            }
        }
    }

    /// Walks the JPEG at the start of the buffer to its end-of-image marker.
    fn image(&mut self) -> Step {
        let State::Image { scanner } = &mut self.state else {
            unreachable!("image() is only called in State::Image");
        };
        let max = self.max_frame_bytes;
        // Only the first `max` bytes are walked: the verdict is the same however the body was
        // chunked, and an image that has not ended within them is too large.
        match scanner.scan(&self.buf[..self.buf.len().min(max)]) {
            Scan::End(end) => {
                let frame = self.buf.split_to(end).freeze();
                self.state = AFTER_PART;
                Step::Piece(Piece::Frame(frame))
            }
            Scan::NewImage(at) => {
                self.buf.advance(at);
                *scanner = EndScanner::new();
                Step::Piece(truncated_by_next())
            }
            Scan::Malformed(reason, at) => {
                self.buf.advance(at);
                self.state = State::Seek {
                    line_start: false,
                    resync_jpeg: true,
                };
                Step::Piece(Piece::Rejected(format!("malformed: {reason}")))
            }
            Scan::NeedMore if scanner.known_len().max(self.buf.len()) > max => {
                // Resync past the header segments so that an EXIF thumbnail is not taken for
                // the next frame, even where they run past what has arrived: the resync point
                // must not depend on how much that is.
                let resume = scanner.resume_point();
                let here = resume.min(self.buf.len());
                self.buf.advance(here);
                self.state = State::SkipBytes {
                    remaining: (resume - here) as u64,
                    line_start: false,
                };
                Step::Piece(oversize(max))
            }
            Scan::NeedMore if self.eof => {
                self.buf.clear();
                self.state = AFTER_PART;
                Step::Piece(Piece::Rejected(
                    "truncated: stream ended before end-of-image marker".into(),
                ))
            }
            Scan::NeedMore => Step::NeedMore,
        }
    }
}

fn not_a_jpeg() -> Piece {
    Piece::Rejected("not a JPEG: image part does not start with FF D8 FF".into())
}

fn truncated_by_next() -> Piece {
    Piece::Rejected("truncated: next image began before end-of-image marker".into())
}

/// Whether `bytes` starts with `prefix`, may still (too few bytes), or cannot.
#[derive(Debug, PartialEq, Eq)]
enum Prefix {
    Yes,
    Maybe,
    No,
}

fn prefix_state(bytes: &[u8], prefix: &[u8], ignore_case: bool) -> Prefix {
    let n = bytes.len().min(prefix.len());
    let same = if ignore_case {
        bytes[..n].eq_ignore_ascii_case(&prefix[..n])
    } else {
        bytes[..n] == prefix[..n]
    };
    match (same, n == prefix.len()) {
        (false, _) => Prefix::No,
        (true, true) => Prefix::Yes,
        (true, false) => Prefix::Maybe,
    }
}

/// The boundary a `--` line announces (leading dashes, a closing `--` and padding removed), if
/// it can be one: only printable ASCII, so binary junk after an LF is never taken for it.
pub(crate) fn boundary_token(line: &[u8]) -> Option<&[u8]> {
    let line = trim_cr(line);
    let token = trim_start_dashes(line);
    if line.len() - token.len() < 2 {
        return None;
    }
    let token = token.trim_ascii_end();
    let token = token.strip_suffix(b"--").unwrap_or(token);
    let printable = token.iter().all(|&b| (0x20..0x7F).contains(&b));
    (printable && !token.is_empty()).then_some(token)
}

pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_start_dashes(bytes: &[u8]) -> &[u8] {
    let dashes = bytes.iter().take_while(|&&b| b == b'-').count();
    &bytes[dashes..]
}

/// Classifies a part's Content-Type value by its media type (parameters ignored).
fn kind_of(value: &[u8]) -> Kind {
    let value = String::from_utf8_lossy(value);
    let content_type = ContentType::parse(&value);
    if content_type.essence().is_empty() {
        Kind::Unlabelled
    } else if content_type.is("image/jpeg") || content_type.is("image/jpg") {
        Kind::Jpeg
    } else {
        Kind::Other
    }
}

/// Parses a Content-Length value; absurd values saturate so that the cap check rejects them.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests;
