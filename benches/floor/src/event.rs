//! A frame's bytes on the wire, built once for every subscriber: framecast's SSE event wrapped as
//! one HTTP/1.1 chunk. Pure code, no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// One buffer written, unchanged, to every subscriber.
#[derive(Debug)]
pub struct Shared {
    /// The frame's sequence number in its stream; 0 for what precedes the first frame.
    pub seq: u64,
    /// The bytes, chunk framing included.
    pub bytes: Vec<u8>,
}

/// What a frame event says about its frame, besides the JPEG.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// Stream name (already validated: it needs no JSON escaping).
    pub stream: &'a str,
    /// Sequence number, from 1.
    pub seq: u64,
    /// Receive time, ms since the Unix epoch.
    pub ts: u64,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

/// The chunk carrying the frame event framecast sends for `jpeg`: the same
/// `id: N\nevent: frame\ndata: {"stream":…,"seq":…,"ts":…,"width":…,"height":…,"size":…,"jpeg":"<base64>"}\n\n`,
/// framed as framecast frames it (`{len:X}\r\n`, the event, `\r\n`).
pub fn frame_chunk(meta: Meta<'_>, jpeg: &[u8]) -> Vec<u8> {
    let Meta {
        stream,
        seq,
        ts,
        width,
        height,
    } = meta;
    let head = format!(
        "id: {seq}\nevent: frame\ndata: {{\"stream\":\"{stream}\",\"seq\":{seq},\"ts\":{ts},\
         \"width\":{width},\"height\":{height},\"size\":{},\"jpeg\":\"",
        jpeg.len()
    );
    let tail = b"\"}\n\n";
    let base64_len = base64::encoded_len(jpeg.len(), true).expect("a frame fits in memory");
    let event_len = head.len() + base64_len + tail.len();
    let size_line = format!("{event_len:X}\r\n");

    let mut bytes = Vec::with_capacity(size_line.len() + event_len + 2);
    bytes.extend_from_slice(size_line.as_bytes());
    bytes.extend_from_slice(head.as_bytes());
    let start = bytes.len();
    bytes.resize(start + base64_len, 0);
    let written = BASE64
        .encode_slice(jpeg, &mut bytes[start..])
        .expect("buffer sized by encoded_len");
    debug_assert_eq!(written, base64_len);
    bytes.extend_from_slice(tail);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// `data` as one chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{:X}\r\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_chunk_carries_framecasts_documented_event() {
        // The event framecast's `sse::encode_frame` test documents, byte for byte.
        let event = "id: 42\nevent: frame\ndata: {\"stream\":\"cam\",\"seq\":42,\"ts\":1764000000123,\
                     \"width\":640,\"height\":480,\"size\":4,\"jpeg\":\"/9j/2Q==\"}\n\n";
        let meta = Meta {
            stream: "cam",
            seq: 42,
            ts: 1_764_000_000_123,
            width: 640,
            height: 480,
        };
        let bytes = frame_chunk(meta, b"\xff\xd8\xff\xd9");
        assert_eq!(bytes, chunk(event.as_bytes()));
        assert_eq!(event.len(), 0x7C);
        assert!(
            bytes.starts_with(b"7C\r\n"),
            "upper-case hex size line, as framecast writes it"
        );
    }
}
