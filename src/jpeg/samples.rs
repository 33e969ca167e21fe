//! Test JPEGs for every parser's unit tests: real encoder output in each flavour the parsers
//! must get through (baseline, progressive, restart markers, EXIF thumbnail, no Huffman
//! tables), and helpers to take one apart and rebuild it.

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

pub(crate) fn encode(
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
pub(crate) fn segments(jpeg: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
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
pub(crate) fn rebuild(jpeg: &[u8], keep: impl Fn(u8) -> bool) -> Vec<u8> {
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
pub(crate) fn find_segment(jpeg: &[u8], code: u8) -> usize {
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
