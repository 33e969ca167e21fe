//! Publishing: the one way bytes from any producer become a frame in a stream.
//!
//! Every candidate JPEG — an upload, a piece cut out of an MJPEG body, a file, a rendered test
//! pattern — goes through [`publish_jpeg`]: validated as a [`Frame`], then published, or counted
//! as rejected. [`SplitPublisher`] does the same for a continuous byte stream, cutting it up
//! with the [`Splitter`] and publishing each frame the moment it is complete; a bad frame never
//! stops the stream.

use std::sync::Arc;

use bytes::Bytes;

use crate::frame::Frame;
use crate::hub::Stream;
use crate::jpeg::JpegError;
use crate::mjpeg::{Framing, Piece, Splitter};
use crate::sse::EncodedFrame;

/// Validates `jpeg` and publishes it into `stream`, or counts it as rejected there.
pub fn publish_jpeg(stream: &Stream, jpeg: Bytes) -> Result<Arc<EncodedFrame>, JpegError> {
    match Frame::from_jpeg(jpeg) {
        Ok(frame) => Ok(stream.publish(&frame)),
        Err(err) => {
            stream.record_rejected();
            Err(err)
        }
    }
}

/// Publishes a piece a splitter found: a frame if it validates; otherwise it is counted as
/// rejected and the reason returned.
pub fn publish_piece(stream: &Stream, piece: Piece) -> Result<Arc<EncodedFrame>, String> {
    let outcome = match piece {
        Piece::Frame(jpeg) => publish_jpeg(stream, jpeg).map_err(|err| err.to_string()),
        Piece::Rejected(reason) => {
            stream.record_rejected();
            Err(reason)
        }
    };
    if let Err(reason) = &outcome {
        tracing::debug!(stream = %stream.name(), %reason, "frame rejected");
    }
    outcome
}

/// Splits, validates and publishes one continuous stream of frames into one stream.
#[derive(Debug)]
pub struct SplitPublisher {
    splitter: Splitter,
    stream: Arc<Stream>,
    /// Frames published so far.
    pub frames: u64,
    /// Frames refused so far.
    pub rejected: u64,
    /// Why the first refused frame was refused.
    pub first_reason: Option<String>,
}

impl SplitPublisher {
    /// Starts a byte stream with the given framing into `stream`.
    pub fn new(framing: Framing, max_frame_bytes: usize, stream: Arc<Stream>) -> Self {
        Self::splitting(Splitter::new(framing, max_frame_bytes), stream)
    }

    /// Starts a byte stream whose first bytes tell its framing ([`Splitter::sniffing`]).
    pub fn sniffing(max_frame_bytes: usize, stream: Arc<Stream>) -> Self {
        Self::splitting(Splitter::sniffing(max_frame_bytes), stream)
    }

    fn splitting(splitter: Splitter, stream: Arc<Stream>) -> Self {
        SplitPublisher {
            splitter,
            stream,
            frames: 0,
            rejected: 0,
            first_reason: None,
        }
    }

    /// Feeds the next bytes and publishes every frame they complete.
    pub fn push(&mut self, chunk: &[u8]) {
        self.splitter.push(chunk);
        while let Some(piece) = self.splitter.next_piece() {
            self.take(piece);
        }
    }

    /// Bytes held for the frame not yet complete.
    pub fn buffered_bytes(&self) -> usize {
        self.splitter.buffered_bytes()
    }

    /// Ends the byte stream: whatever is left over is published or counted as rejected.
    pub fn finish(&mut self) {
        while let Some(piece) = self.splitter.finish() {
            self.take(piece);
        }
    }

    fn take(&mut self, piece: Piece) {
        match publish_piece(&self.stream, piece) {
            Ok(_) => self.frames += 1,
            Err(reason) => {
                self.rejected += 1;
                self.first_reason.get_or_insert(reason);
            }
        }
    }
}
