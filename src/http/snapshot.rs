//! `GET /snapshot?stream=NAME`: the newest frame as one `image/jpeg`, for pollers.
//!
//! A cron job saving a picture a minute, Home Assistant's camera, a Grafana panel: they ask
//! for one picture at a time. The answer comes from the same slot the live outputs read, the
//! JPEG exactly as it came (or the `width` variant's), with headers a poller can use:
//!
//! - `ETag: "SEQ"` and `Last-Modified` (the receive time), `Cache-Control: no-cache`;
//!   `If-None-Match` naming the current frame gets 304.
//! - `X-Frame-Seq`, `X-Frame-Age-Ms` and `X-Stream-State`.
//! - `?wait=SECONDS` (at most [`MAX_WAIT`]) long-polls: it answers with the first frame newer
//!   than the one `If-None-Match` names (or the first frame at all), or 304 when none came.
//!
//! An unknown stream is 404 (a snapshot never creates one); a stream without a frame yet is
//! 503 with `Retry-After`. While it is answered, a snapshot counts as one of its client's
//! viewers (`--max-subscribers-per-ip`), so long polls cannot hold every slot.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::client::Client;
use super::{AppState, access};
use crate::error::Error;
use crate::hub::{Output, Subscription};
use crate::stream_name::StreamName;

/// Longest `?wait=` honoured.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// What a snapshot query asks for.
struct SnapshotQuery {
    stream: StreamName,
    width: Option<u16>,
    wait: Option<Duration>,
    access_token: Option<String>,
}

impl SnapshotQuery {
    fn parse(query: Option<&str>, widths: &[u16]) -> Result<SnapshotQuery, Error> {
        let (mut stream, mut width, mut wait, mut access_token) = (None, None, None, None);
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*key {
                "stream" => stream = Some(StreamName::parse(Some(&value))?),
                "width" => width = Some(super::events::parse_width(&value, widths)?),
                "wait" => {
                    let seconds = value
                        .parse::<f64>()
                        .ok()
                        .filter(|seconds| (0.0..=MAX_WAIT.as_secs_f64()).contains(seconds))
                        .ok_or_else(|| {
                            Error::BadQuery(format!(
                                "wait={value:?}: use a number of seconds from 0 to {}",
                                MAX_WAIT.as_secs()
                            ))
                        })?;
                    wait = Some(Duration::from_secs_f64(seconds));
                }
                "access_token" => access_token = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(SnapshotQuery {
            stream: match stream {
                Some(stream) => stream,
                None => StreamName::parse(None)?,
            },
            width,
            wait,
            access_token,
        })
    }
}

/// Answers with the stream's newest frame, or 304, 404 or 503.
pub async fn get_snapshot(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let query = SnapshotQuery::parse(query.as_deref(), &state.config.variant_widths)?;
    let reader = access::reader(&state, &headers, query.access_token.as_deref())?;
    reader.check_watch_all(std::slice::from_ref(&query.stream))?;
    // A snapshot holds a subscription while it waits, so it counts as one of its client's
    // viewers: `?wait=` cannot be used to hold every viewer slot.
    let _quota =
        state
            .quotas
            .subscribers
            .take_for(client, "event streams", "--max-subscribers-per-ip")?;
    let mut subscription = match (
        state
            .hub
            .subscribe_existing(&query.stream, query.width, Output::Snapshot)?,
        &state.cluster,
    ) {
        (Some(subscription), None) => subscription,
        (None, None) => return Err(Error::NoSuchStream(query.stream.to_string())),
        // In a cluster this node may not follow the stream, or not know it at all: the
        // newest frame is read from the cluster first.
        (existing, Some(cluster)) => {
            let known = existing.is_some();
            let subscription = match existing {
                Some(subscription) => subscription,
                None => state
                    .hub
                    .subscribe(&query.stream, query.width, Output::Snapshot)?,
            };
            if !cluster.catch_up(&subscription.stream).await && !known {
                return Err(Error::NoSuchStream(query.stream.to_string()));
            }
            subscription
        }
    };
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_etag);
    let deadline = query.wait.map(|wait| tokio::time::Instant::now() + wait);
    loop {
        let latest = subscription.latest.borrow_and_update().clone();
        let newer = latest
            .frame
            .as_ref()
            .filter(|frame| known != Some(frame.seq));
        if let Some(frame) = newer {
            return Ok(jpeg_response(
                &subscription,
                frame,
                latest.status.state.as_str(),
            ));
        }
        let waited_out = match deadline {
            None => true,
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => true,
                    () = state.shutdown.wait() => true,
                    changed = subscription.latest.changed() => changed.is_err(),
                }
            }
        };
        if waited_out {
            let latest = subscription.latest.borrow().clone();
            return match latest.frame {
                Some(frame) if known == Some(frame.seq) => Ok(not_modified(frame.seq)),
                Some(frame) => Ok(jpeg_response(
                    &subscription,
                    &frame,
                    latest.status.state.as_str(),
                )),
                None => Err(Error::NoFrameYet(query.stream.to_string())),
            };
        }
    }
}

/// The seq an `If-None-Match` names: `"42"` or `W/"42"`, or one of a list.
fn parse_etag(value: &str) -> Option<u64> {
    value.split(',').find_map(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
    })
}

fn etag(seq: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{seq}\"")).expect("digits and quotes")
}

fn not_modified(seq: u64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag(seq));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `frame` as the answer to `subscription`'s snapshot request, counted as sent.
fn jpeg_response(
    subscription: &Subscription,
    frame: &crate::sse::EncodedFrame,
    state: &'static str,
) -> Response {
    subscription
        .stream
        .record_sent(Output::Snapshot, frame.frame.jpeg.len());
    let age = SystemTime::now()
        .duration_since(frame.frame.received_at)
        .unwrap_or(Duration::ZERO);
    let mut response = Body::from(frame.frame.jpeg.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, etag(frame.seq));
    if let Ok(modified) = HeaderValue::from_str(&httpdate::fmt_http_date(frame.frame.received_at)) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    headers.insert("x-frame-seq", HeaderValue::from(frame.seq));
    headers.insert("x-frame-age-ms", HeaderValue::from(age.as_millis() as u64));
    headers.insert("x-stream-state", HeaderValue::from_static(state));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_names_a_seq_however_it_is_written() {
        assert_eq!(parse_etag("\"42\""), Some(42));
        assert_eq!(parse_etag("W/\"42\""), Some(42));
        assert_eq!(parse_etag("\"x\", \"7\""), Some(7));
        assert_eq!(parse_etag("*"), None);
        assert_eq!(parse_etag("42"), None);
    }

    #[test]
    fn wait_is_bounded() {
        assert!(SnapshotQuery::parse(Some("wait=31"), &[]).is_err());
        assert!(SnapshotQuery::parse(Some("wait=-1"), &[]).is_err());
        let query = SnapshotQuery::parse(Some("stream=cam&wait=2.5"), &[]).unwrap();
        assert_eq!(query.wait, Some(Duration::from_millis(2500)));
        assert_eq!(query.stream.as_str(), "cam");
    }
}
