//! `GET /events`: one subscriber's `text/event-stream` response.
//!
//! The response body is a stream that, each time hyper is ready to write more, hands over the
//! newest frame's pre-encoded bytes (a reference-count bump, no copy). Frames that went by while
//! the connection was busy are skipped and counted. Changes of the status go out as
//! `event: status`, the current one first. The stream ends when the server shuts down.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::client::Client;
use super::quota::ClientSlot;
use super::{AppState, access};
use crate::error::Error;
use crate::hub::Subscription;
use crate::sse;
use crate::status::Status;
use crate::stream_name::StreamName;

/// Query parameters of `GET /events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    stream: Option<String>,
    /// `none` leaves the JPEG out of each event.
    payload: Option<String>,
    /// An access token, for clients that cannot send headers (`EventSource`).
    access_token: Option<String>,
}

/// Subscribes to a stream and answers with its live event stream.
pub async fn get_events(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) = query.map_err(|err| Error::BadQuery(err.body_text()))?;
    let reader = access::reader(&state, &headers, query.access_token.as_deref())?;
    let name = StreamName::parse(query.stream.as_deref())?;
    reader.check_watch(&name)?;
    let with_jpeg = match query.payload.as_deref() {
        None | Some("full") => true,
        Some("none") => false,
        Some(other) => {
            return Err(Error::BadQuery(format!(
                "payload={other:?}: use payload=none or leave it out"
            )));
        }
    };
    let quota =
        state
            .quotas
            .subscribers
            .take_for(client, "event streams", "--max-subscribers-per-ip")?;
    let subscription = state.hub.subscribe(&name)?;
    tracing::debug!(stream = %name, "subscriber joined");

    let mut viewer = Viewer::new(subscription, with_jpeg, quota, &state);
    if let Some(expires_at) = reader.expires_at() {
        viewer.end_at(expires_at);
    }
    let mut response = Body::from_stream(viewer.into_stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One subscriber's position in its stream.
struct Viewer {
    /// The `retry:` line, sent before anything else.
    preamble: Option<Bytes>,
    subscription: Subscription,
    /// This viewer's place in its client's quota.
    _quota: Option<ClientSlot>,
    with_jpeg: bool,
    /// The last frame sent, to count what was skipped.
    last_seq: Option<u64>,
    /// The last status sent, to tell a new one.
    sent_status: Option<Arc<Status>>,
    skipped: u64,
    keep_alive: Duration,
    /// Fires when the stream has been quiet for `keep_alive`; reset by every chunk sent.
    quiet: Pin<Box<Sleep>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Fires when the viewer's access token expires.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Set once the last event has been sent: the stream ends at the next call.
    ended: bool,
}

impl Viewer {
    fn new(
        subscription: Subscription,
        with_jpeg: bool,
        quota: Option<ClientSlot>,
        state: &AppState,
    ) -> Viewer {
        Viewer {
            preamble: Some(sse::retry(state.config.retry_ms)),
            subscription,
            _quota: quota,
            with_jpeg,
            last_seq: None,
            sent_status: None,
            skipped: 0,
            keep_alive: state.config.keep_alive,
            quiet: Box::pin(tokio::time::sleep(state.config.keep_alive)),
            shutdown: Box::pin(state.shutdown.wait_owned()),
            expiry: None,
            ended: false,
        }
    }

    /// Ends the stream at `expires_at` (now, if that has passed) with an `end` event: the
    /// token's right to watch ends exactly there, without the leeway given at connect.
    fn end_at(&mut self, expires_at: SystemTime) {
        let left = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        self.expiry = Some(Box::pin(tokio::time::sleep(left)));
    }

    /// The response body: each item is the next chunk, when the connection is ready for it.
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut viewer| async move {
            let chunk = viewer.next_chunk().await?;
            Some((Ok(chunk), viewer))
        })
    }

    /// The next bytes to send, or `None` when the stream should end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(preamble) = self.preamble.take() {
            return Some(preamble);
        }
        if self.ended {
            return None;
        }
        let chunk = loop {
            tokio::select! {
                biased;
                () = &mut self.shutdown => return None,
                () = expired(&mut self.expiry) => {
                    self.ended = true;
                    break Bytes::from_static(sse::END_TOKEN_EXPIRED);
                }
                changed = self.subscription.latest.changed() => {
                    // An error means the stream itself is gone.
                    changed.ok()?;
                    if let Some(chunk) = self.take_news() {
                        break chunk;
                    }
                }
                () = &mut self.quiet => break Bytes::from_static(sse::KEEP_ALIVE),
            }
        };
        self.quiet.as_mut().reset(Instant::now() + self.keep_alive);
        Some(chunk)
    }

    /// What this viewer has not been sent yet: a new status first, else a new frame.
    fn take_news(&mut self) -> Option<Bytes> {
        let latest = self.subscription.latest.borrow_and_update();
        let status_is_new = !self
            .sent_status
            .as_ref()
            .is_some_and(|sent| Arc::ptr_eq(sent, &latest.status));
        let frame = latest.frame.clone();
        let status = latest.status.clone();
        drop(latest);
        let frame = frame.filter(|frame| Some(frame.seq) != self.last_seq);
        if status_is_new {
            if frame.is_some() {
                // The frame goes out on the next call.
                self.subscription.latest.mark_changed();
            }
            let event = status.event.clone();
            self.sent_status = Some(status);
            return Some(event);
        }
        let frame = frame?;
        // Latest-frame-wins: whatever was published while we were busy is skipped.
        if let Some(last) = self.last_seq {
            let missed = frame.seq.saturating_sub(last + 1);
            if missed > 0 {
                self.skipped += missed;
                self.subscription.stream.record_skipped(missed);
            }
        }
        self.last_seq = Some(frame.seq);
        Some(if self.with_jpeg {
            frame.with_jpeg.clone()
        } else {
            frame.without_jpeg.clone()
        })
    }
}

/// Completes when `expiry` fires; never if there is none.
async fn expired(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        tracing::debug!(
            stream = %self.subscription.stream.name(),
            skipped = self.skipped,
            last_seq = ?self.last_seq,
            "subscriber left"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Most bytes a viewer's response body may take while it waits for the next chunk: it
    /// lives, boxed, as long as the subscriber, and idle subscribers are counted in the tens of
    /// thousands. (It measured 328 bytes in a debug build.)
    const BODY_BUDGET: usize = 400;

    #[tokio::test]
    async fn a_viewer_stays_small() {
        let state = AppState::new(
            Arc::new(crate::hub::Hub::new(1, 1)),
            Arc::new(crate::config::Config::default()),
            None,
            crate::shutdown::Shutdown::new(),
            true,
        );
        let subscription = state
            .hub
            .subscribe(&StreamName::parse(None).unwrap())
            .unwrap();
        let quota = state.quotas.subscribers.take("192.0.2.1".parse().unwrap());
        let body = Viewer::new(subscription, true, quota, &state).into_stream();
        let size = std::mem::size_of_val(&body);
        assert!(
            size <= BODY_BUDGET,
            "a viewer's body takes {size} bytes, over its budget of {BODY_BUDGET}"
        );
    }
}
