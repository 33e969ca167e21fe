//! The JPEG marker grammar, walked once for everyone: which markers carry a length, where fill
//! and stuffed bytes may sit, and how entropy-coded data ends. [`Markers`] steps through an
//! image that may still be arriving, so the validator and the splitters agree on every byte.

use std::ops::Range;

/// Start of image: `FF D8`.
pub(crate) const SOI: u8 = 0xD8;
/// End of image: `FF D9`.
pub(crate) const EOI: u8 = 0xD9;
/// Start of scan: entropy-coded data follows its header.
pub(crate) const SOS: u8 = 0xDA;
/// Temporary private use; stands alone like a restart marker.
const TEM: u8 = 0x01;
/// Baseline DCT frame header.
pub(crate) const SOF_BASELINE: u8 = 0xC0;
/// Extended sequential DCT frame header (Huffman-coded).
pub(crate) const SOF_EXTENDED: u8 = 0xC1;
/// Progressive DCT frame header (Huffman-coded).
pub(crate) const SOF_PROGRESSIVE: u8 = 0xC2;

/// How every JPEG begins: `FF D8` and the `FF` of the next marker. Searching for all three
/// bytes, not just `FF D8`, keeps stray `FF D8` pairs in junk from passing for an image.
pub(crate) const IMAGE_START: [u8; 3] = [0xFF, SOI, 0xFF];

/// Restart markers `D0..=D7`: standalone, and allowed inside entropy-coded data.
fn is_rst(code: u8) -> bool {
    (0xD0..=0xD7).contains(&code)
}

/// Frame headers browsers cannot show: lossless (C3), hierarchical (C5-C7) and every
/// arithmetic-coded variant (C9-CB, CD-CF). C4, C8 and CC are DHT, JPG and DAC.
pub(crate) fn is_unsupported_sof(code: u8) -> bool {
    matches!(code, 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
}

/// The next thing [`Markers::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A segment with a length field. `body` is its content after the length, and may reach
    /// past the bytes given so far (the walk goes on beyond it without reading it). After an
    /// SOS segment the walk is in entropy-coded data.
    Segment { code: u8, body: Range<usize> },
    /// `FF D8`, whose `FF` is at this offset: another image starts inside this one.
    StartOfImage(usize),
    /// `FF D9`: the image ends just before this offset.
    EndOfImage(usize),
    /// The bytes given so far stop inside the image; the text says where, for a report
    /// that the image is truncated.
    NeedMore(&'static str),
    /// The structure is broken at this offset.
    Malformed(&'static str, usize),
}

/// A resumable walk over one image's markers, from just after its `FF D8` at offset 0.
///
/// Call [`next`](Self::next) with the image's bytes, the same bytes or more each time. Between
/// segments the walk reads marker and length and jumps over the body; in entropy-coded data it
/// skips `FF 00` (a stuffed byte), `FF D0..D7` (restart) and `FF FF` (fill) until a real
/// marker. `FF` fill bytes may precede any marker. Each byte is looked at once however the
/// image arrives, so a walk costs time linear in the image size.
#[derive(Debug, Clone)]
pub(crate) struct Markers {
    /// Next offset to look at. Between segments it may lie beyond the bytes seen so far (a
    /// length announced more data); in entropy-coded data it points at unseen bytes or at an
    /// `FF` whose follower has not arrived.
    pos: usize,
    /// True inside entropy-coded data.
    in_scan: bool,
}

impl Markers {
    /// Starts after the image's `FF D8`.
    pub(crate) fn new() -> Self {
        Self {
            pos: 2,
            in_scan: false,
        }
    }

    /// How many bytes are known to belong to the image (may exceed what has arrived).
    pub(crate) fn known_len(&self) -> usize {
        self.pos
    }

    /// The caller dropped the first `n` bytes of the image (already walked past).
    pub(crate) fn rebase(&mut self, n: usize) {
        self.pos -= n;
    }

    /// Walks on over `image` (the image's bytes from its `FF D8`) to the next token.
    pub(crate) fn next(&mut self, image: &[u8]) -> Token {
        loop {
            if self.in_scan {
                let Some(ff) = image
                    .get(self.pos..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
                else {
                    self.pos = self.pos.max(image.len());
                    return Token::NeedMore("no end-of-image marker");
                };
                let at = self.pos + ff;
                match image.get(at + 1) {
                    None => {
                        self.pos = at;
                        return Token::NeedMore("no end-of-image marker");
                    }
                    Some(&c) if c == 0x00 || is_rst(c) => self.pos = at + 2,
                    Some(0xFF) => self.pos = at + 1,
                    Some(_) => {
                        // A real marker (progressive: DHT or the next SOS between scans).
                        self.pos = at;
                        self.in_scan = false;
                    }
                }
                continue;
            }
            let at = self.pos;
            match image.get(at) {
                None => return Token::NeedMore("no end-of-image marker"),
                Some(0xFF) => {}
                Some(_) => return Token::Malformed("stray bytes between segments", at),
            }
            let Some(&code) = image.get(at + 1) else {
                return Token::NeedMore("no end-of-image marker");
            };
            match code {
                0xFF => self.pos = at + 1,
                SOI => return Token::StartOfImage(at),
                EOI => return Token::EndOfImage(at + 2),
                TEM => self.pos = at + 2,
                c if is_rst(c) => self.pos = at + 2,
                0x00 => return Token::Malformed("stuffed byte outside scan data", at),
                _ => {
                    let (Some(&hi), Some(&lo)) = (image.get(at + 2), image.get(at + 3)) else {
                        return Token::NeedMore("segment runs past the end");
                    };
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    if len < 2 {
                        return Token::Malformed("segment length below 2", at);
                    }
                    // Both terms are below isize::MAX + 65535: no overflow.
                    self.pos = at + 2 + len;
                    self.in_scan = code == SOS;
                    return Token::Segment {
                        code,
                        body: at + 4..self.pos,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every token of `image`, walked in one go, up to the first end, new image or stop.
    fn tokens(image: &[u8]) -> Vec<Token> {
        let mut markers = Markers::new();
        let mut out = Vec::new();
        loop {
            let token = markers.next(image);
            let last = !matches!(token, Token::Segment { .. });
            out.push(token);
            if last {
                return out;
            }
        }
    }

    #[test]
    fn segments_are_jumped_by_length_and_scan_data_skips_stuffing_restarts_and_fill() {
        let image = [
            &[0xFF, 0xD8][..],
            &[0xFF, 0xFF, 0xE1, 0x00, 0x04, 0xFF, 0xD9], // fill, then APP1 hiding an EOI
            &[0xFF, 0x01, 0xFF, 0xD3],                   // standalone TEM and RST
            &[0xFF, 0xDA, 0x00, 0x02],                   // SOS
            &[0x12, 0xFF, 0x00, 0xFF, 0xD0, 0x34],       // stuffed byte, restart
            &[0xFF, 0xFF, 0xC4, 0x00, 0x02],             // fill, a table between scans
            &[0xFF, 0xD9, 0xAA],
        ]
        .concat();
        assert_eq!(
            tokens(&image),
            [
                Token::Segment {
                    code: 0xE1,
                    body: 7..9
                },
                Token::Segment {
                    code: SOS,
                    body: 17..17
                },
                Token::Segment {
                    code: 0xC4,
                    body: 28..28
                },
                Token::EndOfImage(30),
            ]
        );
    }

    #[test]
    fn a_walk_resumed_byte_by_byte_finds_what_one_pass_finds() {
        let image = crate::jpeg::samples::progressive_jpeg(16, 16, 1);
        let whole = tokens(&image);
        let mut markers = Markers::new();
        let mut got = Vec::new();
        let mut len = 0;
        while got.len() < whole.len() {
            match markers.next(&image[..len]) {
                Token::NeedMore(_) => len += 1,
                token => got.push(token),
            }
        }
        assert_eq!(got, whole);
        assert_eq!(whole.last(), Some(&Token::EndOfImage(image.len())));
    }

    #[test]
    fn broken_structure_is_reported_where_it_is() {
        let start = [0xFF, 0xD8];
        let cases: [(&[u8], Token); 6] = [
            (&[0x00], Token::Malformed("stray bytes between segments", 2)),
            (
                &[0xFF, 0x00],
                Token::Malformed("stuffed byte outside scan data", 2),
            ),
            (
                &[0xFF, 0xE0, 0x00, 0x01],
                Token::Malformed("segment length below 2", 2),
            ),
            (&[0xFF, 0xFF, 0xD8], Token::StartOfImage(3)),
            (
                &[0xFF, 0xE0, 0x00],
                Token::NeedMore("segment runs past the end"),
            ),
            (&[0xFF], Token::NeedMore("no end-of-image marker")),
        ];
        for (rest, want) in cases {
            let image = [&start[..], rest].concat();
            assert_eq!(Markers::new().next(&image), want, "{rest:02X?}");
        }
    }
}
