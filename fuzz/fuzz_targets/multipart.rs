//! The multipart splitter on arbitrary bodies, with a known, learned or arbitrary boundary:
//! same pieces however the body is chunked, frames well cut and within the cap, bounded
//! buffer, no panic or hang.

#![no_main]

use framecast::mjpeg::Framing;
use framecast_fuzz::{Settings, check_splitter};
use libfuzzer_sys::fuzz_target;

/// Longest arbitrary boundary tried (RFC 2046 allows 70 characters).
const MAX_BOUNDARY: usize = 72;

fuzz_target!(|data: &[u8]| {
    let Some((settings, rest)) = Settings::read(data) else {
        return;
    };
    // Two bits pick the boundary: learned from the body, ffmpeg's, a short one, or taken
    // from the input (a length byte, then that many bytes).
    let (boundary, stream) = match settings.target_bits & 3 {
        0 => (None, rest),
        1 => (Some("ffmpeg".to_owned()), rest),
        2 => (Some("b".to_owned()), rest),
        _ => {
            let Some((&n, rest)) = rest.split_first() else {
                return;
            };
            let n = (usize::from(n) % (MAX_BOUNDARY + 1)).min(rest.len());
            let (boundary, stream) = rest.split_at(n);
            (Some(String::from_utf8_lossy(boundary).into_owned()), stream)
        }
    };
    check_splitter(&Framing::Multipart(boundary), &settings, stream);
});
