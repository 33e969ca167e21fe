//! What the splitter fuzz targets share: how an input chooses its settings, and the properties
//! every run must keep (the contract in `framecast::mjpeg`'s docs).
//!
//! An input is `[settings, c0, c1, c2, c3, target-specific bytes..., stream...]`: the low two
//! bits of `settings` pick the frame cap, `c0..c3` the chunk sizes the stream is pushed in
//! (cycled; `n + 1` bytes, `0xFF` meaning 8 KiB), and the other bits of `settings` are the
//! target's.

use framecast::jpeg;
use framecast::mjpeg::multipart::MAX_PART_HEADER_BYTES;
use framecast::mjpeg::{Framing, Piece, Splitter};

/// Frame caps an input may pick: 64 KiB, the longest input `run.sh` lets libFuzzer make (so
/// the cap never cuts a frame there), and small ones so that inputs of a few KiB reach the
/// oversize paths.
pub const MAX_FRAME_CHOICES: [usize; 4] = [64 * 1024, 64 * 1024, 4096, 300];

/// The chunk size a `0xFF` chunk byte stands for: bigger than most inputs (one-shot-like).
pub const BIG_CHUNK: usize = 8 * 1024;

/// The settings bytes at the front of an input.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The byte's bits above the two that pick the cap, for the target to use.
    pub target_bits: u8,
    /// The splitter's `max_frame_bytes`.
    pub max_frame_bytes: usize,
    /// Chunk sizes, cycled over the stream.
    pub chunk_sizes: [usize; 4],
}

impl Settings {
    /// Splits the settings off the front of `data`; `None` if it is too short to have them.
    pub fn read(data: &[u8]) -> Option<(Self, &[u8])> {
        let (&[settings, c0, c1, c2, c3], rest) = data.split_first_chunk::<5>()?;
        let size = |c: u8| {
            if c == 0xFF {
                BIG_CHUNK
            } else {
                usize::from(c) + 1
            }
        };
        Some((
            Self {
                target_bits: settings >> 2,
                max_frame_bytes: MAX_FRAME_CHOICES[usize::from(settings & 3)],
                chunk_sizes: [size(c0), size(c1), size(c2), size(c3)],
            },
            rest,
        ))
    }
}

/// Splits `stream` in one push and in the chosen chunks, and checks that both give the same
/// pieces, that every frame is well cut and within the cap, and that the splitter's buffer
/// stays bounded whatever the input.
pub fn check_splitter(framing: &Framing, settings: &Settings, stream: &[u8]) {
    let max = settings.max_frame_bytes;
    let whole = split(framing, max, std::iter::once(stream), stream.len());
    let chunked = split(
        framing,
        max,
        chunks(stream, &settings.chunk_sizes),
        stream.len(),
    );
    assert_eq!(whole, chunked, "chunking changed the pieces");
    for piece in &whole {
        let Piece::Frame(frame) = piece else { continue };
        assert!(
            frame.len() <= max,
            "frame of {} bytes over the cap {max}",
            frame.len()
        );
        assert!(frame.starts_with(&[0xFF, 0xD8, 0xFF]), "frame without SOI");
        assert!(frame.ends_with(&[0xFF, 0xD9]), "frame without EOI");
        // The splitter and the walker must agree on where an image ends: a frame the walker
        // accepts is cut exactly at its end-of-image marker.
        if let Ok(info) = jpeg::inspect(frame) {
            assert_eq!(
                info.len,
                frame.len(),
                "walker and splitter disagree on the end"
            );
        }
    }
}

/// `stream` cut into pieces of the given sizes, cycled.
fn chunks<'a>(mut stream: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut size = sizes.iter().cycle();
    std::iter::from_fn(move || {
        if stream.is_empty() {
            return None;
        }
        let (chunk, rest) = stream.split_at((*size.next()?).min(stream.len()));
        stream = rest;
        Some(chunk)
    })
}

/// Runs one splitter over `chunks`, draining after every push as callers must, and checks
/// the memory bound after each drain and the clean end after `finish`.
fn split<'a>(
    framing: &Framing,
    max: usize,
    chunks: impl Iterator<Item = &'a [u8]>,
    stream_len: usize,
) -> Vec<Piece> {
    let mut splitter = Splitter::new(framing.clone(), max);
    let mut pieces = Vec::new();
    // Every piece consumes input bytes, so more pieces than bytes means a loop.
    let mut take = |piece: Piece| {
        pieces.push(piece);
        assert!(
            pieces.len() <= stream_len + 1,
            "more pieces than input bytes"
        );
    };
    for chunk in chunks {
        splitter.push(chunk);
        while let Some(piece) = splitter.next_piece() {
            take(piece);
        }
        // `framecast::mjpeg` promises: one frame, the part headers and the last chunk.
        let bound = max + MAX_PART_HEADER_BYTES + chunk.len();
        let held = splitter.buffered_bytes();
        assert!(held <= bound, "holds {held} bytes, bound {bound}");
    }
    while let Some(piece) = splitter.finish() {
        take(piece);
    }
    assert_eq!(splitter.finish(), None, "finish after its None");
    assert_eq!(splitter.buffered_bytes(), 0, "bytes left after finish");
    pieces
}
