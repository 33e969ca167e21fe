//! What framecast's NATS messages look like: their subjects and headers.
//!
//! A frame is one message on `PREFIX.NAME.frame` whose payload is the JPEG, exactly as the
//! first node received it, with its number and receive time in headers; a source's status is
//! a small JSON message on `PREFIX.NAME.status`. Stream names are single subject tokens by
//! construction (`A-Z a-z 0-9 _ -`), so they need no escaping.

use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::frame::Frame;
use crate::status::State;
use crate::stream_name::StreamName;

/// Header with the frame's `seq`, the same on every node.
pub const SEQ: &str = "Framecast-Seq";
/// Header with the frame's receive time (`ts`, milliseconds since the Unix epoch).
pub const TS: &str = "Framecast-Ts";

/// What a message on a stream's log carries.
#[derive(Debug)]
pub enum Entry {
    /// A frame and its number.
    Frame(Frame, u64),
    /// A source's new status.
    Status(StatusMessage),
}

/// A source's status, as the node running it tells the others.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusMessage {
    /// The node running the source.
    pub node: String,
    /// The state.
    pub state: State,
    /// Why, if there is more to say.
    pub reason: Option<String>,
}

/// The subjects the frame log keeps: every stream's frames and statuses.
pub fn log_subjects(prefix: &str) -> Vec<String> {
    vec![format!("{prefix}.*.*")]
}

/// The subject where nodes say how many viewers of `stream` they have: outside the log's
/// subjects, as it is not kept.
pub fn demand_subject(prefix: &str, stream: &StreamName) -> String {
    format!("{prefix}-demand.{stream}")
}

/// The subject of `stream`'s frames.
pub fn frame_subject(prefix: &str, stream: &StreamName) -> String {
    format!("{prefix}.{stream}.frame")
}

/// The subject of `stream`'s statuses.
pub fn status_subject(prefix: &str, stream: &StreamName) -> String {
    format!("{prefix}.{stream}.status")
}

/// Both of `stream`'s subjects, for following it.
pub fn stream_subjects(prefix: &str, stream: &StreamName) -> String {
    format!("{prefix}.{stream}.*")
}

/// The headers of frame number `seq`.
pub fn frame_headers(seq: u64, frame: &Frame) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SEQ, seq.to_string().as_str());
    headers.insert(TS, frame.timestamp_ms().to_string().as_str());
    headers
}

/// The frame number in `headers`, if they carry one.
pub fn seq_of(headers: Option<&HeaderMap>) -> Option<u64> {
    number(headers?, SEQ)
}

/// Reads a message from a stream's log: a frame (validated again, as everything entering a
/// hub is) or a status.
pub fn read(subject: &str, headers: Option<&HeaderMap>, payload: Bytes) -> Result<Entry, String> {
    if subject.ends_with(".frame") {
        let headers = headers.ok_or("a frame message without headers")?;
        let seq = number(headers, SEQ).ok_or("a frame message without Framecast-Seq")?;
        let ts = number(headers, TS).ok_or("a frame message without Framecast-Ts")?;
        let frame = Frame::from_jpeg(payload).map_err(|err| err.to_string())?;
        Ok(Entry::Frame(frame.received_at_ms(ts), seq))
    } else if subject.ends_with(".status") {
        serde_json::from_slice(&payload)
            .map(Entry::Status)
            .map_err(|err| format!("a status message that is not one: {err}"))
    } else {
        Err(format!("a message on an unknown subject {subject:?}"))
    }
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::samples;

    #[test]
    fn a_frame_reads_back_with_its_number_and_time() {
        let frame = Frame::from_jpeg(Bytes::from(samples::sample_jpeg(16, 16, 1)))
            .unwrap()
            .received_at_ms(1_700_000_000_123);
        let headers = frame_headers(42, &frame);
        let stream = StreamName::parse(Some("cam-1")).unwrap();
        let subject = frame_subject("framecast", &stream);
        assert_eq!(subject, "framecast.cam-1.frame");
        let Entry::Frame(read_back, seq) =
            read(&subject, Some(&headers), frame.jpeg.clone()).unwrap()
        else {
            panic!("not a frame")
        };
        assert_eq!(seq, 42);
        assert_eq!(read_back.timestamp_ms(), 1_700_000_000_123);
        assert_eq!(read_back.jpeg, frame.jpeg);
    }

    #[test]
    fn a_frame_message_must_be_a_jpeg_and_numbered() {
        let stream = StreamName::parse(Some("cam")).unwrap();
        let subject = frame_subject("framecast", &stream);
        assert!(read(&subject, None, Bytes::from(samples::sample_jpeg(16, 16, 1))).is_err());
        let mut headers = HeaderMap::new();
        headers.insert(SEQ, "1");
        headers.insert(TS, "1");
        assert!(read(&subject, Some(&headers), Bytes::from_static(b"not a jpeg")).is_err());
    }

    #[test]
    fn statuses_read_back() {
        let stream = StreamName::parse(Some("cam")).unwrap();
        let message = StatusMessage {
            node: "a".into(),
            state: State::Offline,
            reason: Some("connection refused".into()),
        };
        let payload = Bytes::from(serde_json::to_vec(&message).unwrap());
        let Entry::Status(read_back) = read(&status_subject("fc", &stream), None, payload).unwrap()
        else {
            panic!("not a status")
        };
        assert_eq!(read_back.state, State::Offline);
        assert_eq!(read_back.reason.as_deref(), Some("connection refused"));
    }
}
