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
pub(crate) mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder};

    /// A deterministic pseudo-random RGB pattern (xorshift), so frames differ per seed.
    fn pixels(w: u16, h: u16, channels: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..usize::from(w) * usize::from(h) * channels)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Smooth gradient plus noise: realistic entropy data with FF 00 stuffing.
                ((i % 251) as u8).wrapping_add((state & 0x3F) as u8)
            })
            .collect()
    }

    fn encode(
        w: u16,
        h: u16,
        seed: u64,
        color: ColorType,
        setup: impl FnOnce(&mut Encoder<&mut Vec<u8>>),
    ) -> Vec<u8> {
        let channels = match color {
            ColorType::Luma => 1,
            ColorType::Cmyk => 4,
            _ => 3,
        };
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 80);
        setup(&mut encoder);
        encoder
            .encode(&pixels(w, h, channels, seed), w, h, color)
            .expect("encode");
        out
    }

    /// A real baseline JPEG made by `jpeg-encoder`.
    pub(crate) fn sample_jpeg(w: u16, h: u16, seed: u64) -> Vec<u8> {
        encode(w, h, seed, ColorType::Rgb, |_| {})
    }

    /// A real progressive JPEG (several scans with DHT segments between them).
    pub(crate) fn progressive_jpeg(w: u16, h: u16, seed: u64) -> Vec<u8> {
        encode(w, h, seed, ColorType::Rgb, |e| e.set_progressive(true))
    }

    /// A JPEG with restart markers in its scan data.
    pub(crate) fn restart_jpeg(w: u16, h: u16, seed: u64) -> Vec<u8> {
        encode(w, h, seed, ColorType::Rgb, |e| e.set_restart_interval(1))
    }

    /// A JPEG whose APP1 (EXIF) segment holds a complete thumbnail JPEG, `FF D9` included.
    pub(crate) fn exif_thumbnail_jpeg(w: u16, h: u16, seed: u64) -> Vec<u8> {
        let thumb = sample_jpeg(8, 8, seed ^ 0xABCD);
        encode(w, h, seed, ColorType::Rgb, |e| {
            e.add_exif_metadata(&thumb).expect("exif")
        })
    }

    /// Splits a JPEG into `(code, whole segment bytes)` up to SOS, and the rest from SOS on.
    fn segments(jpeg: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
        let mut out = Vec::new();
        let mut pos = 2;
        loop {
            let code = jpeg[pos + 1];
            if code == 0xDA {
                return (out, jpeg[pos..].to_vec());
            }
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            out.push((code, jpeg[pos..pos + 2 + len].to_vec()));
            pos += 2 + len;
        }
    }

    /// Rebuilds a JPEG from SOI, the kept segments and the scan tail.
    fn rebuild(jpeg: &[u8], keep: impl Fn(u8) -> bool) -> Vec<u8> {
        let (segs, tail) = segments(jpeg);
        let mut out = vec![0xFF, 0xD8];
        for (code, seg) in segs {
            if keep(code) {
                out.extend_from_slice(&seg);
            }
        }
        out.extend_from_slice(&tail);
        out
    }

    /// A UVC-style frame: the Huffman tables (DHT) and APP0 are left out.
    pub(crate) fn no_dht_jpeg(w: u16, h: u16, seed: u64) -> Vec<u8> {
        rebuild(&sample_jpeg(w, h, seed), |code| {
            code != 0xC4 && code != 0xE0
        })
    }

    /// Offset of the first segment with this marker code (the `FF` byte).
    fn find_segment(jpeg: &[u8], code: u8) -> usize {
        let (segs, _) = segments(jpeg);
        let mut pos = 2;
        for (c, seg) in segs {
            if c == code {
                return pos;
            }
            pos += seg.len();
        }
        panic!("no segment {code:02X}");
    }

    #[test]
    fn valid_baseline_reports_size() {
        let jpeg = sample_jpeg(33, 17, 1);
        let info = inspect(&jpeg).unwrap();
        assert_eq!(
            info,
            JpegInfo {
                width: 33,
                height: 17,
                progressive: false,
                len: jpeg.len()
            }
        );
    }

    #[test]
    fn progressive_with_tables_between_scans() {
        let jpeg = progressive_jpeg(40, 24, 2);
        let info = inspect(&jpeg).unwrap();
        assert!(info.progressive);
        assert_eq!((info.width, info.height, info.len), (40, 24, jpeg.len()));
    }

    #[test]
    fn grayscale_and_cmyk_component_counts() {
        let gray = encode(16, 16, 3, ColorType::Luma, |_| {});
        assert_eq!(inspect(&gray).unwrap().width, 16);
        let cmyk = encode(16, 16, 3, ColorType::Cmyk, |_| {});
        assert_eq!(inspect(&cmyk).unwrap().len, cmyk.len());
    }

    #[test]
    fn q15_no_dht_uvc_frame_passes() {
        let jpeg = no_dht_jpeg(32, 32, 4);
        assert!(!jpeg.windows(2).any(|w| w == [0xFF, 0xC4]));
        assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
    }

    #[test]
    fn exif_thumbnail_does_not_end_the_image_early() {
        let jpeg = exif_thumbnail_jpeg(24, 24, 5);
        let info = inspect(&jpeg).unwrap();
        assert_eq!((info.width, info.len), (24, jpeg.len()));
    }

    #[test]
    fn restart_markers_in_scan_data() {
        let jpeg = restart_jpeg(32, 32, 6);
        assert!(
            jpeg.windows(2)
                .any(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
        );
        assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
    }

    #[test]
    fn fill_bytes_before_markers() {
        let mut jpeg = sample_jpeg(16, 16, 7);
        let sof = find_segment(&jpeg, 0xC0);
        jpeg.splice(sof..sof, [0xFF, 0xFF, 0xFF]);
        let eoi = jpeg.len() - 2;
        jpeg.splice(eoi..eoi, [0xFF, 0xFF]);
        assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
    }

    #[test]
    fn real_ffmpeg_frames_pass_including_16x16() {
        for (bytes, w) in [
            (
                &include_bytes!("../tests/fixtures/ffmpeg-16x16.mjpeg")[..],
                16,
            ),
            (
                &include_bytes!("../tests/fixtures/ffmpeg-160x120.mjpeg")[..],
                160,
            ),
        ] {
            let mut rest = bytes;
            let mut count = 0;
            while !rest.is_empty() {
                let info = inspect(rest).unwrap();
                assert_eq!(info.width, w);
                assert!(info.len >= MIN_JPEG_BYTES);
                rest = &rest[info.len..];
                count += 1;
            }
            assert_eq!(count, 5);
        }
    }

    #[test]
    fn soi_eoi_only_is_rejected() {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xD9];
        assert_eq!(inspect(&bytes), Err(JpegError::TooShort(4)));
        bytes.resize(MIN_JPEG_BYTES, 0);
        assert!(matches!(inspect(&bytes), Err(JpegError::Malformed(_))));
    }

    #[test]
    fn a_tiny_image_padded_past_the_minimum_is_still_too_short() {
        // Found by the fuzzer: the cut-out image must pass on its own, as `Frame` keeps only it.
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        bytes.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0x12, 0x34]);
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        let image = bytes.len();
        bytes.resize(MIN_JPEG_BYTES * 2, 0);
        assert_eq!(inspect(&bytes), Err(JpegError::TooShort(image)));
    }

    #[test]
    fn not_a_jpeg() {
        assert_eq!(inspect(&[0x89; 200]), Err(JpegError::NotJpeg));
        let mut png_ish = sample_jpeg(16, 16, 8);
        png_ish[0] = 0x89;
        assert_eq!(inspect(&png_ish), Err(JpegError::NotJpeg));
    }

    #[test]
    fn segment_length_below_two() {
        for bad_len in [0u8, 1] {
            let mut jpeg = sample_jpeg(16, 16, 9);
            let dqt = find_segment(&jpeg, 0xDB);
            jpeg[dqt + 2] = 0;
            jpeg[dqt + 3] = bad_len;
            assert_eq!(
                inspect(&jpeg),
                Err(JpegError::Malformed("segment length below 2"))
            );
        }
    }

    #[test]
    fn segment_length_overflowing_the_buffer() {
        let mut jpeg = sample_jpeg(16, 16, 10);
        let dqt = find_segment(&jpeg, 0xDB);
        jpeg[dqt + 2] = 0xFF;
        jpeg[dqt + 3] = 0xFF;
        jpeg.truncate(dqt + 1000);
        assert_eq!(
            inspect(&jpeg),
            Err(JpegError::Truncated("segment runs past the end"))
        );
        // A length field cut in half.
        let short = [
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..],
            &[0; 150],
            &[0xFF, 0xFE, 0x00],
        ]
        .concat();
        assert!(matches!(
            inspect(&short),
            Err(JpegError::Malformed(_) | JpegError::Truncated(_))
        ));
    }

    #[test]
    fn zero_components_rejected() {
        let mut jpeg = encode(16, 16, 11, ColorType::Luma, |_| {});
        let sof = find_segment(&jpeg, 0xC0);
        jpeg[sof + 9] = 0; // Nf
        assert_eq!(
            inspect(&jpeg),
            Err(JpegError::Malformed(
                "frame header must have 1, 3 or 4 components"
            ))
        );
    }

    #[test]
    fn zero_width_and_bad_precision_rejected() {
        let jpeg = sample_jpeg(16, 16, 12);
        let sof = find_segment(&jpeg, 0xC0);
        let mut zero = jpeg.clone();
        zero[sof + 7] = 0;
        zero[sof + 8] = 0;
        assert_eq!(
            inspect(&zero),
            Err(JpegError::Malformed("zero width or height"))
        );
        let mut precision = jpeg.clone();
        precision[sof + 4] = 16;
        assert!(matches!(inspect(&precision), Err(JpegError::Malformed(_))));
        let mut sampling = jpeg;
        sampling[sof + 11] = 0x00;
        assert!(matches!(inspect(&sampling), Err(JpegError::Malformed(_))));
    }

    #[test]
    fn huge_dimensions_rejected() {
        let mut jpeg = sample_jpeg(16, 16, 13);
        let sof = find_segment(&jpeg, 0xC0);
        jpeg[sof + 5] = 0xFF;
        jpeg[sof + 6] = 0xFF;
        assert_eq!(
            inspect(&jpeg),
            Err(JpegError::TooLarge {
                width: 16,
                height: 65535
            })
        );
    }

    #[test]
    fn arithmetic_and_lossless_sof_rejected() {
        for code in [0xC3, 0xC9, 0xCA, 0xCB, 0xCD, 0xCF] {
            let mut jpeg = sample_jpeg(16, 16, 14);
            let sof = find_segment(&jpeg, 0xC0);
            jpeg[sof + 1] = code;
            assert!(
                matches!(inspect(&jpeg), Err(JpegError::Unsupported(_))),
                "{code:02X}"
            );
        }
    }

    #[test]
    fn two_frame_headers_or_none_rejected() {
        let jpeg = sample_jpeg(16, 16, 15);
        let sof = find_segment(&jpeg, 0xC0);
        let (segs, _) = segments(&jpeg);
        let sof_seg = segs.iter().find(|(c, _)| *c == 0xC0).unwrap().1.clone();
        let mut twice = jpeg.clone();
        twice.splice(sof..sof, sof_seg);
        assert_eq!(
            inspect(&twice),
            Err(JpegError::Malformed("more than one frame header"))
        );
        let none = rebuild(&jpeg, |code| code != 0xC0);
        assert_eq!(
            inspect(&none),
            Err(JpegError::Malformed("scan before frame header"))
        );
    }

    #[test]
    fn truncated_is_reported() {
        let jpeg = sample_jpeg(32, 32, 16);
        for cut in [jpeg.len() - 1, jpeg.len() - 2, jpeg.len() / 2, 200] {
            assert!(
                matches!(inspect(&jpeg[..cut]), Err(JpegError::Truncated(_))),
                "cut at {cut}"
            );
        }
        assert_eq!(
            inspect(&jpeg[..jpeg.len() - 2]).unwrap_err().to_string(),
            "truncated: no end-of-image marker"
        );
    }

    #[test]
    fn q13_trailing_bytes_after_eoi_allowed() {
        let jpeg = sample_jpeg(16, 16, 17);
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 16]);
        padded.extend_from_slice(b"junk\xFF\xD9");
        assert_eq!(inspect(&padded).unwrap().len, jpeg.len());
    }

    #[test]
    fn stray_bytes_between_segments_rejected() {
        let mut jpeg = sample_jpeg(16, 16, 18);
        let dqt = find_segment(&jpeg, 0xDB);
        jpeg.insert(dqt, 0x00);
        assert!(matches!(inspect(&jpeg), Err(JpegError::Malformed(_))));
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_flip() {
        let jpeg = progressive_jpeg(24, 16, 19);
        for cut in 0..jpeg.len() {
            let _ = inspect(&jpeg[..cut]);
        }
        for i in 0..jpeg.len().min(700) {
            for flip in [0x00, 0xFF, 0x01, 0xD9, 0xDA] {
                let mut bad = jpeg.clone();
                bad[i] = flip;
                if let Ok(info) = inspect(&bad) {
                    assert!(info.len <= bad.len());
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn walker_never_panics_and_len_is_in_bounds(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), seed in 0u64..4) {
            let _ = inspect(&bytes);
            // Also a real header followed by random data.
            let mut mixed = sample_jpeg(8, 8, seed);
            mixed.truncate(300);
            mixed.extend_from_slice(&bytes);
            if let Ok(info) = inspect(&mixed) {
                proptest::prop_assert!(info.len <= mixed.len());
            }
        }
    }
}
