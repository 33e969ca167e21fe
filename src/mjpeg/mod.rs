//! Splitting byte streams into JPEG frames: a `multipart/x-mixed-replace` body or concatenated
//! JPEGs. Pure code with no I/O, so every source and `POST /frames` share one tolerant parser.
//!
//! # Layout
//! - [`multipart`]: the multipart state machine (delimiters, part headers, resync).
//! - [`concat`]: back-to-back JPEGs.
//! - [`ContentType`]: the one reading of a Content-Type value, for uploads, cameras and parts.
//! - [`Sniffer`]: the one rule for telling the framing from the first bytes when nothing says.
//!
//! The splitters know no JPEG structure themselves: both find where an image starts and ends with
//! [`crate::jpeg`]'s end-of-image scan, the same marker walk the validator uses. A splitter only
//! frames: each [`Piece::Frame`] is one candidate image from its `FF D8` to its `FF D9` (padding
//! after it cut off); the caller validates it with [`crate::jpeg::inspect`].
//!
//! Both splitters are tolerant on purpose: cameras and muxers bend the framing in many ways,
//! listed with who does what and how each is handled in `docs/camera-quirks.md`.
//!
//! # Memory
//! The buffer holds at most one frame (`max_frame_bytes`), the part headers
//! ([`multipart::MAX_PART_HEADER_BYTES`]) and the last pushed chunk, provided the caller drains
//! [`Splitter::next_piece`] after every [`Splitter::push`]. Bytes between frames are dropped as
//! they are read, and no size read from the stream is ever used to allocate.

use bytes::Bytes;

mod concat;
mod content_type;
pub mod multipart;
pub mod part;
mod sniff;

pub use content_type::ContentType;
pub use sniff::{SNIFF_BYTES, Sniff, Sniffer, sniff};

/// One thing a splitter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The bytes of one candidate frame (still to be validated with [`crate::jpeg::inspect`]).
    Frame(Bytes),
    /// Bytes that were dropped as a bad frame; the text says why.
    Rejected(String),
}

/// Which framing a body uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `multipart/x-mixed-replace`; `None` means "learn the boundary from the first `--` line".
    Multipart(Option<String>),
    /// JPEGs back to back (`ffmpeg -f mjpeg`).
    Concatenated,
}

/// A streaming splitter for either framing.
///
/// Feed it with [`push`](Self::push), then call [`next_piece`](Self::next_piece) until it
/// returns `None`; at the end of the input call [`finish`](Self::finish) until it returns
/// `None`. Pieces come out in stream order, whatever the chunk sizes were.
#[derive(Debug)]
pub struct Splitter {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Multipart(multipart::MultipartSplitter),
    Concatenated(concat::ConcatSplitter),
    /// The framing is still unknown: the first bytes, kept until they tell it.
    Sniffing {
        sniffer: Sniffer,
        max_frame_bytes: usize,
    },
}

impl Splitter {
    /// Creates a splitter that never buffers more than `max_frame_bytes` for one frame.
    pub fn new(framing: Framing, max_frame_bytes: usize) -> Self {
        let inner = match framing {
            Framing::Multipart(boundary) => Inner::Multipart(multipart::MultipartSplitter::new(
                boundary.as_deref(),
                max_frame_bytes,
            )),
            Framing::Concatenated => {
                Inner::Concatenated(concat::ConcatSplitter::new(max_frame_bytes))
            }
        };
        Self { inner }
    }

    /// Creates a splitter whose framing the first bytes tell ([`Sniffer`]); bytes that tell
    /// nothing ([`Sniff::Unknown`]) mean bare JPEGs, whose splitter resynchronises on the next
    /// start-of-image.
    pub fn sniffing(max_frame_bytes: usize) -> Self {
        let inner = Inner::Sniffing {
            sniffer: Sniffer::new(),
            max_frame_bytes,
        };
        Self { inner }
    }

    /// Feeds the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        match &mut self.inner {
            Inner::Multipart(m) => m.push(chunk),
            Inner::Concatenated(c) => c.push(chunk),
            Inner::Sniffing {
                sniffer,
                max_frame_bytes,
            } => {
                let framing = match sniffer.push(chunk) {
                    Sniff::Known(framing) => framing,
                    Sniff::Unknown => Framing::Concatenated,
                    Sniff::NeedMore => return,
                };
                let head = sniffer.take_head();
                *self = Splitter::new(framing, *max_frame_bytes);
                self.push(&head);
            }
        }
    }

    /// Takes the next complete piece, if any.
    pub fn next_piece(&mut self) -> Option<Piece> {
        match &mut self.inner {
            Inner::Multipart(m) => m.next_piece(),
            Inner::Concatenated(c) => c.next_piece(),
            Inner::Sniffing { .. } => None,
        }
    }

    /// Bytes held back for an unfinished frame, part headers or a possible delimiter. Once
    /// [`next_piece`](Self::next_piece) has been drained this is within the bound under
    /// `# Memory` above; once [`finish`](Self::finish) has returned `None` it is 0.
    pub fn buffered_bytes(&self) -> usize {
        match &self.inner {
            Inner::Multipart(m) => m.buffered_bytes(),
            Inner::Concatenated(c) => c.buffered_bytes(),
            Inner::Sniffing { sniffer, .. } => sniffer.head().len(),
        }
    }

    /// Ends the stream: returns what the unfinished tail amounted to, if anything (an
    /// unfinished frame is a `Rejected("truncated: ...")`). Call until it returns `None`.
    pub fn finish(&mut self) -> Option<Piece> {
        match &mut self.inner {
            Inner::Multipart(m) => m.finish(),
            Inner::Concatenated(c) => c.finish(),
            Inner::Sniffing {
                sniffer,
                max_frame_bytes,
            } => {
                // Too short to tell: whatever there is can only be bare JPEGs.
                let head = sniffer.take_head();
                *self = Splitter::new(Framing::Concatenated, *max_frame_bytes);
                self.push(&head);
                self.finish()
            }
        }
    }
}

/// The rejection both splitters give for an image above the cap.
pub(crate) fn oversize(max_frame_bytes: usize) -> Piece {
    Piece::Rejected(format!("too large: frame exceeds {max_frame_bytes} bytes"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs a whole stream through a fresh splitter, chunk by chunk, draining after each push.
    pub(crate) fn split<'a>(
        framing: &Framing,
        max_frame_bytes: usize,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Piece> {
        let mut splitter = Splitter::new(framing.clone(), max_frame_bytes);
        let mut pieces = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            pieces.extend(std::iter::from_fn(|| splitter.next_piece()));
        }
        pieces.extend(std::iter::from_fn(|| splitter.finish()));
        pieces
    }

    /// Splits `input` in one go, at every possible single split point, and in 1-byte chunks,
    /// and checks that all give the same pieces. Returns them.
    pub(crate) fn split_everywhere(framing: &Framing, max: usize, input: &[u8]) -> Vec<Piece> {
        let whole = split(framing, max, [input]);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(split(framing, max, [a, b]), whole, "split at byte {at}");
        }
        assert_eq!(split(framing, max, input.chunks(1)), whole, "1-byte chunks");
        whole
    }

    /// The frames among `pieces`, as vectors.
    pub(crate) fn frames(pieces: &[Piece]) -> Vec<Vec<u8>> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Frame(bytes) => Some(bytes.to_vec()),
                Piece::Rejected(_) => None,
            })
            .collect()
    }

    /// The rejection reasons among `pieces`.
    pub(crate) fn rejections(pieces: &[Piece]) -> Vec<&str> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Rejected(why) => Some(why.as_str()),
                Piece::Frame(_) => None,
            })
            .collect()
    }

    #[test]
    fn splitter_dispatches_on_framing() {
        let jpeg = crate::jpeg::samples::sample_jpeg(16, 16, 1);
        let mut concat = Splitter::new(Framing::Concatenated, 1 << 20);
        concat.push(&jpeg);
        assert_eq!(
            concat.next_piece(),
            Some(Piece::Frame(Bytes::from(jpeg.clone())))
        );
        assert_eq!(concat.finish(), None);

        let mut multi = Splitter::new(Framing::Multipart(Some("b".into())), 1 << 20);
        multi.push(b"--b\r\nContent-Type: image/jpeg\r\n\r\n");
        multi.push(&jpeg);
        multi.push(b"\r\n--b--\r\n");
        assert_eq!(multi.next_piece(), Some(Piece::Frame(Bytes::from(jpeg))));
        assert_eq!(multi.next_piece(), None);
        assert_eq!(multi.finish(), None);
    }

    #[test]
    fn a_sniffing_splitter_learns_either_framing_from_the_first_bytes() {
        let jpeg = crate::jpeg::samples::sample_jpeg(16, 16, 3);
        let mut multipart = b"--cam\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        multipart.extend_from_slice(&jpeg);
        multipart.extend_from_slice(b"\r\n--cam\r\n");
        for body in [&multipart[..], &jpeg[..]] {
            let mut splitter = Splitter::sniffing(1 << 20);
            let mut pieces = Vec::new();
            for byte in body {
                splitter.push(std::slice::from_ref(byte));
                pieces.extend(std::iter::from_fn(|| splitter.next_piece()));
            }
            pieces.extend(std::iter::from_fn(|| splitter.finish()));
            assert_eq!(pieces, [Piece::Frame(Bytes::copy_from_slice(&jpeg))]);
        }
        let mut short = Splitter::sniffing(1 << 20);
        short.push(b"\r\n");
        assert_eq!(short.buffered_bytes(), 2);
        while short.finish().is_some() {}
        assert_eq!(short.buffered_bytes(), 0);
    }

    #[test]
    fn buffered_bytes_is_the_unfinished_frame_and_zero_after_finish() {
        let jpeg = crate::jpeg::samples::sample_jpeg(16, 16, 2);
        for framing in [Framing::Concatenated, Framing::Multipart(Some("b".into()))] {
            let mut splitter = Splitter::new(framing, 1 << 20);
            splitter.push(b"--b\r\n\r\n");
            splitter.push(&jpeg[..100]);
            while splitter.next_piece().is_some() {}
            assert_eq!(splitter.buffered_bytes(), 100);
            assert!(matches!(splitter.finish(), Some(Piece::Rejected(_))));
            assert_eq!(splitter.finish(), None);
            assert_eq!(splitter.buffered_bytes(), 0);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Arbitrary bytes (seeded with stream-like tokens) never panic or hang a splitter, and
        /// every frame it hands out is an `FF D8 ... FF D9` span within the cap.
        #[test]
        fn any_input_ends_cleanly(
            tokens in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                    proptest::sample::select(vec![
                        b"--b\r\n".to_vec(), b"\r\n".to_vec(), b"\xFF\xD8\xFF".to_vec(),
                        b"\xFF\xD9".to_vec(), b"\xFF\xDA\x00\x08".to_vec(),
                        b"Content-Length: 30\r\n".to_vec(), b"Content-Type: image/jpeg\r\n".to_vec(),
                    ]),
                ],
                0..40,
            ),
            chunk in 1usize..64,
            learn in proptest::prelude::any::<bool>(),
        ) {
            let input = tokens.concat();
            let boundary = (!learn).then(|| "b".to_owned());
            for framing in [Framing::Multipart(boundary), Framing::Concatenated] {
                for piece in split(&framing, 200, input.chunks(chunk)) {
                    if let Piece::Frame(frame) = piece {
                        proptest::prop_assert!(frame.len() <= 200);
                        proptest::prop_assert!(frame.starts_with(&[0xFF, 0xD8]));
                        proptest::prop_assert!(frame.ends_with(&[0xFF, 0xD9]));
                    }
                }
            }
        }
    }
}
