//! The JPEG walker: decides whether a byte buffer is one complete, browser-safe JPEG by walking
//! its segment structure (no pixel decoding, no allocation), so a bad frame is refused before any
//! viewer's browser has to choke on it.
//!
//! The checks follow `notes/reliability.md` §3: a minimum size, `FF D8 FF`, length-checked
//! segments (with fill bytes and standalone markers), exactly one baseline, extended or
//! progressive frame header before the first scan, then entropy-coded data up to `FF D9`.
//! Huffman tables and APP0/JFIF are deliberately not required: UVC cameras omit both.

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
    /// True for a progressive (SOF2) JPEG.
    pub progressive: bool,
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
    /// Width or height above [`MAX_SIDE_PIXELS`].
    #[error("too large: {width}x{height} pixels, at most {MAX_SIDE_PIXELS} per side")]
    TooLarge {
        /// Width from the frame header.
        width: u16,
        /// Height from the frame header.
        height: u16,
    },
}

/// Marker codes the walker cares about (the byte after `FF`).
mod marker {
    pub const SOI: u8 = 0xD8;
    pub const EOI: u8 = 0xD9;
    pub const SOS: u8 = 0xDA;
    pub const TEM: u8 = 0x01;
    pub const SOF_BASELINE: u8 = 0xC0;
    pub const SOF_EXTENDED: u8 = 0xC1;
    pub const SOF_PROGRESSIVE: u8 = 0xC2;

    /// Restart markers `D0..=D7` carry no length.
    pub fn is_rst(code: u8) -> bool {
        (0xD0..=0xD7).contains(&code)
    }

    /// Frame headers browsers cannot show: lossless (C3), hierarchical (C5-C7) and every
    /// arithmetic-coded variant (C9-CB, CD-CF). C4, C8 and CC are DHT, JPG and DAC.
    pub fn is_unsupported_sof(code: u8) -> bool {
        matches!(code, 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
    }
}

/// What a frame header said.
struct FrameHeader {
    width: u16,
    height: u16,
    progressive: bool,
}

impl FrameHeader {
    fn info(&self, len: usize) -> JpegInfo {
        JpegInfo {
            width: self.width,
            height: self.height,
            progressive: self.progressive,
            len,
        }
    }
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

/// The segment walk behind [`inspect`].
fn walk(bytes: &[u8]) -> Result<JpegInfo, JpegError> {
    if !bytes.starts_with(&[0xFF, marker::SOI, 0xFF]) {
        return Err(JpegError::NotJpeg);
    }
    let mut frame: Option<FrameHeader> = None;
    let mut scanned = false; // a scan ended at a marker (progressive: DHT/SOS follow)
    let mut pos = 2;
    loop {
        // Segment walk: `pos` is where the next marker must start.
        match bytes.get(pos) {
            None => return Err(JpegError::Truncated("no end-of-image marker")),
            Some(0xFF) => {}
            Some(_) => return Err(JpegError::Malformed("stray bytes between segments")),
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1; // `FF` fill bytes may precede any marker
        }
        let Some(&code) = bytes.get(pos) else {
            return Err(JpegError::Truncated("no end-of-image marker"));
        };
        pos += 1;
        match code {
            marker::SOI => return Err(JpegError::Malformed("second start-of-image marker")),
            marker::EOI => match (&frame, scanned) {
                (Some(header), true) => return Ok(header.info(pos)),
                _ => return Err(JpegError::Malformed("no image data before end-of-image")),
            },
            marker::TEM => continue,
            c if marker::is_rst(c) => continue,
            0x00 => return Err(JpegError::Malformed("stuffed byte outside scan data")),
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return Err(JpegError::Truncated("segment runs past the end"));
        };
        let seg_len = usize::from(u16::from_be_bytes([hi, lo]));
        if seg_len < 2 {
            return Err(JpegError::Malformed("segment length below 2"));
        }
        let end = pos + seg_len; // both below isize::MAX + 65535: no overflow
        let Some(body) = bytes.get(pos + 2..end) else {
            return Err(JpegError::Truncated("segment runs past the end"));
        };
        pos = end;
        match code {
            marker::SOF_BASELINE | marker::SOF_EXTENDED | marker::SOF_PROGRESSIVE => {
                if frame.is_some() {
                    return Err(JpegError::Malformed("more than one frame header"));
                }
                frame = Some(read_frame_header(body, code == marker::SOF_PROGRESSIVE)?);
            }
            c if marker::is_unsupported_sof(c) => {
                return Err(JpegError::Unsupported(
                    "lossless, hierarchical or arithmetic-coded JPEG",
                ));
            }
            marker::SOS => {
                let Some(header) = &frame else {
                    return Err(JpegError::Malformed("scan before frame header"));
                };
                check_scan_header(body)?;
                match skip_scan(bytes, pos) {
                    ScanEnd::Eoi(len) => return Ok(header.info(len)),
                    ScanEnd::Marker(at) => {
                        scanned = true;
                        pos = at;
                    }
                    ScanEnd::Truncated => {
                        return Err(JpegError::Truncated("no end-of-image marker"));
                    }
                }
            }
            _ => {} // APPn, COM, DQT, DHT, DRI, ...: skipped by length
        }
    }
}

/// Checks a frame header body (after the length field).
fn read_frame_header(body: &[u8], progressive: bool) -> Result<FrameHeader, JpegError> {
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
    Ok(FrameHeader {
        width,
        height,
        progressive,
    })
}

/// Checks a scan header body: 1 to 4 components and a matching length.
fn check_scan_header(body: &[u8]) -> Result<(), JpegError> {
    match body.first() {
        Some(&n @ 1..=4) if body.len() == 4 + 2 * usize::from(n) => Ok(()),
        _ => Err(JpegError::Malformed("bad scan header")),
    }
}

/// Where entropy-coded data stopped.
enum ScanEnd {
    /// End-of-image found; the value is the offset just past it.
    Eoi(usize),
    /// Another marker (progressive: DHT or the next SOS) starts at this offset.
    Marker(usize),
    /// The buffer ended inside scan data.
    Truncated,
}

/// Skips entropy-coded data from `pos`: `FF 00` is a stuffed byte, `FF D0..D7` a restart marker,
/// `FF FF` fill; anything else is a real marker.
fn skip_scan(bytes: &[u8], mut pos: usize) -> ScanEnd {
    loop {
        let Some(ff) = bytes
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
        else {
            return ScanEnd::Truncated;
        };
        let at = pos + ff;
        let mut next = at + 1;
        while bytes.get(next) == Some(&0xFF) {
            next += 1;
        }
        match bytes.get(next) {
            None => return ScanEnd::Truncated,
            Some(0x00) => pos = next + 1,
            Some(&c) if marker::is_rst(c) => pos = next + 1,
            Some(&marker::EOI) => return ScanEnd::Eoi(next + 1),
            Some(_) => return ScanEnd::Marker(next - 1),
        }
    }
}

#[cfg(test)]
pub(crate) mod samples;
#[cfg(test)]
mod tests;
