//! Numbering a frame cluster-wide: appending it to its stream's log in NATS.
//!
//! The log keeps one message per stream: the newest frame, with its `seq` in a header. A node
//! appends frame `seq + 1` only if the log still ends where it last saw it
//! (`Nats-Expected-Last-Subject-Sequence`); if another node appended first, JetStream refuses,
//! and the node reads the newest frame's number and tries again. So however many nodes take
//! frames for one stream, each number is given once and numbers go up in the order the frames
//! were appended — the rule one node keeps with its publish lock, kept by JetStream for all.
//!
//! A node's own producers take turns on the stream's cluster turn, which also remembers where
//! the log stood after this node's last append, so that a lone producer needs one round trip
//! per frame. When NATS cannot be reached, the frame is numbered here, after the newest number
//! this node has seen, so that local viewers are served without a pause.

use std::sync::Arc;
use std::time::Duration;

use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;

use bytes::Bytes;

use super::{Cluster, wire};
use crate::frame::Frame;
use crate::hub::{Hub, Stream};
use crate::shutdown::Shutdown;
use crate::sse::EncodedFrame;
use crate::stream_name::StreamName;

/// How long nodes are given to say how far they have numbered a stream the log has no frame
/// of; paid on a stream's first frame, and after the log lost it.
const RECALL_WINDOW: Duration = Duration::from_millis(50);
/// Most answers read: one per node.
const MAX_ANSWERS: usize = 256;
/// Appends tried before a frame is numbered locally: more than this many other nodes
/// appending to one stream in the same instant is not a case worth waiting for.
const MAX_TRIES: usize = 8;

/// Where a stream's log ends: the message's position in JetStream and the frame's number.
#[derive(Debug, Clone, Copy, Default)]
struct End {
    position: u64,
    seq: u64,
}

impl Cluster {
    /// Numbers `frame` through the cluster, publishes it in `stream` here, and returns it as
    /// encoded for this node's viewers.
    pub async fn publish(&self, stream: &Arc<Stream>, frame: Frame) -> Arc<EncodedFrame> {
        let mut turn = stream.cluster_turn().lock().await;
        for _ in 0..MAX_TRIES {
            if !self.may_append() {
                break;
            }
            let end = match *turn {
                Some(position) => End {
                    position,
                    seq: stream.last_seq(),
                },
                None => match self.log_end(stream).await {
                    Ok(end) => end,
                    Err(reason) => {
                        self.append_failed(&reason);
                        break;
                    }
                },
            };
            let seq = end.seq.max(stream.last_seq()) + 1;
            match self.append(stream, &frame, seq, end.position).await {
                Ok(position) => {
                    self.append_works();
                    *turn = Some(position);
                    return publish_here(stream, &frame, seq);
                }
                Err(Append::Behind) => *turn = None,
                Err(Append::Failed(reason)) => {
                    self.append_failed(&reason);
                    *turn = None;
                    break;
                }
            }
        }
        stream.publish(&frame)
    }

    /// Appends frame `seq` to `stream`'s log if the log still ends at `position`.
    async fn append(
        &self,
        stream: &Stream,
        frame: &Frame,
        seq: u64,
        position: u64,
    ) -> Result<u64, Append> {
        let mut headers = wire::frame_headers(seq, frame);
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            position.to_string().as_str(),
        );
        let subject = wire::frame_subject(&self.prefix, stream.name());
        let sent = self
            .jetstream
            .publish_with_headers(subject, headers, frame.jpeg.clone())
            .await;
        let acked = match sent {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(ack) => Ok(ack.sequence),
            Err(err) => match err.kind() {
                PublishErrorKind::WrongLastSequence => Err(Append::Behind),
                PublishErrorKind::StreamNotFound => {
                    // NATS restarted without its storage: make the log again, then retry.
                    match self.ensure_log().await {
                        Ok(_) => Err(Append::Behind),
                        Err(err) => Err(Append::Failed(err.to_string())),
                    }
                }
                _ => Err(Append::Failed(err.to_string())),
            },
        }
    }

    /// Where `stream`'s log ends now: its newest frame's position and number, or zeros if it
    /// has none.
    async fn log_end(&self, stream: &Stream) -> Result<End, String> {
        let log = self.ensure_log().await.map_err(|err| err.to_string())?;
        let subject = wire::frame_subject(&self.prefix, stream.name());
        match log.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(End {
                position: message.sequence,
                seq: wire::seq_of(Some(&message.headers)).unwrap_or(0),
            }),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(End {
                position: 0,
                seq: self.recall_seq(stream.name()).await,
            }),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The highest number any node has published for `stream`, for a stream the log has no
    /// frame of: a new one (nobody answers: 0), or one the log has lost (NATS restarted
    /// without its storage) or let go (no frame for [`super::LOG_MAX_AGE`]). Numbering then
    /// goes on above what viewers anywhere have already been shown.
    async fn recall_seq(&self, stream: &StreamName) -> u64 {
        let subject = format!("{}-seq.{stream}", self.prefix);
        let answers = self.ask_all(subject, RECALL_WINDOW, MAX_ANSWERS).await;
        answers
            .iter()
            .filter_map(|answer| std::str::from_utf8(answer).ok()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
    }

    /// Until shutdown: tells nodes asking for a stream's highest number what this node has
    /// published of it, if anything.
    pub(super) async fn answer_recalls(self: Arc<Self>, hub: Arc<Hub>, shutdown: Shutdown) {
        let subject = format!("{}-seq.*", self.prefix);
        self.answer_all(subject, shutdown, |asked| {
            let (_, name) = asked.rsplit_once('.')?;
            let seq = hub.find(name)?.last_seq();
            (seq > 0).then(|| Bytes::from(seq.to_string()))
        })
        .await;
    }
}

/// Why an append did not go through.
enum Append {
    /// Another node appended first: read where the log ends, and try again.
    Behind,
    /// NATS could not take it.
    Failed(String),
}

/// Publishes frame `seq` here; if this node's viewers already have it (its own copy came
/// back from the log first), returns that.
fn publish_here(stream: &Stream, frame: &Frame, seq: u64) -> Arc<EncodedFrame> {
    stream
        .publish_numbered(frame, seq)
        .or_else(|| stream.latest_frame().filter(|latest| latest.seq >= seq))
        .unwrap_or_else(|| stream.publish(frame))
}
