//! `ContentType`'s boundary and `sniff` on arbitrary text: no panic, and the boundary
//! comes back from its quoted or token form.

#![no_main]

use framecast::mjpeg::{self, ContentType, Framing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(boundary) = ContentType::parse(&text).boundary() {
        assert!(!boundary.is_empty());
    }
    if !text.is_empty() {
        // Any value survives being written as a quoted string.
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        let header = format!("multipart/x-mixed-replace; boundary=\"{escaped}\"; x=y");
        assert_eq!(
            ContentType::parse(&header).boundary().as_deref(),
            Some(&*text)
        );
        // A token (no space, `;` or quote; no leading whitespace of any kind, which the
        // parser trims) survives as it is.
        let token = !text.starts_with(char::is_whitespace)
            && !text.contains(|c: char| c.is_ascii_whitespace() || c == ';' || c == '"');
        if token {
            let header = format!("multipart/x-mixed-replace;boundary={text}");
            assert_eq!(
                ContentType::parse(&header).boundary().as_deref(),
                Some(&*text)
            );
        }
    }
    if let Some(Framing::Multipart(Some(boundary))) = mjpeg::sniff(data) {
        assert!(!boundary.is_empty());
        assert!(
            boundary.bytes().all(|b| (0x20..0x7F).contains(&b)),
            "{boundary:?}"
        );
    }
});
