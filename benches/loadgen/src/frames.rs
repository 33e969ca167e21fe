//! The JPEG frames a run publishes, loaded once, with their base64 made in advance.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// One JPEG frame ready to publish.
#[derive(Debug)]
pub struct Frame {
    /// The file's bytes.
    pub jpeg: Vec<u8>,
    /// The same bytes as standard base64, as both servers' events carry them.
    pub base64: String,
    /// Width from the frame header.
    pub width: u16,
    /// Height from the frame header.
    pub height: u16,
}

/// Loads the frames named on the command line: files, or directories of `*.jpg`/`*.jpeg` taken
/// in name order.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<Frame>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| {
                    file.extension()
                        .is_some_and(|ext| ext.eq_ignore_ascii_case("jpg") || ext == "jpeg")
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no JPEG frames found in {paths:?}");
    }
    files.iter().map(|file| read(file)).collect()
}

fn read(file: &Path) -> anyhow::Result<Frame> {
    let jpeg = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (width, height) =
        dimensions(&jpeg).with_context(|| format!("{}: no JPEG frame header", file.display()))?;
    Ok(Frame {
        base64: BASE64.encode(&jpeg),
        jpeg,
        width,
        height,
    })
}

/// A real JPEG of `width` × `height` in one grey, for the unit tests.
#[cfg(test)]
pub fn test_jpeg(width: u16, height: u16) -> Vec<u8> {
    let pixels = vec![128u8; usize::from(width) * usize::from(height) * 3];
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 80)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    jpeg
}

/// Decodes `jpeg` (zune-jpeg, the decoder framecast scales with) and returns the width and
/// height of the pixels it gave: a scaled event's JPEG is checked this way, as it cannot be
/// compared with anything byte for byte.
pub fn decoded_dimensions(jpeg: &[u8]) -> Result<(u16, u16), String> {
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
    decoder.decode().map_err(|err| err.to_string())?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| "no dimensions".to_string())?;
    let narrow = |n: usize| u16::try_from(n).map_err(|_| format!("{n} pixels is too large"));
    Ok((narrow(width)?, narrow(height)?))
}

/// Width and height from the first start-of-frame segment.
fn dimensions(jpeg: &[u8]) -> Option<(u16, u16)> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 9 < jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return Some((width, height));
        }
        at += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_from_the_sof_segment() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xC0, 0x00, 0x0B, 8, 0x01, 0xE0, 0x02,
            0x80, 1, 1, 0x11, 0, 0xFF, 0xD9,
        ];
        assert_eq!(dimensions(&jpeg), Some((640, 480)));
        assert_eq!(dimensions(b"not a jpeg"), None);
    }
}
