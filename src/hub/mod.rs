//! The hub: where frames are numbered, encoded once, and handed to every subscriber.
//!
//! **One watch slot per stream.** Each [`Stream`] holds one `watch` slot, [`Latest`], with its
//! newest encoded frame and its [`Status`](crate::status::Status) side by side, so a subscriber
//! waits on one thing: each event costs it one wake-up, and a status change reaches it even
//! when no frames flow.
//!
//! **Latest frame wins.** Publishing replaces the slot and never waits for anyone; each
//! subscriber reads the slot when its connection is ready for more, so a slow viewer skips
//! straight to the newest frame and holds at most one frame reference. That is the whole
//! slow-client policy: the producer and the other viewers never notice a slow one.
//!
//! # Layout
//! - this file: the registry of streams by name and its limits ([`Hub`], [`HubError`]);
//! - `stream.rs`: one stream — numbering, encoding and publishing frames, its status, counters;
//! - `subscription.rs`: a subscriber's hold on a stream, counted while it lasts;
//! - `output.rs`: the ways a stream is read (SSE, MJPEG, snapshots) and their counters;
//! - `summary.rs`: what `GET /streams` reports for a stream;
//! - `rate.rs`: the ingest frame-rate estimate;
//! - `upkeep.rs`: the periodic pass that marks quiet streams stalled and removes idle ones;
//! - `variant.rs`: a stream scaled to a narrower width, once for all who watch that width.

mod output;
mod rate;
mod stream;
mod subscription;
mod summary;
mod upkeep;
mod variant;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

pub use output::{Output, OutputSummary, Outputs};
pub use stream::{Latest, SourceKind, Stream};
pub use subscription::Subscription;
pub use summary::StreamSummary;
pub use variant::VariantSummary;

use crate::stream_name::StreamName;

/// A pushed stream with no producer, no subscriber and no frame for this long is removed, so
/// that names used once (a typo, a finished job) do not add up to `--max-streams`.
pub const IDLE_STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// Why the hub refused to hand out a stream.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The stream is fed by a built-in source and does not take pushed frames.
    #[error(
        "stream {:?} is fed by the {}; it does not accept pushed frames",
        .stream.as_str(),
        .kind.describe()
    )]
    StreamOwned {
        /// The stream's name.
        stream: StreamName,
        /// What feeds it.
        kind: SourceKind,
    },
    /// Creating the stream would exceed the configured maximum.
    #[error("too many streams: the limit is {0}")]
    TooManyStreams(usize),
    /// Another stream that only viewers have asked for would exceed its own maximum.
    #[error("too many streams waiting for a producer: the limit is {0}; try again later")]
    TooManyWaitingStreams(usize),
    /// Another subscriber would exceed the configured maximum.
    #[error("too many subscribers: the limit is {0}; try again later")]
    TooManySubscribers(usize),
}

/// All streams, created on first use up to a limit.
///
/// A stream a producer has asked for (an upload, a source) is *claimed*, and counts against
/// `max_streams`. One only viewers have asked for is *waiting* for its producer: waiting
/// streams count against their own limit, `max_waiting_streams`, and go as soon as their last
/// viewer leaves, so viewers asking for made-up names can never take a producer's place.
#[derive(Debug)]
pub struct Hub {
    streams: Mutex<HashMap<StreamName, Arc<Stream>>>,
    max_streams: usize,
    max_waiting_streams: usize,
    max_subscribers: usize,
    idle_stream_lifetime: Duration,
    /// Subscribers across all streams; shared with every [`Subscription`] so it can leave.
    subscribers: Arc<AtomicUsize>,
    /// Frames being scaled for variants at once: at most one per CPU.
    scaling: Arc<Semaphore>,
    /// Told of every stream made, once somebody asks ([`Hub::new_streams`]).
    announce: OnceLock<mpsc::UnboundedSender<Weak<Stream>>>,
}

impl Hub {
    /// An empty hub with the given limits; as many streams may wait for a producer as may
    /// exist.
    pub fn new(max_streams: usize, max_subscribers: usize) -> Hub {
        Hub::with_limits(
            max_streams,
            max_streams,
            max_subscribers,
            IDLE_STREAM_LIFETIME,
        )
    }

    /// An empty hub with every limit given, removing idle pushed streams after
    /// `idle_stream_lifetime`.
    pub fn with_limits(
        max_streams: usize,
        max_waiting_streams: usize,
        max_subscribers: usize,
        idle_stream_lifetime: Duration,
    ) -> Hub {
        Hub {
            streams: Mutex::new(HashMap::new()),
            max_streams,
            max_waiting_streams,
            max_subscribers,
            idle_stream_lifetime,
            subscribers: Arc::new(AtomicUsize::new(0)),
            scaling: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            announce: OnceLock::new(),
        }
    }

    /// The stream called `name`, created as fed by `source` if it does not exist yet, and
    /// claimed if a producer asks for it.
    fn stream(
        &self,
        name: &StreamName,
        source: SourceKind,
        by_producer: bool,
    ) -> Result<Arc<Stream>, HubError> {
        let mut streams = self.lock();
        let claimed = streams.values().filter(|s| s.is_claimed()).count();
        if let Some(stream) = streams.get(name) {
            if by_producer && !stream.is_claimed() {
                if claimed >= self.max_streams {
                    return Err(HubError::TooManyStreams(self.max_streams));
                }
                stream.claim();
            }
            return Ok(stream.clone());
        }
        if by_producer && claimed >= self.max_streams {
            return Err(HubError::TooManyStreams(self.max_streams));
        }
        if !by_producer && streams.len() - claimed >= self.max_waiting_streams {
            // Full: first let go of waiting streams whose viewers have all left.
            streams.retain(|_, stream| stream.is_claimed() || Arc::strong_count(stream) > 1);
            if streams.len() - claimed >= self.max_waiting_streams {
                return Err(HubError::TooManyWaitingStreams(self.max_waiting_streams));
            }
        }
        let stream = Arc::new(Stream::new(name.clone(), source));
        if by_producer {
            stream.claim();
        }
        streams.insert(name.clone(), stream.clone());
        if let Some(announce) = self.announce.get() {
            // Weak, so that whoever listens never keeps a stream from being removed.
            let _ = announce.send(Arc::downgrade(&stream));
        }
        Ok(stream)
    }

    /// Every stream there is, then every stream made from now on, as it is made: how the
    /// cluster learns which streams to follow. Only one listener may ask.
    pub fn new_streams(&self) -> mpsc::UnboundedReceiver<Weak<Stream>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let streams = self.lock();
        for stream in streams.values() {
            let _ = sender.send(Arc::downgrade(stream));
        }
        self.announce
            .set(sender)
            .expect("only one listener asks for new streams");
        receiver
    }

    /// The stream a producer of kind `source` may publish to; refused if another kind feeds it.
    pub fn publisher(
        &self,
        name: &StreamName,
        source: SourceKind,
    ) -> Result<Arc<Stream>, HubError> {
        let stream = self.stream(name, source, true)?;
        if stream.source() != source {
            return Err(HubError::StreamOwned {
                stream: name.clone(),
                kind: stream.source(),
            });
        }
        Ok(stream)
    }

    /// Gives back a stream a producer claimed but never published to, if nobody else holds it:
    /// an upload that fails before its first frame (refused, too slow, not a JPEG) must not
    /// keep a name out of the others' reach for [`IDLE_STREAM_LIFETIME`].
    pub fn release_unused(&self, stream: &Arc<Stream>) {
        let mut streams = self.lock();
        // Every other holder (a subscriber, another upload, a variant) clones from the map
        // under this lock, so the count is settled here: the map's and the caller's.
        let unused = stream.published_count() == 0 && Arc::strong_count(stream) == 2;
        if unused
            && streams
                .get(stream.name())
                .is_some_and(|held| Arc::ptr_eq(held, stream))
        {
            streams.remove(stream.name());
            tracing::debug!(stream = %stream.name(), "released a stream that got no frame");
        }
    }

    /// Joins the stream called `name` (creating it, to wait for a producer, if need be), at
    /// its own size or scaled to `width`, to read it through `output`.
    pub fn subscribe(
        &self,
        name: &StreamName,
        width: Option<u16>,
        output: Output,
    ) -> Result<Subscription, HubError> {
        let stream = self.stream(name, SourceKind::Push, false)?;
        self.join(stream, width, output)
    }

    /// Joins the stream called `name` as [`Hub::subscribe`] does, if it exists: a one-off
    /// reader such as a snapshot never creates a stream.
    pub fn subscribe_existing(
        &self,
        name: &StreamName,
        width: Option<u16>,
        output: Output,
    ) -> Result<Option<Subscription>, HubError> {
        let Some(stream) = self.lock().get(name).cloned() else {
            return Ok(None);
        };
        self.join(stream, width, output).map(Some)
    }

    /// Counts one more subscriber of `stream`, at its own size or at `width`, reading through
    /// `output`.
    fn join(
        &self,
        stream: Arc<Stream>,
        width: Option<u16>,
        output: Output,
    ) -> Result<Subscription, HubError> {
        if self.subscribers.fetch_add(1, Ordering::AcqRel) >= self.max_subscribers {
            self.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(HubError::TooManySubscribers(self.max_subscribers));
        }
        let variant = width.map(|width| stream.variant(width, &self.scaling));
        Ok(Subscription::new(
            stream,
            variant,
            output,
            self.subscribers.clone(),
        ))
    }

    /// What `GET /streams` shows: every stream, sorted by name.
    pub fn summary(&self) -> Vec<StreamSummary> {
        let mut summary: Vec<StreamSummary> =
            self.all().iter().map(|stream| stream.summary()).collect();
        summary.sort_by(|a, b| a.name.cmp(&b.name));
        summary
    }

    /// The stream called `name`, if there is one. Not a subscription: only for a quick look.
    pub fn find(&self, name: &str) -> Option<Arc<Stream>> {
        self.lock()
            .iter()
            .find(|(stream, _)| stream.as_str() == name)
            .map(|(_, stream)| stream.clone())
    }

    /// Every stream, as of now.
    fn all(&self) -> Vec<Arc<Stream>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamName, Arc<Stream>>> {
        self.streams.lock().expect("hub lock poisoned")
    }
}
