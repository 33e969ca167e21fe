//! `jpeg::inspect` on arbitrary bytes: it never panics, and what it accepts keeps every
//! promise of `JpegInfo` (sizes in range, `len` cuts the image at its EOI).

#![no_main]

use framecast::jpeg::{self, MAX_SIDE_PIXELS, MIN_JPEG_BYTES};
use framecast::mjpeg::{Framing, Piece, Splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = jpeg::inspect(data) else {
        return;
    };
    assert!((1..=MAX_SIDE_PIXELS).contains(&info.width), "{info:?}");
    assert!((1..=MAX_SIDE_PIXELS).contains(&info.height), "{info:?}");
    assert!(info.len <= data.len(), "{info:?}");
    let image = &data[..info.len];
    assert!(image.starts_with(&[0xFF, 0xD8, 0xFF]) && image.ends_with(&[0xFF, 0xD9]));
    // `Frame` keeps `data[..len]`: cut there, the image still walks the same way.
    assert!(info.len >= MIN_JPEG_BYTES, "{info:?}");
    assert_eq!(jpeg::inspect(image), Ok(info));
    // The concatenated-JPEG splitter cuts an accepted image at the same place.
    let mut splitter = Splitter::new(Framing::Concatenated, data.len());
    splitter.push(data);
    match splitter.next_piece() {
        Some(Piece::Frame(frame)) => assert_eq!(&frame[..], image, "splitter cut elsewhere"),
        other => panic!("splitter gave {other:?} for an image the walker accepts"),
    }
});
