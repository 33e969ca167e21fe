//! `GET /events`: a subscriber's `text/event-stream` response, for one stream or several.
//!
//! `?stream=NAME` may be repeated to carry several streams on one connection (browsers open
//! at most six HTTP/1.1 connections per host, so a wall of cameras needs this). Every event
//! names its stream in its JSON. `id:` is the frame's `seq` in its own stream, so on a
//! connection carrying several streams the ids interleave; framecast ignores `Last-Event-ID`,
//! as a reconnect always starts from each stream's status and newest frame.
//!
//! `GET /mjpeg` is the same for tools that read MJPEG: one stream, each frame a JPEG part.
//!
//! What the body sends and when is `viewer.rs`; this file checks the request and subscribes.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::time::Duration;

use super::client::Client;
use super::viewer::{Delivery, Format, Viewer};
use super::{AppState, access};
use crate::error::Error;
use crate::mjpeg;
use crate::stream_name::StreamName;

/// Highest `fps` a viewer may ask for; faster than any camera, so it only guards the arithmetic.
const MAX_FPS: f64 = 1000.0;

/// What a `GET /events` query asks for.
#[derive(Debug)]
struct EventsQuery {
    /// Each stream once, in the order first named; the default stream if none.
    streams: Vec<StreamName>,
    delivery: Delivery,
    /// The scaled width asked for, already one of the widths offered.
    width: Option<u16>,
    /// An access token, for clients that cannot send headers (`EventSource`).
    access_token: Option<String>,
}

impl EventsQuery {
    /// Reads `query`: `stream` (repeatable, at most `max_streams`), `payload=none`, `fps=N`,
    /// `width=N` (rounded to the nearest of `widths`) and `access_token`. Other parameters
    /// (such as cache busters) are ignored.
    fn parse(
        query: Option<&str>,
        max_streams: usize,
        widths: &[u16],
    ) -> Result<EventsQuery, Error> {
        let mut streams: Vec<StreamName> = Vec::new();
        let mut delivery = Delivery {
            format: Format::Events { with_jpeg: true },
            min_interval: None,
        };
        let mut access_token = None;
        let mut width = None;
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*key {
                "stream" => {
                    let name = StreamName::parse(Some(&value))?;
                    if !streams.contains(&name) {
                        streams.push(name);
                    }
                }
                "payload" => {
                    let with_jpeg = match &*value {
                        "full" => true,
                        "none" => false,
                        other => {
                            return Err(Error::BadQuery(format!(
                                "payload={other:?}: use payload=none or leave it out"
                            )));
                        }
                    };
                    delivery.format = Format::Events { with_jpeg };
                }
                "fps" => delivery.min_interval = Some(parse_fps(&value)?),
                "width" => width = Some(parse_width(&value, widths)?),
                "access_token" => access_token = Some(value.into_owned()),
                _ => {}
            }
        }
        if streams.len() > max_streams {
            return Err(Error::BadQuery(format!(
                "{} streams on one connection; at most {max_streams} (--max-streams-per-connection)",
                streams.len()
            )));
        }
        if streams.is_empty() {
            streams.push(StreamName::parse(None)?);
        }
        Ok(EventsQuery {
            streams,
            delivery,
            width,
            access_token,
        })
    }
}

/// The time between frames that `fps` (a positive number, fractions allowed) asks for.
fn parse_fps(value: &str) -> Result<Duration, Error> {
    value
        .parse::<f64>()
        .ok()
        .filter(|fps| *fps > 0.0 && *fps <= MAX_FPS)
        .map(|fps| Duration::from_secs_f64(1.0 / fps))
        .ok_or_else(|| {
            Error::BadQuery(format!(
                "fps={value:?}: use a number of frames per second above 0, at most {MAX_FPS}"
            ))
        })
}

/// The offered width nearest to `value` (the wider one on a tie), so a client cannot make the
/// server keep a variant for every width there is.
pub(super) fn parse_width(value: &str, widths: &[u16]) -> Result<u16, Error> {
    let asked: u32 = value
        .parse()
        .ok()
        .filter(|width| *width > 0)
        .ok_or_else(|| Error::BadQuery(format!("width={value:?}: use a number of pixels")))?;
    widths
        .iter()
        .copied()
        .min_by_key(|offered| (u32::from(*offered).abs_diff(asked), u16::MAX - offered))
        .ok_or_else(|| {
            Error::BadQuery("width: this server offers no scaled sizes (--variant-widths)".into())
        })
}

/// Subscribes to the streams asked for and answers with their live event stream.
pub async fn get_events(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let query = EventsQuery::parse(
        query.as_deref(),
        state.config.max_streams_per_connection,
        &state.config.variant_widths,
    )?;
    let viewer = open(&state, client, &headers, &query)?;
    Ok(respond(viewer, "text/event-stream"))
}

/// `GET /mjpeg`: one stream as `multipart/x-mixed-replace`, each frame a JPEG part, for
/// `<img>` tags, VLC, ffmpeg and the camera tools that read MJPEG. The same slot, the same
/// latest-frame-wins and the same `fps`, `width` and access rules as `/events`.
pub async fn get_mjpeg(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let mut query = EventsQuery::parse(
        query.as_deref(),
        state.config.max_streams_per_connection,
        &state.config.variant_widths,
    )?;
    if query.streams.len() > 1 {
        return Err(Error::BadQuery(
            "an MJPEG response carries one stream: name one with ?stream=".into(),
        ));
    }
    // Browsers say where a response goes (`Sec-Fetch-Dest: image` for an `<img>`); tools do
    // not. Browsers get the layout they draw on time, tools the parts with lengths.
    let headers_ahead = headers.contains_key("sec-fetch-dest");
    query.delivery.format = Format::Mjpeg { headers_ahead };
    let viewer = open(&state, client, &headers, &query)?;
    Ok(respond(viewer, mjpeg::part::CONTENT_TYPE))
}

/// Checks the request's right to watch and its client's quota, and subscribes.
fn open(
    state: &AppState,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    query: &EventsQuery,
) -> Result<Viewer, Error> {
    let reader = access::reader(state, headers, query.access_token.as_deref())?;
    reader.check_watch_all(&query.streams)?;
    let quota =
        state
            .quotas
            .subscribers
            .take_for(client, "event streams", "--max-subscribers-per-ip")?;
    let subscriptions = query
        .streams
        .iter()
        .map(|name| {
            state
                .hub
                .subscribe(name, query.width, query.delivery.format.output())
        })
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(streams = ?query.streams, format = ?query.delivery.format, "subscriber joined");
    let mut viewer = Viewer::new(subscriptions, query.delivery, quota, state);
    if let Some(expires_at) = reader.expires_at() {
        viewer.end_at(expires_at);
    }
    Ok(viewer)
}

/// The streaming response for `viewer`, never cached or buffered on the way.
fn respond(viewer: Viewer, content_type: &'static str) -> Response {
    let mut response = Body::from_stream(viewer.into_stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_width_is_rounded_to_the_nearest_offered() {
        let offered = [160, 320, 640];
        let width = |query: &str| EventsQuery::parse(Some(query), 4, &offered).map(|q| q.width);
        assert_eq!(width("width=300").unwrap(), Some(320));
        assert_eq!(
            width("width=240").unwrap(),
            Some(320),
            "a tie goes to the wider"
        );
        assert_eq!(width("width=100").unwrap(), Some(160));
        assert_eq!(width("width=4000").unwrap(), Some(640));
        assert_eq!(width("stream=a").unwrap(), None);
        assert!(width("width=0").is_err());
        assert!(width("width=wide").is_err());
        assert!(EventsQuery::parse(Some("width=320"), 4, &[]).is_err());
    }

    fn names(query: &str) -> Vec<String> {
        EventsQuery::parse(Some(query), 4, &[])
            .unwrap()
            .streams
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect()
    }

    #[test]
    fn streams_are_repeated_parameters_each_taken_once_in_order() {
        assert_eq!(names("stream=b&stream=a&stream=b"), ["b", "a"]);
        assert_eq!(names("payload=none"), ["default"]);
        assert_eq!(names("stream=cam&_=1712"), ["cam"]);
        assert!(
            EventsQuery::parse(Some("stream=a&stream=b&stream=c&stream=d&stream=e"), 4, &[])
                .is_err()
        );
        assert!(EventsQuery::parse(Some("stream=a%20b"), 4, &[]).is_err());
        assert!(EventsQuery::parse(None, 4, &[]).is_ok());
    }

    #[test]
    fn fps_and_payload_are_checked() {
        let query =
            EventsQuery::parse(Some("fps=4&payload=none&access_token=t%2B"), 4, &[]).unwrap();
        assert_eq!(
            query.delivery.min_interval,
            Some(Duration::from_millis(250))
        );
        assert_eq!(query.delivery.format, Format::Events { with_jpeg: false });
        assert_eq!(query.access_token.as_deref(), Some("t+"));
        let half = EventsQuery::parse(Some("fps=0.5"), 4, &[]).unwrap();
        assert_eq!(half.delivery.min_interval, Some(Duration::from_secs(2)));
        for bad in [
            "fps=0",
            "fps=-1",
            "fps=x",
            "fps=NaN",
            "fps=inf",
            "payload=half",
        ] {
            assert!(EventsQuery::parse(Some(bad), 4, &[]).is_err(), "{bad}");
        }
    }
}
