//! `SplitPublisher`: turns a byte stream into published frames, shared by uploads and sources.
//!
//! Bytes go through the [`Splitter`]; each piece is validated as a [`Frame`] and published the
//! moment it is complete, or counted as rejected. A bad frame never stops the stream.

use std::sync::Arc;

use crate::frame::Frame;
use crate::hub::Channel;
use crate::mjpeg::{Framing, Piece, Splitter};

/// Splits, validates and publishes one continuous stream of frames into one channel.
#[derive(Debug)]
pub struct SplitPublisher {
    splitter: Splitter,
    channel: Arc<Channel>,
    /// Frames published so far.
    pub frames: u64,
    /// Frames refused so far.
    pub rejected: u64,
    /// Why the first refused frame was refused.
    pub first_reason: Option<String>,
}

impl SplitPublisher {
    /// Starts a stream with the given framing into `channel`.
    pub fn new(framing: Framing, max_frame_bytes: usize, channel: Arc<Channel>) -> Self {
        Self::splitting(Splitter::new(framing, max_frame_bytes), channel)
    }

    /// Starts a stream whose first bytes tell its framing ([`Splitter::sniffing`]).
    pub fn sniffing(max_frame_bytes: usize, channel: Arc<Channel>) -> Self {
        Self::splitting(Splitter::sniffing(max_frame_bytes), channel)
    }

    fn splitting(splitter: Splitter, channel: Arc<Channel>) -> Self {
        SplitPublisher {
            splitter,
            channel,
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

    /// Ends the stream: whatever is left over is published or counted as rejected.
    pub fn finish(&mut self) {
        while let Some(piece) = self.splitter.finish() {
            self.take(piece);
        }
    }

    fn take(&mut self, piece: Piece) {
        let outcome = match piece {
            Piece::Frame(bytes) => Frame::from_jpeg(bytes).map_err(|err| err.to_string()),
            Piece::Rejected(reason) => Err(reason),
        };
        match outcome {
            Ok(frame) => {
                self.channel.publish(&frame);
                self.frames += 1;
            }
            Err(reason) => {
                tracing::debug!(stream = %self.channel.name(), %reason, "frame rejected");
                self.channel.record_rejected();
                self.rejected += 1;
                self.first_reason.get_or_insert(reason);
            }
        }
    }
}
