//! JPEG structure, known in one place: whether a buffer is one complete, browser-safe JPEG
//! ([`inspect`]), and where images start and end in a stream (for the splitters in
//! [`crate::mjpeg`]). Both walk the segment structure with the same `markers` code — no pixel
//! decoding, no allocation — so a bad frame is refused before any viewer's browser has to choke
//! on it, and the splitters cut exactly where the validator says an image ends.
//!
//! # Layout
//! - `markers`: marker codes and the resumable walk over segments and entropy-coded data.
//! - `end_scan`: the incremental end-of-image scan and the start-of-image search.
//! - this file: [`inspect`], the validator every frame passes before it is broadcast.
//!
//! # What `inspect` checks, and why
//! A minimum size, `FF D8 FF`, length-checked segments (with fill bytes and standalone
//! markers), exactly one baseline, extended or progressive frame header before the first scan,
//! then entropy-coded data up to `FF D9`; bytes after it are padding to cut off. Lossless,
//! hierarchical and arithmetic-coded JPEGs are refused because browsers do not display them.
//! Huffman tables and APP0/JFIF are deliberately not required: UVC webcams omit both. The
//! camera quirks behind these choices are listed in `docs/camera-quirks.md`.

mod end_scan;
mod markers;

pub(crate) use end_scan::{EndScanner, Scan, find_image_start, partial_image_start_len};
pub(crate) use markers::IMAGE_START;

use markers::{
    Markers, SOF_BASELINE, SOF_EXTENDED, SOF_PROGRESSIVE, SOS, Token, is_unsupported_sof,
};

/// Smallest buffer worth walking. ustreamer drops camera buffers below this size as broken; the
/// smallest real frames we produce (ffmpeg 16x16, about 280 bytes) are well above it.
pub const MIN_JPEG_BYTES: usize = 125;

/// Largest accepted width or height. Decoders refuse more by default (zune-jpeg's limit) and a
/// live stream never needs it; the cap keeps a forged header from promising billions of pixels.
pub const MAX_SIDE_PIXELS: u16 = 16_384;

/// What the walker learned about a valid JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Image width in pixels, from the SOF segment.
    pub width: u16,
    /// Image height in pixels, from the SOF segment.
    pub height: u16,
    /// Length of the JPEG from SOI up to and including EOI; bytes after it are padding.
    pub len: usize,
}

/// Why a buffer is not an acceptable JPEG. The `Display` text is shown to API users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// Shorter than [`MIN_JPEG_BYTES`].
    #[error("too short: {0} bytes, a JPEG needs at least {MIN_JPEG_BYTES}")]
    TooShort(usize),
    /// Does not begin with the start-of-image marker `FF D8 FF`.
    #[error("no start-of-image marker (FF D8 FF)")]
    NotJpeg,
    /// The data stops before the image does.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// The segment structure is broken.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A valid JPEG flavour that browsers do not display.
    #[error("not browser-safe: {0}")]
    Unsupported(&'static str),
    /// Holds the text of `GET /mjpeg`'s boundary, which would cut it in two there.
    #[error("holds the text --framecast-frame, the MJPEG output's boundary")]
    HoldsBoundary,
    /// Width or height above [`MAX_SIDE_PIXELS`].
    #[error("too large: {width}x{height} pixels, at most {MAX_SIDE_PIXELS} per side")]
    TooLarge {
        /// Width from the frame header.
        width: u16,
        /// Height from the frame header.
        height: u16,
    },
}

/// What a frame header said.
struct FrameHeader {
    width: u16,
    height: u16,
}

/// Walks `bytes` as a JPEG: SOI, segments, exactly one SOF, scan data, EOI.
///
/// Bytes after the EOI are allowed (cameras pad frames); `len` tells the caller where to cut.
pub fn inspect(bytes: &[u8]) -> Result<JpegInfo, JpegError> {
    if bytes.len() < MIN_JPEG_BYTES {
        return Err(JpegError::TooShort(bytes.len()));
    }
    let info = walk(bytes)?;
    // The image itself must be long enough, not just the buffer with its padding.
    if info.len < MIN_JPEG_BYTES {
        return Err(JpegError::TooShort(info.len));
    }
    Ok(info)
}

/// The segment walk behind [`inspect`]: the marker walk, with each segment checked.
fn walk(bytes: &[u8]) -> Result<JpegInfo, JpegError> {
    if !bytes.starts_with(&IMAGE_START) {
        return Err(JpegError::NotJpeg);
    }
    let mut frame: Option<FrameHeader> = None;
    let mut scanned = false; // a scan header was read (it needs a frame header before it)
    let mut markers = Markers::new();
    loop {
        let (code, body) = match markers.next(bytes) {
            Token::Segment { code, body } => (code, body),
            Token::EndOfImage(len) => {
                return match (frame, scanned) {
                    (Some(FrameHeader { width, height }), true) => {
                        Ok(JpegInfo { width, height, len })
                    }
                    _ => Err(JpegError::Malformed("no image data before end-of-image")),
                };
            }
            Token::StartOfImage(_) => {
                return Err(JpegError::Malformed("second start-of-image marker"));
            }
            Token::NeedMore(what) => return Err(JpegError::Truncated(what)),
            Token::Malformed(why, _) => return Err(JpegError::Malformed(why)),
        };
        let Some(body) = bytes.get(body) else {
            return Err(JpegError::Truncated("segment runs past the end"));
        };
        match code {
            SOF_BASELINE | SOF_EXTENDED | SOF_PROGRESSIVE => {
                if frame.is_some() {
                    return Err(JpegError::Malformed("more than one frame header"));
                }
                frame = Some(read_frame_header(body)?);
            }
            c if is_unsupported_sof(c) => {
                return Err(JpegError::Unsupported(
                    "lossless, hierarchical or arithmetic-coded JPEG",
                ));
            }
            SOS => {
                if frame.is_none() {
                    return Err(JpegError::Malformed("scan before frame header"));
                }
                check_scan_header(body)?;
                scanned = true;
            }
            _ => {} // APPn, COM, DQT, DHT, DRI, ...: skipped by length
        }
    }
}

/// Checks a frame header body (after the length field).
fn read_frame_header(body: &[u8]) -> Result<FrameHeader, JpegError> {
    let &[
        precision,
        h_hi,
        h_lo,
        w_hi,
        w_lo,
        components,
        ref specs @ ..,
    ] = body
    else {
        return Err(JpegError::Malformed("frame header too short"));
    };
    if !matches!(components, 1 | 3 | 4) {
        return Err(JpegError::Malformed(
            "frame header must have 1, 3 or 4 components",
        ));
    }
    if specs.len() != 3 * usize::from(components) {
        return Err(JpegError::Malformed(
            "frame header length does not match its components",
        ));
    }
    if !matches!(precision, 8 | 12) {
        return Err(JpegError::Malformed(
            "sample precision must be 8 or 12 bits",
        ));
    }
    // Decoders divide by the sampling factors: 0 (or above 4) must never get through.
    let factors_ok = specs.chunks_exact(3).all(|spec| {
        let (h, v) = (spec[1] >> 4, spec[1] & 0x0F);
        (1..=4).contains(&h) && (1..=4).contains(&v) && spec[2] <= 3
    });
    if !factors_ok {
        return Err(JpegError::Malformed(
            "bad component sampling factor or table",
        ));
    }
    let height = u16::from_be_bytes([h_hi, h_lo]);
    let width = u16::from_be_bytes([w_hi, w_lo]);
    if width == 0 || height == 0 {
        return Err(JpegError::Malformed("zero width or height"));
    }
    if width > MAX_SIDE_PIXELS || height > MAX_SIDE_PIXELS {
        return Err(JpegError::TooLarge { width, height });
    }
    Ok(FrameHeader { width, height })
}

/// Checks a scan header body: 1 to 4 components and a matching length.
fn check_scan_header(body: &[u8]) -> Result<(), JpegError> {
    match body.first() {
        Some(&n @ 1..=4) if body.len() == 4 + 2 * usize::from(n) => Ok(()),
        _ => Err(JpegError::Malformed("bad scan header")),
    }
}

#[cfg(test)]
pub(crate) mod samples;
#[cfg(test)]
mod tests;
