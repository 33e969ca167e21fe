//! `Subscription`: a subscriber's hold on a stream, counted for as long as it lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::output::Output;
use super::stream::{Latest, Stream};
use super::variant::Variant;

/// A subscriber's hold on a stream. Dropping it (when the viewer leaves) updates the counts.
#[derive(Debug)]
pub struct Subscription {
    /// The stream subscribed to.
    pub stream: Arc<Stream>,
    /// Sees each new frame and status; marked changed at the start, so a joining subscriber
    /// hears the current status and gets the newest frame at once.
    pub latest: watch::Receiver<Latest>,
    /// How the subscriber reads the stream.
    pub output: Output,
    /// The scaled variant watched instead of the stream's own frames, held while watched.
    _variant: Option<Arc<Variant>>,
    /// Subscribers across the hub, already counting this one.
    all_subscribers: Arc<AtomicUsize>,
}

impl Subscription {
    /// Joins `stream` through `output`, or its `variant` if given; `all_subscribers` already
    /// counts the new subscriber.
    pub(super) fn new(
        stream: Arc<Stream>,
        variant: Option<Arc<Variant>>,
        output: Output,
        all_subscribers: Arc<AtomicUsize>,
    ) -> Subscription {
        stream.join(output);
        let latest = match &variant {
            Some(variant) => variant.watch(),
            None => {
                let mut latest = stream.watch();
                latest.mark_changed();
                latest
            }
        };
        Subscription {
            stream,
            latest,
            output,
            _variant: variant,
            all_subscribers,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.leave(self.output);
        self.all_subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}
