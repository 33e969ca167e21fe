//! `Status`: what a stream's source is doing, as viewers are told it in `event: status`.
//!
//! A page showing a camera should be able to say "camera offline" rather than freeze on the
//! last picture. Each stream keeps its current [`Status`] — a [`State`] and a reason — with the
//! `event: status` bytes already encoded, so a change costs one encoding however many viewers
//! hear of it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::sse;
use crate::stream_name::StreamName;

/// The state of a stream's source: the `state` field of `event: status` and `GET /streams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not delivering yet: connecting to a camera, or waiting for the first frame.
    Connecting,
    /// Frames are arriving.
    Live,
    /// Connected, but no frame for a while; the last frame stays available.
    Stalled,
    /// Unreachable or ended; a camera source keeps retrying.
    Offline,
}

impl State {
    /// The name used in `event: status` and `GET /streams`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Live => "live",
            State::Stalled => "stalled",
            State::Offline => "offline",
        }
    }
}

/// A stream's current state, with its reason and its encoded `event: status`.
#[derive(Debug, Clone)]
pub struct Status {
    /// The state.
    pub state: State,
    /// Why, when there is more to say than the state (e.g. the connection error).
    pub reason: Option<String>,
    /// The `event: status` bytes every viewer is sent.
    pub event: Bytes,
}

impl Status {
    /// `state` of stream `stream` for `reason`, encoded once.
    pub fn new(stream: &StreamName, state: State, reason: Option<String>) -> Status {
        let event = sse::status_event(stream, state.as_str(), reason.as_deref());
        Status {
            state,
            reason,
            event,
        }
    }

    /// Whether this is already `state` for `reason`, so that nothing needs to be sent.
    pub fn is(&self, state: State, reason: Option<&str>) -> bool {
        self.state == state && self.reason.as_deref() == reason
    }
}
