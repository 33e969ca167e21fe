//! `StreamSummary`: one stream as `GET /streams` reports it. The field names are the wire format.

use serde::Serialize;

use super::output::Outputs;
use super::stream::SourceKind;
use super::variant::VariantSummary;
use crate::status::State;

/// A stream's counters and newest frame, for `GET /streams`.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// The stream's name.
    pub name: String,
    /// What feeds it.
    pub source: SourceKind,
    /// What the source is doing.
    pub state: State,
    /// Why, if there is more to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Frames published so far.
    pub published: u64,
    /// Frames refused (invalid, truncated, too large).
    pub rejected: u64,
    /// Open subscribers, whatever their output.
    pub subscribers: usize,
    /// Frames that subscribers skipped because they were behind, summed over all of them.
    pub skipped: u64,
    /// Times the source tried again after a failure (a camera reconnecting).
    pub reconnects: u64,
    /// Subscribers and frames sent, by output (`sse`, `mjpeg`, `snapshot`).
    pub outputs: Outputs,
    /// Ingest frame rate over the last couple of seconds.
    pub fps: f64,
    /// Age of the newest frame, in milliseconds.
    pub age_ms: Option<u64>,
    /// Width of the newest frame.
    pub width: Option<u16>,
    /// Height of the newest frame.
    pub height: Option<u16>,
    /// Scaled variants being watched (`?width=`), each scaled once for all its viewers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantSummary>,
}
