//! `SplitPublisher`: turns a byte stream into published frames, shared by uploads and sources.
//!
//! Bytes go through the [`Splitter`]; each piece is validated as a [`Frame`] and published the
//! moment it is complete, or counted as rejected. A bad frame never stops the stream.

use std::sync::Arc;

use crate::frame::Frame;
use crate::hub::Channel;
use crate::mjpeg::{self, Framing, Piece, Splitter};

/// Splits, validates and publishes one continuous stream of frames into one channel.
#[derive(Debug)]
pub struct SplitPublisher {
    /// `None` until the first bytes have told the framing (see [`SplitPublisher::sniffing`]).
    splitter: Option<Splitter>,
    /// The first bytes, kept while the framing is unknown.
    head: Vec<u8>,
    max_frame_bytes: usize,
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
        SplitPublisher {
            splitter: Some(Splitter::new(framing, max_frame_bytes)),
            head: Vec::new(),
            max_frame_bytes,
            channel,
            frames: 0,
            rejected: 0,
            first_reason: None,
        }
    }

    /// Starts a stream whose first bytes tell its framing: a `--boundary` line means multipart,
    /// anything else bare JPEGs (whose splitter resynchronises on the next start-of-image).
    pub fn sniffing(max_frame_bytes: usize, channel: Arc<Channel>) -> Self {
        let mut publisher = SplitPublisher::new(Framing::Concatenated, max_frame_bytes, channel);
        publisher.splitter = None;
        publisher
    }

    /// Feeds the next bytes and publishes every frame they complete.
    pub fn push(&mut self, chunk: &[u8]) {
        let Some(splitter) = self.splitter.as_mut() else {
            self.head.extend_from_slice(chunk);
            let framing = match mjpeg::sniff(&self.head) {
                Some(framing) => framing,
                None if self.head.len() >= mjpeg::SNIFF_BYTES => Framing::Concatenated,
                None => return,
            };
            self.splitter = Some(Splitter::new(framing, self.max_frame_bytes));
            let head = std::mem::take(&mut self.head);
            return self.push(&head);
        };
        splitter.push(chunk);
        while let Some(piece) = self.splitter.as_mut().and_then(Splitter::next_piece) {
            self.take(piece);
        }
    }

    /// Ends the stream: whatever is left over is published or counted as rejected.
    pub fn finish(&mut self) {
        let splitter = self
            .splitter
            .get_or_insert_with(|| Splitter::new(Framing::Concatenated, self.max_frame_bytes));
        splitter.push(&std::mem::take(&mut self.head));
        while let Some(piece) = self.splitter.as_mut().and_then(Splitter::finish) {
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
