//! The concatenated-JPEG splitter on arbitrary streams: same pieces however the stream is
//! chunked, frames well cut and within the cap, bounded buffer, no panic or hang.

#![no_main]

use framecast::mjpeg::Framing;
use framecast_fuzz::{Settings, check_splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((settings, stream)) = Settings::read(data) else {
        return;
    };
    check_splitter(&Framing::Concatenated, &settings, stream);
});
