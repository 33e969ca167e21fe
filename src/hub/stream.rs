//! `Stream`: one named stream — where its frames are numbered, encoded once and published.
//!
//! Publishing holds the stream's publish lock while a frame is numbered, encoded and stored,
//! so `seq` order is delivery order, then replaces the [`Latest`] slot without waiting for any
//! subscriber. Status changes go through the same slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::output::{Output, OutputCounters};
use super::rate::FrameRate;
use super::summary::StreamSummary;
use super::variant::{Variant, VariantSummary};
use crate::frame::Frame;
use crate::sse::{self, EncodedFrame};
use crate::status::{State, Status};
use crate::stream_name::StreamName;

/// What feeds a stream. A stream fed by a built-in source refuses pushed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Frames arrive through `POST /frames`.
    Push,
    /// The built-in test pattern.
    TestPattern,
    /// Frames read from standard input.
    Stdin,
    /// A camera (or any HTTP server) pulled over HTTP.
    Camera,
    /// An MJPEG file or a folder of JPEGs, replayed.
    File,
}

impl SourceKind {
    /// A name for messages and the status page.
    pub fn describe(self) -> &'static str {
        match self {
            SourceKind::Push => "pushed frames",
            SourceKind::TestPattern => "built-in test pattern",
            SourceKind::Stdin => "standard input",
            SourceKind::Camera => "camera",
            SourceKind::File => "file replay",
        }
    }
}

/// What a stream's subscribers watch: its newest frame and its status, in one slot.
#[derive(Debug, Clone)]
pub struct Latest {
    /// The newest frame, or `None` before the first one.
    pub frame: Option<Arc<EncodedFrame>>,
    /// What the source is doing; a new `Arc` for each change, so a subscriber can tell.
    pub status: Arc<Status>,
}

/// One stream: its slot, its numbering and its counters.
#[derive(Debug)]
pub struct Stream {
    name: StreamName,
    source: SourceKind,
    created: Instant,
    /// The newest encoded frame and the status; sending never fails or waits, even with no
    /// receivers.
    latest: watch::Sender<Latest>,
    /// Held while a frame is numbered, encoded and stored, so `seq` order is delivery order.
    publishing: Mutex<Publishing>,
    published: AtomicU64,
    rejected: AtomicU64,
    skipped: AtomicU64,
    /// Times the source tried again after a failure (a camera reconnecting).
    reconnects: AtomicU64,
    /// Subscribers and frames sent, by output.
    outputs: OutputCounters,
    /// Open subscribers; a camera source watches it to connect on demand.
    subscribers: watch::Sender<usize>,
    /// Whether a producer has asked for the stream; changed only under the hub's lock.
    claimed: AtomicBool,
    /// Its scaled variants by width, alive while somebody watches them.
    variants: Mutex<HashMap<u16, Weak<Variant>>>,
    /// Taken while one of this node's frames is numbered through the cluster, so that its own
    /// producers take turns; holds where the cluster's log of this stream stood after the last
    /// one (see `cluster::sequence`).
    cluster_turn: tokio::sync::Mutex<Option<u64>>,
}

/// The numbering and the publish times, changed together under the publish lock.
#[derive(Debug, Default)]
struct Publishing {
    seq: u64,
    rate: FrameRate,
}

impl Stream {
    pub(super) fn new(name: StreamName, source: SourceKind) -> Stream {
        let reason = match source {
            SourceKind::Push => Some("waiting for frames to be pushed".into()),
            _ => None,
        };
        let status = Status::new(&name, State::Connecting, reason);
        Stream {
            name,
            source,
            created: Instant::now(),
            latest: watch::Sender::new(Latest {
                frame: None,
                status: Arc::new(status),
            }),
            publishing: Mutex::new(Publishing::default()),
            published: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            outputs: OutputCounters::default(),
            subscribers: watch::Sender::new(0),
            claimed: AtomicBool::new(false),
            variants: Mutex::default(),
            cluster_turn: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether a producer (an upload or a source) has asked for the stream, rather than only
    /// viewers waiting for one.
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }

    /// Marks the stream as asked for by a producer.
    pub(super) fn claim(&self) {
        self.claimed.store(true, Ordering::Relaxed);
    }

    /// The stream's name.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// What feeds the stream.
    pub fn source(&self) -> SourceKind {
        self.source
    }

    /// Numbers `frame`, encodes it once, and makes it every subscriber's newest frame.
    /// Never waits for subscribers.
    pub fn publish(&self, frame: &Frame) -> Arc<EncodedFrame> {
        let mut publishing = self.publishing.lock().expect("publish lock poisoned");
        let seq = publishing.seq + 1;
        self.store(&mut publishing, frame, seq)
    }

    /// Publishes `frame` as number `seq`, given to it elsewhere (by the cluster), unless a
    /// frame numbered `seq` or later is already out: numbers only ever go up.
    pub fn publish_numbered(&self, frame: &Frame, seq: u64) -> Option<Arc<EncodedFrame>> {
        let mut publishing = self.publishing.lock().expect("publish lock poisoned");
        (seq > publishing.seq).then(|| self.store(&mut publishing, frame, seq))
    }

    /// The number of the newest frame published, 0 before the first.
    pub fn last_seq(&self) -> u64 {
        self.publishing.lock().expect("publish lock poisoned").seq
    }

    /// The newest frame, if there is one.
    pub fn latest_frame(&self) -> Option<Arc<EncodedFrame>> {
        self.latest.borrow().frame.clone()
    }

    /// Where this node's turn to number a frame through the cluster is taken.
    pub fn cluster_turn(&self) -> &tokio::sync::Mutex<Option<u64>> {
        &self.cluster_turn
    }

    /// Encodes `frame` as number `seq` and stores it in the slot, under the publish lock.
    fn store(&self, publishing: &mut Publishing, frame: &Frame, seq: u64) -> Arc<EncodedFrame> {
        publishing.seq = seq;
        let encoded = Arc::new(sse::encode_frame(&self.name, seq, frame));
        publishing.rate.record(Instant::now());
        self.latest.send_modify(|latest| {
            latest.frame = Some(encoded.clone());
            if latest.status.state != State::Live {
                latest.status = self.announce(State::Live, None);
            }
        });
        self.published.fetch_add(1, Ordering::Relaxed);
        encoded
    }

    /// Tells viewers the source is now `state` (for `reason`), unless they already know.
    pub fn set_status(&self, state: State, reason: Option<&str>) {
        self.latest.send_if_modified(|latest| {
            if latest.status.is(state, reason) {
                return false;
            }
            latest.status = self.announce(state, reason);
            true
        });
    }

    /// The new status, logged and encoded once for every viewer.
    fn announce(&self, state: State, reason: Option<&str>) -> Arc<Status> {
        tracing::info!(stream = %self.name, state = state.as_str(), reason, "source state");
        Arc::new(Status::new(&self.name, state, reason.map(str::to_owned)))
    }

    /// The source's current state.
    pub fn state(&self) -> State {
        self.latest.borrow().status.state
    }

    /// The number of open subscribers, updated as they come and go.
    pub fn subscriber_count(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
    }

    /// Counts a frame that failed validation and was not broadcast.
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts frames a subscriber skipped because it was behind.
    pub fn record_skipped(&self, frames: u64) {
        self.skipped.fetch_add(frames, Ordering::Relaxed);
    }

    /// Counts another try after the source failed (a camera reconnecting).
    pub fn record_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a frame of `bytes` sent to one subscriber through `output`.
    pub fn record_sent(&self, output: Output, bytes: usize) {
        self.outputs.sent(output, bytes);
    }

    /// Frames published so far.
    pub fn published_count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// One more subscriber counted, reading through `output`.
    pub(super) fn join(&self, output: Output) {
        self.outputs.join(output);
        self.subscribers.send_modify(|count| *count += 1);
    }

    /// A new receiver of the slot (not counted as a subscriber).
    pub fn watch(&self) -> watch::Receiver<Latest> {
        self.latest.subscribe()
    }

    /// The stream at `width`, started if nobody watches that width yet.
    pub(super) fn variant(self: &Arc<Self>, width: u16, scaling: &Arc<Semaphore>) -> Arc<Variant> {
        let mut variants = self.variants.lock().expect("variants lock poisoned");
        if let Some(variant) = variants.get(&width).and_then(Weak::upgrade) {
            return variant;
        }
        variants.retain(|_, variant| variant.strong_count() > 0);
        let variant = Variant::start(self, width, scaling.clone());
        variants.insert(width, Arc::downgrade(&variant));
        variant
    }

    /// One subscriber of `output` fewer.
    pub(super) fn leave(&self, output: Output) {
        self.outputs.leave(output);
        self.subscribers.send_modify(|count| *count -= 1);
    }

    /// Time since the newest frame, `None` before the first.
    pub(super) fn last_frame_age(&self) -> Option<Duration> {
        let publishing = self.publishing.lock().expect("publish lock poisoned");
        publishing.rate.last().map(|at| at.elapsed())
    }

    /// Time since the newest frame, or since the stream was made if it has none.
    pub(super) fn quiet_for(&self) -> Duration {
        self.last_frame_age()
            .unwrap_or_else(|| self.created.elapsed())
    }

    /// The stream as `GET /streams` shows it.
    pub(super) fn summary(&self) -> StreamSummary {
        let Latest { frame, status } = self.latest.borrow().clone();
        let (fps, age) = {
            let publishing = self.publishing.lock().expect("publish lock poisoned");
            let now = Instant::now();
            (
                publishing.rate.per_second(now),
                publishing.rate.last().map(|at| now.duration_since(at)),
            )
        };
        StreamSummary {
            name: self.name.to_string(),
            source: self.source,
            state: status.state,
            reason: status.reason.clone(),
            published: self.published.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            subscribers: *self.subscribers.borrow(),
            skipped: self.skipped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            outputs: self.outputs.summary(),
            fps,
            age_ms: age.map(|age| age.as_millis() as u64),
            width: frame.as_ref().map(|f| f.frame.width),
            height: frame.as_ref().map(|f| f.frame.height),
            variants: self.variant_summaries(),
        }
    }

    /// The variants somebody watches, narrowest first.
    fn variant_summaries(&self) -> Vec<VariantSummary> {
        let variants = self.variants.lock().expect("variants lock poisoned");
        let mut summaries: Vec<VariantSummary> = variants
            .values()
            .filter_map(Weak::upgrade)
            .map(|variant| variant.summary())
            .collect();
        summaries.sort_by_key(|summary| summary.width);
        summaries
    }
}
