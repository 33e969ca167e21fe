//! The hub: where frames are numbered, encoded once, and handed to every subscriber.
//!
//! Each stream is a [`Channel`] holding a `watch` slot with the newest encoded frame. Publishing
//! replaces the slot and never waits for anyone; each subscriber reads the slot when its
//! connection is ready for more, so a slow viewer skips straight to the newest frame
//! (latest-frame-wins) and holds at most one frame reference. That is the whole slow-client
//! policy: the producer and the other viewers never notice a slow one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::error::Error;
use crate::frame::Frame;
use crate::shutdown::Shutdown;
use crate::source_state::{SourceState, StreamState};
use crate::sse::{self, EncodedFrame};
use crate::stream_name::StreamName;

/// How far back the ingest frame rate is measured.
const FPS_WINDOW: Duration = Duration::from_secs(2);
/// Most publish times kept for the frame-rate estimate (covers 2 s at 120 fps).
const FPS_SAMPLES: usize = 240;
/// A pushed stream with no producer, no subscriber and no frame for this long is removed, so
/// that names used once (a typo, a finished job) do not add up to `--max-streams`.
pub const IDLE_STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// What feeds a stream. A stream fed by a built-in source refuses pushed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feed {
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

impl Feed {
    /// A name for messages and the status page.
    pub fn describe(self) -> &'static str {
        match self {
            Feed::Push => "pushed frames",
            Feed::TestPattern => "built-in test pattern",
            Feed::Stdin => "standard input",
            Feed::Camera => "camera",
            Feed::File => "file replay",
        }
    }
}

/// What a stream's subscribers watch: its newest frame and its source's state.
///
/// Both live in one `watch` slot so that a subscriber waits on one thing: each event costs it
/// one wake-up, and a state change reaches it even when no frames flow.
#[derive(Debug, Clone)]
pub struct Latest {
    /// The newest frame, or `None` before the first one.
    pub frame: Option<Arc<EncodedFrame>>,
    /// What the source is doing; a new `Arc` for each change, so a subscriber can tell.
    pub state: Arc<StreamState>,
}

/// All streams, created on first use up to a limit.
#[derive(Debug)]
pub struct Hub {
    channels: Mutex<HashMap<StreamName, Arc<Channel>>>,
    max_streams: usize,
    max_subscribers: usize,
    idle_stream_lifetime: Duration,
    /// Subscribers across all streams; shared with every [`Subscription`] so it can leave.
    subscribers: Arc<AtomicUsize>,
}

/// One stream: its newest frame and its counters.
#[derive(Debug)]
pub struct Channel {
    name: StreamName,
    feed: Feed,
    created: Instant,
    /// The newest encoded frame and the source's state; sending never fails or waits, even
    /// with no receivers.
    latest: watch::Sender<Latest>,
    /// Held while a frame is numbered, encoded and stored, so `seq` order is delivery order.
    publishing: Mutex<Publishing>,
    published: AtomicU64,
    rejected: AtomicU64,
    skipped: AtomicU64,
    /// Open subscribers; a camera source watches it to connect on demand.
    subscribers: watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct Publishing {
    seq: u64,
    recent: VecDeque<Instant>,
}

/// A subscriber's hold on a stream. Dropping it (when the viewer leaves) updates the counts.
#[derive(Debug)]
pub struct Subscription {
    /// The stream subscribed to.
    pub channel: Arc<Channel>,
    /// Sees each new frame and state; marked changed at the start, so a joining subscriber
    /// hears the current state and gets the newest frame at once.
    pub latest: watch::Receiver<Latest>,
    all_subscribers: Arc<AtomicUsize>,
}

/// A stream's state for `GET /streams`.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    /// The stream's name.
    pub name: String,
    /// What feeds it.
    pub source: Feed,
    /// What the source is doing.
    pub state: SourceState,
    /// Why, if there is more to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Frames published so far.
    pub published: u64,
    /// Frames refused (invalid, truncated, too large).
    pub rejected: u64,
    /// Open SSE subscribers.
    pub subscribers: usize,
    /// Frames that subscribers skipped because they were behind, summed over all of them.
    pub skipped: u64,
    /// Ingest frame rate over the last couple of seconds.
    pub fps: f64,
    /// Age of the newest frame, in milliseconds.
    pub age_ms: Option<u64>,
    /// Width of the newest frame.
    pub width: Option<u16>,
    /// Height of the newest frame.
    pub height: Option<u16>,
}

impl Hub {
    /// An empty hub with the given limits.
    pub fn new(max_streams: usize, max_subscribers: usize) -> Hub {
        Hub::with_idle_stream_lifetime(max_streams, max_subscribers, IDLE_STREAM_LIFETIME)
    }

    /// As [`Hub::new`], removing idle pushed streams after `idle_stream_lifetime`.
    pub fn with_idle_stream_lifetime(
        max_streams: usize,
        max_subscribers: usize,
        idle_stream_lifetime: Duration,
    ) -> Hub {
        Hub {
            channels: Mutex::new(HashMap::new()),
            max_streams,
            max_subscribers,
            idle_stream_lifetime,
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The stream called `name`, created with `feed` if it does not exist yet.
    fn channel(&self, name: &StreamName, feed: Feed) -> Result<Arc<Channel>, Error> {
        let mut channels = self.channels.lock().expect("hub lock poisoned");
        if let Some(channel) = channels.get(name) {
            return Ok(channel.clone());
        }
        if channels.len() >= self.max_streams {
            return Err(Error::TooManyStreams(self.max_streams));
        }
        let channel = Arc::new(Channel::new(name.clone(), feed));
        channels.insert(name.clone(), channel.clone());
        Ok(channel)
    }

    /// The stream a producer of kind `feed` may publish to; 409 if another kind feeds it.
    pub fn publisher(&self, name: &StreamName, feed: Feed) -> Result<Arc<Channel>, Error> {
        let channel = self.channel(name, feed)?;
        if channel.feed != feed {
            return Err(Error::StreamOwned {
                stream: name.to_string(),
                source_kind: channel.feed.describe(),
            });
        }
        Ok(channel)
    }

    /// Joins the stream called `name` (creating it, to wait for a producer, if need be).
    pub fn subscribe(&self, name: &StreamName) -> Result<Subscription, Error> {
        let channel = self.channel(name, Feed::Push)?;
        if self.subscribers.fetch_add(1, Ordering::AcqRel) >= self.max_subscribers {
            self.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::TooManySubscribers(self.max_subscribers));
        }
        channel.subscribers.send_modify(|count| *count += 1);
        let mut latest = channel.latest.subscribe();
        latest.mark_changed();
        Ok(Subscription {
            channel,
            latest,
            all_subscribers: self.subscribers.clone(),
        })
    }

    /// The state of every stream, sorted by name.
    pub fn status(&self) -> Vec<ChannelStatus> {
        let channels: Vec<Arc<Channel>> = {
            let channels = self.channels.lock().expect("hub lock poisoned");
            channels.values().cloned().collect()
        };
        let mut status: Vec<ChannelStatus> = channels.iter().map(|c| c.status()).collect();
        status.sort_by(|a, b| a.name.cmp(&b.name));
        status
    }

    /// Until shutdown: marks live streams `stalled` when no frame has come for `stall_after`
    /// (sources report their other states themselves; a new frame makes a stream live again),
    /// and removes pushed streams idle for the idle stream lifetime.
    pub async fn watch_streams(&self, stall_after: Duration, shutdown: Shutdown) {
        let mut ticks = tokio::time::interval(
            (stall_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = ticks.tick() => {}
            }
            let channels: Vec<Arc<Channel>> = {
                let channels = self.channels.lock().expect("hub lock poisoned");
                channels.values().cloned().collect()
            };
            for channel in channels {
                channel.mark_stalled_if_quiet(stall_after);
            }
            self.remove_idle_streams();
        }
    }

    /// Removes pushed streams that nobody holds (no upload, no subscriber) and that have had no
    /// frame for the idle stream lifetime.
    fn remove_idle_streams(&self) {
        let mut channels = self.channels.lock().expect("hub lock poisoned");
        channels.retain(|name, channel| {
            // New holders are only made under this lock, so a count of one (the map's) stays so.
            let unused = channel.feed == Feed::Push && Arc::strong_count(channel) == 1;
            let keep = !unused || channel.quiet_for() < self.idle_stream_lifetime;
            if !keep {
                tracing::debug!(stream = %name, "idle stream removed");
            }
            keep
        });
    }
}

impl Channel {
    fn new(name: StreamName, feed: Feed) -> Channel {
        let first_state = match feed {
            Feed::Push => StreamState::new(
                &name,
                SourceState::Connecting,
                Some("waiting for frames to be pushed".into()),
            ),
            _ => StreamState::new(&name, SourceState::Connecting, None),
        };
        Channel {
            name,
            feed,
            created: Instant::now(),
            latest: watch::Sender::new(Latest {
                frame: None,
                state: Arc::new(first_state),
            }),
            publishing: Mutex::new(Publishing::default()),
            published: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            subscribers: watch::Sender::new(0),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// Numbers `frame`, encodes it once, and makes it every subscriber's newest frame.
    /// Never waits for subscribers.
    pub fn publish(&self, frame: &Frame) -> Arc<EncodedFrame> {
        let mut publishing = self.publishing.lock().expect("publish lock poisoned");
        publishing.seq += 1;
        let encoded = Arc::new(sse::encode_frame(&self.name, publishing.seq, frame));
        let now = Instant::now();
        if publishing.recent.len() == FPS_SAMPLES {
            publishing.recent.pop_front();
        }
        publishing.recent.push_back(now);
        self.latest.send_modify(|latest| {
            latest.frame = Some(encoded.clone());
            if latest.state.state != SourceState::Live {
                latest.state = self.announce(SourceState::Live, None);
            }
        });
        self.published.fetch_add(1, Ordering::Relaxed);
        encoded
    }

    /// Tells viewers the source is now `state` (for `reason`), unless they already know.
    pub fn set_state(&self, state: SourceState, reason: Option<&str>) {
        self.latest.send_if_modified(|latest| {
            if latest.state.is(state, reason) {
                return false;
            }
            latest.state = self.announce(state, reason);
            true
        });
    }

    /// The new state, logged and encoded once for every viewer.
    fn announce(&self, state: SourceState, reason: Option<&str>) -> Arc<StreamState> {
        tracing::info!(stream = %self.name, state = state.as_str(), reason, "source state");
        Arc::new(StreamState::new(
            &self.name,
            state,
            reason.map(str::to_owned),
        ))
    }

    /// The source's current state.
    pub fn state(&self) -> SourceState {
        self.latest.borrow().state.state
    }

    /// The number of open subscribers, updated as they come and go.
    pub fn subscriber_count(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
    }

    /// Time since the newest frame, `None` before the first.
    fn last_frame_age(&self) -> Option<Duration> {
        let publishing = self.publishing.lock().expect("publish lock poisoned");
        publishing.recent.back().map(Instant::elapsed)
    }

    /// Time since the newest frame, or since the stream was made if it has none.
    fn quiet_for(&self) -> Duration {
        self.last_frame_age()
            .unwrap_or_else(|| self.created.elapsed())
    }

    fn mark_stalled_if_quiet(&self, stall_after: Duration) {
        if self.state() != SourceState::Live {
            return;
        }
        if self
            .last_frame_age()
            .is_some_and(|quiet| quiet >= stall_after)
        {
            let reason = format!("no frame for {} s", stall_after.as_secs_f64());
            self.set_state(SourceState::Stalled, Some(&reason));
        }
    }

    /// Counts a frame that failed validation and was not broadcast.
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts frames a subscriber skipped because it was behind.
    pub fn record_skipped(&self, frames: u64) {
        self.skipped.fetch_add(frames, Ordering::Relaxed);
    }

    fn status(&self) -> ChannelStatus {
        let Latest { frame, state } = self.latest.borrow().clone();
        let (fps, age) = {
            let publishing = self.publishing.lock().expect("publish lock poisoned");
            (
                frame_rate(&publishing.recent, Instant::now()),
                publishing.recent.back().map(Instant::elapsed),
            )
        };
        ChannelStatus {
            name: self.name.to_string(),
            source: self.feed,
            state: state.state,
            reason: state.reason.clone(),
            published: self.published.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            subscribers: *self.subscribers.borrow(),
            skipped: self.skipped.load(Ordering::Relaxed),
            fps,
            age_ms: age.map(|age| age.as_millis() as u64),
            width: frame.as_ref().map(|f| f.width),
            height: frame.as_ref().map(|f| f.height),
        }
    }
}

/// Frames per second over the publish times within [`FPS_WINDOW`] of `now`.
fn frame_rate(times: &VecDeque<Instant>, now: Instant) -> f64 {
    let in_window: Vec<&Instant> = times
        .iter()
        .filter(|t| now.duration_since(**t) <= FPS_WINDOW)
        .collect();
    match (in_window.first(), in_window.last()) {
        (Some(first), Some(last)) if in_window.len() >= 2 && last > first => {
            let span = last.duration_since(**first).as_secs_f64();
            ((in_window.len() - 1) as f64 / span * 10.0).round() / 10.0
        }
        _ => 0.0,
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.channel.subscribers.send_modify(|count| *count -= 1);
        self.all_subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_pushed_streams_are_removed_once_nobody_holds_them() {
        let hub = Hub::with_idle_stream_lifetime(8, 8, Duration::ZERO);
        let name = |text: &str| StreamName::parse(Some(text)).unwrap();
        let watched = hub.subscribe(&name("watched")).unwrap();
        let pushing = hub.publisher(&name("pushing"), Feed::Push).unwrap();
        hub.subscribe(&name("left")).unwrap();
        hub.publisher(&name("camera"), Feed::Camera).unwrap();
        hub.remove_idle_streams();
        let names: Vec<String> = hub.status().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["camera", "pushing", "watched"]);
        drop((watched, pushing));
        hub.remove_idle_streams();
        let names: Vec<String> = hub.status().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["camera"], "source streams stay");
    }

    #[test]
    fn frame_rate_counts_intervals_in_the_window() {
        let start = Instant::now();
        let times: VecDeque<Instant> = (0..31)
            .map(|i| start + Duration::from_millis(i * 1000 / 30))
            .collect();
        let rate = frame_rate(&times, *times.back().unwrap());
        assert!((rate - 30.0).abs() < 0.5, "{rate}");
        assert_eq!(frame_rate(&times, start + Duration::from_secs(10)), 0.0);
        assert_eq!(frame_rate(&VecDeque::new(), start), 0.0);
    }
}
