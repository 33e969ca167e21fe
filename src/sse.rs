//! The SSE wire format: turns a frame into the exact bytes of its `text/event-stream` event.
//!
//! This runs once per frame, never per subscriber: the result is an immutable `Bytes` that every
//! subscriber's response shares by reference count.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::frame::Frame;
use crate::stream_name::StreamName;

/// The comment sent when a stream has been quiet for the keep-alive interval.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The last event of a stream whose access token has expired: the client should reconnect
/// with a fresh token. The response ends after it.
pub const END_TOKEN_EXPIRED: &[u8] = b"event: end\ndata: {\"reason\":\"token-expired\"}\n\n";

/// One frame, encoded once, in the two shapes a subscriber can ask for, with the frame itself
/// for outputs that need the JPEG as it came (scaled variants, and the outputs to come).
#[derive(Debug)]
pub struct EncodedFrame {
    /// Sequence number of the frame within its stream, from 1.
    pub seq: u64,
    /// The frame: its JPEG, size and receive time.
    pub frame: Frame,
    /// The whole event, JPEG included as base64.
    pub with_jpeg: Bytes,
    /// The same event without the `jpeg` field (`?payload=none`), for debugging with curl.
    pub without_jpeg: Bytes,
    /// The frame as an MJPEG part with lengths, made the first time a viewer needs it.
    mjpeg_part: OnceLock<Bytes>,
    /// The frame as an MJPEG part with headers ahead (browsers), made likewise.
    mjpeg_part_ahead: OnceLock<Bytes>,
}

impl EncodedFrame {
    /// The frame as one part of `GET /mjpeg`'s body, built once for all MJPEG viewers of
    /// that layout (see [`crate::mjpeg::part`]).
    pub fn mjpeg_part(&self, headers_ahead: bool) -> Bytes {
        if headers_ahead {
            self.mjpeg_part_ahead
                .get_or_init(|| crate::mjpeg::part::part_ahead(&self.frame.jpeg))
                .clone()
        } else {
            self.mjpeg_part
                .get_or_init(|| crate::mjpeg::part::part(&self.frame.jpeg))
                .clone()
        }
    }
}

/// The JSON fields of a frame event other than the JPEG itself.
#[derive(Serialize)]
struct FrameMeta<'a> {
    stream: &'a str,
    seq: u64,
    ts: u64,
    width: u16,
    height: u16,
    size: usize,
}

/// Builds both events for `frame`, the `seq`-th frame of `stream`.
pub fn encode_frame(stream: &StreamName, seq: u64, frame: &Frame) -> EncodedFrame {
    let ts = frame.timestamp_ms();
    let meta = FrameMeta {
        stream: stream.as_str(),
        seq,
        ts,
        width: frame.width,
        height: frame.height,
        size: frame.jpeg.len(),
    };
    let meta_json = serde_json::to_string(&meta).expect("plain struct serializes");
    // `meta_json` ends in `}`; the JPEG field is spliced in before it.
    let meta_fields = &meta_json[..meta_json.len() - 1];
    let header = format!("id: {seq}\nevent: frame\ndata: {meta_fields}");

    let without_jpeg = Bytes::from(format!("{header}}}\n\n"));

    let jpeg_prefix = b",\"jpeg\":\"";
    let jpeg_suffix = b"\"}\n\n";
    let base64_len = base64::encoded_len(frame.jpeg.len(), true).expect("frame fits in memory");
    let total = header.len() + jpeg_prefix.len() + base64_len + jpeg_suffix.len();
    let mut event = BytesMut::with_capacity(total);
    event.put_slice(header.as_bytes());
    event.put_slice(jpeg_prefix);
    let start = event.len();
    event.resize(start + base64_len, 0);
    let written = BASE64
        .encode_slice(&frame.jpeg, &mut event[start..])
        .expect("buffer sized by encoded_len");
    debug_assert_eq!(written, base64_len);
    event.put_slice(jpeg_suffix);
    debug_assert_eq!(event.len(), total);

    EncodedFrame {
        seq,
        frame: frame.clone(),
        with_jpeg: event.freeze(),
        without_jpeg,
        mjpeg_part: OnceLock::new(),
        mjpeg_part_ahead: OnceLock::new(),
    }
}

/// The first bytes of every event stream: the reconnect delay clients should use.
pub fn retry(millis: u32) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

/// A `status` event: the state of the source feeding a stream.
pub fn status_event(stream: &StreamName, state: &str, reason: Option<&str>) -> Bytes {
    #[derive(Serialize)]
    struct Status<'a> {
        stream: &'a str,
        state: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    let status = Status {
        stream: stream.as_str(),
        state,
        reason,
    };
    let data = serde_json::to_string(&status).expect("plain struct serializes");
    Bytes::from(format!("event: status\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(jpeg: &'static [u8]) -> Frame {
        Frame {
            jpeg: Bytes::from_static(jpeg),
            width: 640,
            height: 480,
            received_at: std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(1_764_000_000_123),
        }
    }

    #[test]
    fn frame_event_matches_the_documented_wire_format() {
        let name = StreamName::parse(Some("cam")).unwrap();
        let encoded = encode_frame(&name, 42, &frame(b"\xff\xd8\xff\xd9"));
        assert_eq!(
            std::str::from_utf8(&encoded.with_jpeg).unwrap(),
            "id: 42\nevent: frame\ndata: {\"stream\":\"cam\",\"seq\":42,\"ts\":1764000000123,\
             \"width\":640,\"height\":480,\"size\":4,\"jpeg\":\"/9j/2Q==\"}\n\n"
        );
        assert_eq!(
            std::str::from_utf8(&encoded.without_jpeg).unwrap(),
            "id: 42\nevent: frame\ndata: {\"stream\":\"cam\",\"seq\":42,\"ts\":1764000000123,\
             \"width\":640,\"height\":480,\"size\":4}\n\n"
        );
    }

    #[test]
    fn the_event_is_one_data_line_whatever_the_bytes() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let frame = Frame {
            jpeg: Bytes::from(bytes.clone()),
            ..frame(b"")
        };
        let encoded = encode_frame(&StreamName::parse(None).unwrap(), 1, &frame);
        let text = std::str::from_utf8(&encoded.with_jpeg).unwrap();
        assert_eq!(
            text.matches('\n').count(),
            4,
            "id, event, data lines and the blank line"
        );
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        let json: serde_json::Value = serde_json::from_str(data).unwrap();
        let decoded = BASE64.decode(json["jpeg"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, bytes);
    }

    #[test]
    fn status_event_omits_nothing_a_page_needs() {
        let name = StreamName::parse(Some("cam")).unwrap();
        let event = status_event(&name, "offline", Some("connection refused"));
        assert_eq!(
            std::str::from_utf8(&event).unwrap(),
            "event: status\ndata: {\"stream\":\"cam\",\"state\":\"offline\",\"reason\":\"connection refused\"}\n\n"
        );
    }
}
