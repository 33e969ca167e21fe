//! `Subscription`: a subscriber's hold on a stream, counted for as long as it lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::stream::{Latest, Stream};

/// A subscriber's hold on a stream. Dropping it (when the viewer leaves) updates the counts.
#[derive(Debug)]
pub struct Subscription {
    /// The stream subscribed to.
    pub stream: Arc<Stream>,
    /// Sees each new frame and status; marked changed at the start, so a joining subscriber
    /// hears the current status and gets the newest frame at once.
    pub latest: watch::Receiver<Latest>,
    /// Subscribers across the hub, already counting this one.
    all_subscribers: Arc<AtomicUsize>,
}

impl Subscription {
    /// Joins `stream`; `all_subscribers` already counts the new subscriber.
    pub(super) fn new(stream: Arc<Stream>, all_subscribers: Arc<AtomicUsize>) -> Subscription {
        let mut latest = stream.join();
        latest.mark_changed();
        Subscription {
            stream,
            latest,
            all_subscribers,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.leave();
        self.all_subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}
