//! Publishing: the one way bytes from any producer become a frame in a stream.
//!
//! Every candidate JPEG — an upload, a piece cut out of an MJPEG body, a file, a rendered test
//! pattern — goes through [`publish_jpeg`]: validated as a [`Frame`], then published, or counted
//! as rejected. [`SplitPublisher`] does the same for a continuous byte stream, cutting it up
//! with the [`Splitter`] and publishing each frame the moment it is complete; a bad frame never
//! stops the stream.
//!
//! A producer holds a [`Publisher`]: on one node it numbers frames in its stream at once; in a
//! cluster it has the cluster number them first, so that every node shows one sequence.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::hub::Stream;
use crate::jpeg::JpegError;
use crate::mjpeg::{Framing, Piece, Splitter};
use crate::sse::EncodedFrame;

/// A producer's way into its stream: straight in, or through the cluster when there is one.
#[derive(Debug, Clone)]
pub struct Publisher {
    stream: Arc<Stream>,
    cluster: Option<Arc<Cluster>>,
    /// Viewers wanting the stream, when more than this node's count (in a cluster).
    demand: Option<watch::Receiver<usize>>,
}

impl Publisher {
    /// Publishes into `stream`, through `cluster` if this node is part of one.
    pub fn new(stream: Arc<Stream>, cluster: Option<Arc<Cluster>>) -> Publisher {
        Publisher {
            stream,
            cluster,
            demand: None,
        }
    }

    /// The same, with the stream's viewers counted by `demand` rather than on this node.
    pub fn with_demand(self, demand: watch::Receiver<usize>) -> Publisher {
        Publisher {
            demand: Some(demand),
            ..self
        }
    }

    /// Publishes into `stream` on this node alone.
    pub fn local(stream: Arc<Stream>) -> Publisher {
        Publisher::new(stream, None)
    }

    /// The stream published to.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Viewers wanting the stream, as they come and go: a camera is connected while there
    /// are any.
    pub fn demand(&self) -> watch::Receiver<usize> {
        match &self.demand {
            Some(demand) => demand.clone(),
            None => self.stream.subscriber_count(),
        }
    }

    /// Numbers `frame` (on this node, or cluster-wide) and makes it the stream's newest frame.
    pub async fn publish(&self, frame: Frame) -> Arc<EncodedFrame> {
        match &self.cluster {
            Some(cluster) => cluster.publish(&self.stream, frame).await,
            None => self.stream.publish(&frame),
        }
    }
}

/// Validates `jpeg` and publishes it, or counts it as rejected in the stream.
pub async fn publish_jpeg(
    publisher: &Publisher,
    jpeg: Bytes,
) -> Result<Arc<EncodedFrame>, JpegError> {
    match Frame::from_jpeg(jpeg) {
        Ok(frame) => Ok(publisher.publish(frame).await),
        Err(err) => {
            publisher.stream.record_rejected();
            Err(err)
        }
    }
}

/// Publishes a piece a splitter found: a frame if it validates; otherwise it is counted as
/// rejected and the reason returned.
pub async fn publish_piece(
    publisher: &Publisher,
    piece: Piece,
) -> Result<Arc<EncodedFrame>, String> {
    let outcome = match piece {
        Piece::Frame(jpeg) => publish_jpeg(publisher, jpeg)
            .await
            .map_err(|err| err.to_string()),
        Piece::Rejected(reason) => {
            publisher.stream.record_rejected();
            Err(reason)
        }
    };
    if let Err(reason) = &outcome {
        tracing::debug!(stream = %publisher.stream.name(), %reason, "frame rejected");
    }
    outcome
}

/// Splits, validates and publishes one continuous stream of frames into one stream.
#[derive(Debug)]
pub struct SplitPublisher {
    splitter: Splitter,
    publisher: Publisher,
    /// Frames published so far.
    pub frames: u64,
    /// Frames refused so far.
    pub rejected: u64,
    /// Why the first refused frame was refused.
    pub first_reason: Option<String>,
}

impl SplitPublisher {
    /// Starts a byte stream with the given framing into `publisher`'s stream.
    pub fn new(framing: Framing, max_frame_bytes: usize, publisher: Publisher) -> Self {
        Self::splitting(Splitter::new(framing, max_frame_bytes), publisher)
    }

    /// Starts a byte stream whose first bytes tell its framing ([`Splitter::sniffing`]).
    pub fn sniffing(max_frame_bytes: usize, publisher: Publisher) -> Self {
        Self::splitting(Splitter::sniffing(max_frame_bytes), publisher)
    }

    fn splitting(splitter: Splitter, publisher: Publisher) -> Self {
        SplitPublisher {
            splitter,
            publisher,
            frames: 0,
            rejected: 0,
            first_reason: None,
        }
    }

    /// Feeds the next bytes and publishes every frame they complete.
    pub async fn push(&mut self, chunk: &[u8]) {
        self.splitter.push(chunk);
        while let Some(piece) = self.splitter.next_piece() {
            self.take(piece).await;
        }
    }

    /// Bytes held for the frame not yet complete.
    pub fn buffered_bytes(&self) -> usize {
        self.splitter.buffered_bytes()
    }

    /// Ends the byte stream: whatever is left over is published or counted as rejected.
    pub async fn finish(&mut self) {
        while let Some(piece) = self.splitter.finish() {
            self.take(piece).await;
        }
    }

    async fn take(&mut self, piece: Piece) {
        match publish_piece(&self.publisher, piece).await {
            Ok(_) => self.frames += 1,
            Err(reason) => {
                self.rejected += 1;
                self.first_reason.get_or_insert(reason);
            }
        }
    }
}
