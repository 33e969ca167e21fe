//! `Viewer`: one `GET /events` response, and where it stands in each stream it carries.
//!
//! The response body is a stream that, each time the connection is ready for more, hands over
//! the next event's pre-encoded bytes (a reference-count bump, never a copy). A viewer carries
//! one stream or several (`?stream=a&stream=b`); each stream is followed on its own:
//!
//! - **Latest frame wins, per stream.** A stream's slot holds only its newest frame, so while
//!   the connection is busy, frames of a stream go by and are skipped (and counted); the
//!   connection holds at most one pending frame per stream.
//! - **Fair.** Streams with news take turns (round robin), so a 30 fps stream never starves a
//!   1 fps one on a slow connection: each of the quiet stream's frames goes out after at most
//!   one frame of every other stream.
//! - **Status first.** A stream's status goes out (`event: status`) before its frames, the
//!   current one at once, then each change.
//! - **`fps`** caps what this viewer receives: a frame that comes sooner than `1/fps` after
//!   the one before it is held, replaced by any newer one, and sent when its time comes.
//!
//! The body ends when the server shuts down, or, with an access token, at its `exp`, after an
//! `event: end`.
//!
//! A viewer of one stream, by far the common case, waits on its stream's slot directly; only
//! several streams need the boxed per-stream waits of `WatchStream`s. Idle viewers are counted
//! in the tens of thousands, so a unit test holds the body to a byte budget.

use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use smallvec::SmallVec;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::AppState;
use super::quota::ClientSlot;
use crate::hub::{Latest, Output, Subscription};
use crate::mjpeg;
use crate::sse::{self, EncodedFrame};
use crate::status::Status;

/// How many viewers (open `GET /events` responses) the server has, whatever they carry.
#[derive(Debug, Default)]
pub struct ViewerCount(AtomicUsize);

impl ViewerCount {
    /// Viewers open now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One viewer, counted in a [`ViewerCount`] until dropped.
struct Counted(Arc<ViewerCount>);

impl Counted {
    fn new(count: &Arc<ViewerCount>) -> Counted {
        count.0.fetch_add(1, Ordering::Relaxed);
        Counted(count.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a viewer's response is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/event-stream`: status and frame events, keep-alive comments; `with_jpeg: false`
    /// leaves the JPEG out of each frame event (`payload=none`).
    Events {
        /// Whether frame events carry the JPEG.
        with_jpeg: bool,
    },
    /// `multipart/x-mixed-replace`: each frame one JPEG part, and nothing else; with
    /// `headers_ahead` (browsers), each part is followed by the next one's headers.
    Mjpeg {
        /// Whether parts are laid out for browsers (see `mjpeg::part`).
        headers_ahead: bool,
    },
}

impl Format {
    /// The output a viewer of this format counts under.
    pub fn output(self) -> Output {
        match self {
            Format::Events { .. } => Output::Events,
            Format::Mjpeg { .. } => Output::Mjpeg,
        }
    }
}

/// How a viewer wants its frames.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The response's format.
    pub format: Format,
    /// Shortest time between two frames of one stream (`fps`); `None` sends every frame it can.
    pub min_interval: Option<Duration>,
}

/// One subscriber connection's position in each of its streams.
pub struct Viewer {
    /// The reconnect delay, sent as `retry:` before anything else (event streams).
    retry_ms: u32,
    /// Whether the response's first bytes have gone out.
    opened: bool,
    /// One per stream, in the order asked for.
    follows: Vec<Follow>,
    /// Where news of the streams comes from.
    news: News,
    /// Events ready to go out before anything new is looked at: a frame that waited for its
    /// stream's status, or held frames whose time has come.
    ready: Ready,
    delivery: Delivery,
    /// Fires when the earliest held frame is due (with `fps`).
    due: Option<Pin<Box<Sleep>>>,
    /// This viewer's place in its client's quota.
    _quota: Option<ClientSlot>,
    _counted: Counted,
    keep_alive: Duration,
    /// Fires when the stream has been quiet for `keep_alive`; reset by every chunk sent.
    quiet: Pin<Box<Sleep>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Fires when the viewer's access token expires.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Set once the last event has been sent: the body ends at the next call.
    ended: bool,
}

/// A viewer's queue of events to send, oldest first. One stream queues at most its status
/// and a frame, so two live inline: an idle viewer, of which there may be tens of thousands,
/// then holds no heap block for it (a `VecDeque` kept one of 128 bytes after the first event).
struct Ready(SmallVec<[Bytes; 2]>);

impl Ready {
    fn new() -> Ready {
        Ready(SmallVec::new())
    }

    fn push_back(&mut self, event: Bytes) {
        self.0.push(event);
    }

    fn pop_front(&mut self) -> Option<Bytes> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
}

/// Where a viewer stands in one of its streams.
struct Follow {
    subscription: Subscription,
    /// The last frame sent, to count what was skipped.
    last_seq: Option<u64>,
    /// The last status sent, to tell a new one.
    sent_status: Option<Arc<Status>>,
    /// With `fps`: the newest frame not yet sent because it came too soon, and when the next
    /// frame may go.
    held: Option<Arc<EncodedFrame>>,
    next_due: Option<Instant>,
    skipped: u64,
}

/// The slots' changes, as `(index into follows, newest)`.
enum News {
    /// One stream: its slot, waited on directly.
    One(watch::Receiver<Latest>),
    /// Several: one boxed wait per stream, and the one to look at first next time.
    Many {
        all: Vec<WatchStream<Latest>>,
        next: usize,
    },
}

impl News {
    /// The next change of any stream; `None` once a stream is gone. With several streams they
    /// take turns: the search starts after the stream served last, so every stream with news
    /// is served before any is served twice.
    async fn next(&mut self) -> Option<(usize, Latest)> {
        match self {
            News::One(latest) => {
                latest.changed().await.ok()?;
                Some((0, latest.borrow_and_update().clone()))
            }
            News::Many { all, next } => {
                poll_fn(|cx| {
                    let count = all.len();
                    for offset in 0..count {
                        let index = (*next + offset) % count;
                        match all[index].poll_next_unpin(cx) {
                            Poll::Ready(Some(latest)) => {
                                *next = (index + 1) % count;
                                return Poll::Ready(Some((index, latest)));
                            }
                            Poll::Ready(None) => return Poll::Ready(None),
                            Poll::Pending => {}
                        }
                    }
                    Poll::Pending
                })
                .await
            }
        }
    }
}

impl Viewer {
    /// A viewer of `subscriptions` (at least one), in that order.
    pub fn new(
        subscriptions: Vec<Subscription>,
        delivery: Delivery,
        quota: Option<ClientSlot>,
        state: &AppState,
    ) -> Viewer {
        assert!(!subscriptions.is_empty(), "a viewer follows a stream");
        let news = if let [only] = &subscriptions[..] {
            News::One(only.latest.clone())
        } else {
            // A new `WatchStream` yields the current value first: status and newest frame at once.
            let all = subscriptions
                .iter()
                .map(|subscription| WatchStream::new(subscription.latest.clone()))
                .collect();
            News::Many { all, next: 0 }
        };
        let follows = subscriptions
            .into_iter()
            .map(|subscription| Follow {
                subscription,
                last_seq: None,
                sent_status: None,
                held: None,
                next_due: None,
                skipped: 0,
            })
            .collect();
        Viewer {
            retry_ms: state.config.retry_ms,
            opened: false,
            follows,
            news,
            ready: Ready::new(),
            delivery,
            due: None,
            _quota: quota,
            _counted: Counted::new(&state.viewers),
            keep_alive: state.config.keep_alive,
            quiet: Box::pin(tokio::time::sleep(state.config.keep_alive)),
            shutdown: Box::pin(state.shutdown.wait_owned()),
            expiry: None,
            ended: false,
        }
    }

    /// Ends the body at `expires_at` (now, if that has passed) with an `end` event: the
    /// token's right to watch ends exactly there, without the leeway given at connect.
    pub fn end_at(&mut self, expires_at: SystemTime) {
        let left = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        self.expiry = Some(Box::pin(tokio::time::sleep(left)));
    }

    /// The response body: each item is the next chunk, when the connection is ready for it.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut viewer| async move {
            let chunk = viewer.next_chunk().await?;
            Some((Ok(chunk), viewer))
        })
    }

    /// The next bytes to send, or `None` when the body should end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            return Some(match self.delivery.format {
                Format::Events { .. } => sse::retry(self.retry_ms),
                Format::Mjpeg {
                    headers_ahead: false,
                } => Bytes::from_static(mjpeg::part::OPENING),
                Format::Mjpeg {
                    headers_ahead: true,
                } => Bytes::from_static(mjpeg::part::OPENING_AHEAD),
            });
        }
        if self.ended {
            return None;
        }
        let events = matches!(self.delivery.format, Format::Events { .. });
        let chunk = loop {
            if let Some(ready) = self.ready.pop_front() {
                break ready;
            }
            tokio::select! {
                biased;
                () = &mut self.shutdown => return None,
                () = fires(&mut self.expiry) => {
                    // MJPEG has no way to say why; the response just ends.
                    self.ended = true;
                    if !events {
                        return None;
                    }
                    break Bytes::from_static(sse::END_TOKEN_EXPIRED);
                }
                () = fires(&mut self.due) => self.release_due(),
                news = self.news.next() => {
                    // `None` means a stream itself is gone.
                    let (index, latest) = news?;
                    self.take_news(index, latest);
                }
                () = &mut self.quiet => {
                    if events {
                        break Bytes::from_static(sse::KEEP_ALIVE);
                    }
                    // MJPEG has nothing like a comment: stay quiet until the next frame.
                    self.quiet.as_mut().reset(Instant::now() + self.keep_alive);
                }
            }
        };
        self.quiet.as_mut().reset(Instant::now() + self.keep_alive);
        Some(chunk)
    }

    /// Queues what stream `index` has that this viewer has not been sent: a new status, then
    /// a new frame (now, or held until `fps` allows it).
    fn take_news(&mut self, index: usize, latest: Latest) {
        let delivery = self.delivery;
        let follow = &mut self.follows[index];
        let status_is_new = !follow
            .sent_status
            .as_ref()
            .is_some_and(|sent| Arc::ptr_eq(sent, &latest.status));
        if status_is_new {
            if matches!(delivery.format, Format::Events { .. }) {
                self.ready.push_back(latest.status.event.clone());
            }
            follow.sent_status = Some(latest.status);
        }
        let Some(frame) = latest.frame else { return };
        let newest_known = follow
            .held
            .as_ref()
            .map_or(follow.last_seq, |h| Some(h.seq));
        if newest_known.is_some_and(|seq| seq >= frame.seq) {
            return;
        }
        let now = Instant::now();
        match follow.next_due {
            Some(due) if due > now => {
                if follow.held.replace(frame).is_some() {
                    follow.skip(1);
                }
                self.arm_due();
            }
            _ => {
                let event = follow.send(frame, delivery, now);
                self.ready.push_back(event);
            }
        }
    }

    /// Queues every held frame whose time has come, and waits for the next one.
    fn release_due(&mut self) {
        let now = Instant::now();
        let delivery = self.delivery;
        for follow in &mut self.follows {
            if follow.next_due.is_some_and(|due| due <= now)
                && let Some(frame) = follow.held.take()
            {
                let event = follow.send(frame, delivery, now);
                self.ready.push_back(event);
            }
        }
        self.arm_due();
    }

    /// Sets the `due` timer to the earliest held frame's time, or clears it.
    fn arm_due(&mut self) {
        let earliest = self
            .follows
            .iter()
            .filter(|follow| follow.held.is_some())
            .filter_map(|follow| follow.next_due)
            .min();
        match (earliest, &mut self.due) {
            (None, due) => *due = None,
            (Some(at), Some(due)) => due.as_mut().reset(at),
            (Some(at), due) => *due = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }
}

impl Follow {
    /// Marks `frame` sent at `now` and returns its event; frames between it and the last one
    /// sent were skipped.
    fn send(&mut self, frame: Arc<EncodedFrame>, delivery: Delivery, now: Instant) -> Bytes {
        if let Some(last) = self.last_seq {
            self.skip(frame.seq.saturating_sub(last + 1));
        }
        self.last_seq = Some(frame.seq);
        self.next_due = delivery.min_interval.map(|interval| now + interval);
        let bytes = match delivery.format {
            Format::Events { with_jpeg: true } => frame.with_jpeg.clone(),
            Format::Events { with_jpeg: false } => frame.without_jpeg.clone(),
            Format::Mjpeg { headers_ahead } => frame.mjpeg_part(headers_ahead),
        };
        let stream = &self.subscription.stream;
        stream.record_sent(self.subscription.output, bytes.len());
        bytes
    }

    fn skip(&mut self, frames: u64) {
        if frames > 0 {
            self.skipped += frames;
            self.subscription.stream.record_skipped(frames);
        }
    }
}

/// Completes when `timer` fires; never if there is none. A deadline already past completes at
/// once: tokio's timer would first wait for its next tick, and a token that expired before its
/// stream opened must not get a frame in the meantime.
async fn fires(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(sleep) if sleep.deadline() <= Instant::now() => {}
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        for follow in &self.follows {
            tracing::debug!(
                stream = %follow.subscription.stream.name(),
                skipped = follow.skipped,
                last_seq = ?follow.last_seq,
                "subscriber left"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_name::StreamName;

    /// Most bytes a viewer's response body may take while it waits for the next chunk: it
    /// lives, boxed, as long as the subscriber, and idle subscribers are counted in the tens of
    /// thousands. (It measured 520 bytes in a debug build: 328 for one stream, then a few
    /// dozen for several streams, `fps` and the per-client quota, and 56 for the event queue
    /// held inline, which saves a 128-byte heap block per viewer.)
    const BODY_BUDGET: usize = 544;

    fn state() -> AppState {
        AppState::new(
            Arc::new(crate::hub::Hub::new(4, 8)),
            Arc::new(crate::config::Config::default()),
            None,
            crate::shutdown::Shutdown::new(),
            true,
            Arc::default(),
            None,
        )
    }

    #[tokio::test]
    async fn a_viewer_stays_small() {
        let state = state();
        let subscription = state
            .hub
            .subscribe(&StreamName::parse(None).unwrap(), None, Output::Events)
            .unwrap();
        let quota = state.quotas.subscribers.take("192.0.2.1".parse().unwrap());
        let delivery = Delivery {
            format: Format::Events { with_jpeg: true },
            min_interval: None,
        };
        let body = Viewer::new(vec![subscription], delivery, quota, &state).into_stream();
        let size = std::mem::size_of_val(&body);
        assert!(
            size <= BODY_BUDGET,
            "a viewer's body takes {size} bytes, over its budget of {BODY_BUDGET}"
        );
    }
}
