//! `Variant`: a stream's frames at a narrower width, scaled once for everyone watching it.
//!
//! A grid of 16 cameras at 720p is about 80 MB/s of base64 for tiles 320 pixels wide, so a
//! viewer may ask for `?width=`. Each (stream, width) that somebody watches has one variant: a
//! task that follows the stream's slot, scales each new frame once off the async threads, and
//! publishes the result into the variant's own slot, which its viewers read exactly as they
//! read a stream's (same `seq` and `ts`, status passed through). The frame is shared by all of
//! them, so the cost follows the number of variants, never the number of viewers.
//!
//! - **Nobody waits for it.** The stream's producer and its full-size viewers never see the
//!   variant; a variant that cannot keep up skips to the newest frame, like a slow viewer.
//! - **Only while watched.** Viewers hold the variant; when the last one leaves, its task
//!   stops.
//! - **Bounded work.** Scaling runs on tokio's blocking threads, at most as many at once as
//!   the hub allows (its CPU count), and frames larger than [`crate::scale::MAX_PIXELS`] are
//!   not scaled. A frame no wider than the variant is passed through as it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::stream::{Latest, Stream};
use crate::frame::Frame;
use crate::scale;
use crate::sse::{self, EncodedFrame};

/// One width of one stream.
#[derive(Debug)]
pub struct Variant {
    width: u16,
    /// The newest scaled frame and the stream's status.
    latest: watch::Sender<Latest>,
    /// Frames scaled so far.
    scaled: AtomicU64,
    /// Frames that could not be scaled (not decodable, too large).
    failed: AtomicU64,
    /// Stops the task when the last viewer lets go.
    stop: CancellationToken,
}

/// What `GET /streams` shows of a variant.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    /// Its width.
    pub width: u16,
    /// Frames scaled so far, once each whoever watches.
    pub scaled: u64,
    /// Frames that could not be scaled.
    pub failed: u64,
}

impl Variant {
    /// Starts the variant of `stream` at `width`; `scaling` bounds the scaling done at once.
    pub(super) fn start(stream: &Arc<Stream>, width: u16, scaling: Arc<Semaphore>) -> Arc<Variant> {
        let status = stream.watch().borrow().status.clone();
        let variant = Arc::new(Variant {
            width,
            latest: watch::Sender::new(Latest {
                frame: None,
                status,
            }),
            scaled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        tokio::spawn(follow(
            stream.clone(),
            Arc::downgrade(&variant),
            variant.stop.clone(),
            scaling,
        ));
        variant
    }

    /// A new receiver of the variant's slot, marked changed so the newest comes at once.
    pub(super) fn watch(&self) -> watch::Receiver<Latest> {
        let mut latest = self.latest.subscribe();
        latest.mark_changed();
        latest
    }

    /// Its counters.
    pub fn summary(&self) -> VariantSummary {
        VariantSummary {
            width: self.width,
            scaled: self.scaled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Variant {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The variant's task: for each new frame of `stream`, the scaled frame, until `stop`.
async fn follow(
    stream: Arc<Stream>,
    variant: Weak<Variant>,
    stop: CancellationToken,
    scaling: Arc<Semaphore>,
) {
    let Some(width) = variant.upgrade().map(|variant| variant.width) else {
        return;
    };
    let mut source = stream.watch();
    source.mark_changed();
    let mut last_seq = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = source.changed() => if changed.is_err() { return },
        }
        // Whatever came while the last frame was being scaled is skipped: only the newest.
        let latest = source.borrow_and_update().clone();
        let fresh = latest.frame.filter(|frame| Some(frame.seq) != last_seq);
        let scaled = match fresh {
            None => None,
            Some(frame) => {
                last_seq = Some(frame.seq);
                let permit = tokio::select! {
                    () = stop.cancelled() => return,
                    permit = scaling.clone().acquire_owned() => permit.expect("never closed"),
                };
                Some(scale_frame(&stream, frame, width, permit).await)
            }
        };
        let Some(variant) = variant.upgrade() else {
            return;
        };
        let frame = match scaled {
            Some(Ok(frame)) => {
                variant.scaled.fetch_add(1, Ordering::Relaxed);
                Some(frame)
            }
            Some(Err(err)) => {
                variant.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(stream = %stream.name(), width, %err, "frame not scaled");
                None
            }
            None => None,
        };
        variant.latest.send_if_modified(|slot| {
            let status_changed = !Arc::ptr_eq(&slot.status, &latest.status);
            slot.status = latest.status.clone();
            match frame {
                Some(frame) => {
                    slot.frame = Some(frame);
                    true
                }
                None => status_changed,
            }
        });
    }
}

/// `frame` at `width`, encoded as an event of `stream` with the frame's own `seq` and `ts`;
/// the frame itself if it is no wider. Runs on a blocking thread, holding `permit`.
async fn scale_frame(
    stream: &Stream,
    frame: Arc<EncodedFrame>,
    width: u16,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Arc<EncodedFrame>, String> {
    if frame.frame.width <= width {
        return Ok(frame);
    }
    let name = stream.name().clone();
    let seq = frame.seq;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let source = &frame.frame;
        let scaled = scale::to_width(&source.jpeg, source.width, source.height, width)
            .map_err(|err| err.to_string())?;
        let ts = source
            .received_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let scaled = Frame {
            jpeg: scaled.jpeg,
            width: scaled.width,
            height: scaled.height,
            // Whole milliseconds, as `ts` says, so the variant's events match the stream's.
            received_at: UNIX_EPOCH + Duration::from_millis(ts),
        };
        Ok(Arc::new(sse::encode_frame(&name, seq, &scaled)))
    })
    .await
    .map_err(|err| format!("the scaling task failed: {err}"))?
}
