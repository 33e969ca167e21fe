//! `Output`: the ways a subscriber reads a stream, and what a stream counts for each.
//!
//! The counters are bumped where frames already go out (once per frame sent, never per byte),
//! so `GET /metrics` and `GET /streams` can tell SSE from MJPEG from snapshots at no cost worth
//! measuring.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::ser::{Serialize, SerializeMap, Serializer};

/// How a subscriber reads a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `GET /events`: Server-Sent Events.
    Events,
    /// `GET /mjpeg`: `multipart/x-mixed-replace`.
    Mjpeg,
    /// `GET /snapshot`: one JPEG, perhaps after waiting for it.
    Snapshot,
}

impl Output {
    /// Every output, in the order counters are kept.
    pub const ALL: [Output; 3] = [Output::Events, Output::Mjpeg, Output::Snapshot];

    /// Its name in `GET /streams` and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Events => "sse",
            Output::Mjpeg => "mjpeg",
            Output::Snapshot => "snapshot",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A stream's counters for each output.
#[derive(Debug, Default)]
pub(super) struct OutputCounters([Counters; Output::ALL.len()]);

#[derive(Debug, Default)]
struct Counters {
    subscribers: AtomicUsize,
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// What one output of a stream has done, for `GET /streams` and `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct OutputSummary {
    /// Its subscribers now.
    pub subscribers: usize,
    /// Frames sent, summed over its subscribers.
    pub frames: u64,
    /// Bytes of those frames as sent (an SSE event, an MJPEG part, a JPEG).
    pub bytes: u64,
}

impl OutputCounters {
    pub(super) fn join(&self, output: Output) {
        self.0[output.index()]
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn leave(&self, output: Output) {
        self.0[output.index()]
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn sent(&self, output: Output, bytes: usize) {
        let counters = &self.0[output.index()];
        counters.frames.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Every output's counters, as of now.
    pub(super) fn summary(&self) -> Outputs {
        Outputs(std::array::from_fn(|index| {
            let counters = &self.0[index];
            OutputSummary {
                subscribers: counters.subscribers.load(Ordering::Relaxed),
                frames: counters.frames.load(Ordering::Relaxed),
                bytes: counters.bytes.load(Ordering::Relaxed),
            }
        }))
    }
}

/// Every output's [`OutputSummary`]; shown as an object keyed by output name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outputs([OutputSummary; Output::ALL.len()]);

impl Outputs {
    /// The counters of `output`.
    pub fn get(&self, output: Output) -> OutputSummary {
        self.0[output.index()]
    }
}

impl Serialize for Outputs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Output::ALL.len()))?;
        for output in Output::ALL {
            map.serialize_entry(output.as_str(), &self.get(output))?;
        }
        map.end()
    }
}
