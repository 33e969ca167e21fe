//! `POST /frames`: frames pushed in, one JPEG per request or a continuous body of many.
//!
//! A single `image/jpeg` body is read up to the size limit and no further. A streaming body
//! (`multipart/x-mixed-replace` as `ffmpeg -f mpjpeg` sends, or concatenated JPEGs as
//! `ffmpeg -f mjpeg` sends) goes through the shared splitter, and each frame is published the
//! moment it is complete; a bad frame is counted and skipped, and the upload goes on.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, BodyDataStream};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use tokio::time::Instant;

use super::client::Client;
use super::quota::Reservation;
use super::{AppState, access, cross_site};
use crate::error::Error;
use crate::hub::{Hub, SourceKind, Stream};
use crate::metrics::UploadResult;
use crate::mjpeg::{ContentType, Framing, Sniff, Sniffer};
use crate::publish::{Publisher, SplitPublisher, publish_jpeg};
use crate::stream_name::StreamName;

/// Query parameters of `POST /frames`.
#[derive(Debug, Deserialize)]
pub struct FramesQuery {
    stream: Option<String>,
    /// An access token, for producers that cannot send headers.
    access_token: Option<String>,
}

/// How a request body carries its frames, decided from its Content-Type.
enum Upload {
    /// Exactly one JPEG.
    Single,
    /// Many frames; `None` means "guess from the first bytes".
    Continuous(Option<Framing>),
}

/// Publishes the frames in the request body to the stream named in `?stream=`.
pub async fn post_frames(
    State(state): State<AppState>,
    Client(client): Client,
    query: Result<Query<FramesQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Error> {
    let result = upload(&state, client, query, &headers, body).await;
    state.metrics.record_upload(match result {
        Ok(_) => UploadResult::Published,
        Err(_) => UploadResult::Failed,
    });
    result
}

/// Checks the upload and publishes what it brings.
async fn upload(
    state: &AppState,
    client: Option<IpAddr>,
    query: Result<Query<FramesQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, Error> {
    cross_site::check_publisher(headers, &state.config.publish_origins)?;
    let Query(query) = query.map_err(|err| Error::BadQuery(err.body_text()))?;
    let name = StreamName::parse(query.stream.as_deref())?;
    access::check_publisher(state, headers, query.access_token.as_deref(), &name)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let upload = classify(content_type.as_deref())?;
    let _quota = state
        .quotas
        .uploads
        .take_for(client, "uploads", "--max-uploads-per-ip")?;
    let _permit = state
        .quotas
        .uploads_total
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::TooManyUploads(state.config.max_uploads))?;
    let mut buffer = state.quotas.upload_bytes.reserve();
    let stream = Claim {
        hub: &state.hub,
        stream: state.hub.publisher(&name, SourceKind::Push)?,
    };
    let stream = &stream.stream;
    let limit = state.config.max_frame_bytes;

    match upload {
        Upload::Single => {
            let announced = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            if announced.is_some_and(|length| length > limit as u64) {
                return Err(Error::TooLarge { limit });
            }
            let bytes = read_single(state, body.into_data_stream(), limit, &mut buffer).await?;
            let publisher = Publisher::new(stream.clone(), state.cluster.clone());
            let encoded = publish_jpeg(&publisher, bytes).await?;
            Ok(Json(json!({
                "stream": name.as_str(),
                "seq": encoded.seq,
                "width": encoded.frame.width,
                "height": encoded.frame.height,
            })))
        }
        Upload::Continuous(framing) => {
            read_continuous(state, stream, body.into_data_stream(), framing, &mut buffer).await
        }
    }
}

/// An upload's hold on its stream. If the upload ends without a frame (refused, too slow, not
/// a JPEG), the stream is given back, unless somebody else holds it too.
struct Claim<'a> {
    hub: &'a Hub,
    stream: Arc<Stream>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.hub.release_unused(&self.stream);
    }
}

/// Decides how to read the body from its Content-Type (`None`: the header was absent).
fn classify(content_type: Option<&str>) -> Result<Upload, Error> {
    let Some(content_type) = content_type else {
        return Ok(Upload::Continuous(None));
    };
    let parsed = ContentType::parse(content_type);
    if let Some(framing) = parsed.multipart_framing() {
        return Ok(Upload::Continuous(Some(framing)));
    }
    let essence = parsed.essence().to_ascii_lowercase();
    match essence.as_str() {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => Ok(Upload::Single),
        // These say "a stream of bytes": the first bytes tell multipart from bare JPEGs.
        "application/octet-stream" | "video/x-motion-jpeg" | "video/x-mjpeg" | "video/mjpeg" => {
            Ok(Upload::Continuous(None))
        }
        _ => Err(Error::UnsupportedMediaType(content_type.to_owned())),
    }
}

/// Reads one whole body, failing with 413 as soon as it passes `limit`, and with 408 if it
/// takes longer than the upload timeout.
async fn read_single(
    state: &AppState,
    mut body: BodyDataStream,
    limit: usize,
    buffer: &mut Reservation,
) -> Result<Bytes, Error> {
    let deadline = Instant::now() + state.config.upload_timeout;
    let mut collected = BytesMut::new();
    while let Some(chunk) = next_chunk(state, &mut body, deadline).await? {
        let len = collected.len() + chunk.len();
        if len > limit {
            return Err(Error::TooLarge { limit });
        }
        hold(buffer, len)?;
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

/// Holds `bytes` of the uploads' shared buffer budget, or fails with 503.
fn hold(buffer: &mut Reservation, bytes: usize) -> Result<(), Error> {
    if buffer.resize(bytes) {
        Ok(())
    } else {
        Err(Error::UploadBufferFull(buffer.limit()))
    }
}

/// Splits a continuous body into frames and publishes each one as soon as it is complete.
/// Each frame must be complete within the upload timeout of the one before (or of the start).
async fn read_continuous(
    state: &AppState,
    stream: &Arc<Stream>,
    mut body: BodyDataStream,
    framing: Option<Framing>,
    buffer: &mut Reservation,
) -> Result<Json<Value>, Error> {
    let limit = state.config.max_frame_bytes;
    let mut deadline = Instant::now() + state.config.upload_timeout;

    // Without a framing from the Content-Type, the first bytes must tell it: unlike a source,
    // an upload that does not say what it is gets an answer rather than a guess.
    let mut sniffer = Sniffer::new();
    let framing = match framing {
        Some(framing) => framing,
        None => loop {
            let sniffed = match next_chunk(state, &mut body, deadline).await? {
                Some(chunk) => sniffer.push(&chunk),
                None if sniffer.head().is_empty() => {
                    return Err(Error::BadBody("empty body".into()));
                }
                None => Sniff::Unknown,
            };
            match sniffed {
                Sniff::Known(framing) => break framing,
                Sniff::NeedMore => {}
                Sniff::Unknown => {
                    return Err(Error::BadBody(
                        "cannot tell the body's framing: it neither starts with a --boundary line \
                         (multipart) nor with FF D8 (JPEG); set Content-Type to image/jpeg or \
                         multipart/x-mixed-replace; boundary=..."
                            .into(),
                    ));
                }
            }
        },
    };
    let head = sniffer.take_head();

    let publisher = Publisher::new(stream.clone(), state.cluster.clone());
    let mut publisher = SplitPublisher::new(framing, limit, publisher);
    publisher.push(&head).await;
    let mut received = !head.is_empty();
    let mut done = 0;
    while let Some(chunk) = next_chunk(state, &mut body, deadline).await? {
        received |= !chunk.is_empty();
        publisher.push(&chunk).await;
        hold(buffer, publisher.buffered_bytes())?;
        if publisher.frames + publisher.rejected > done {
            done = publisher.frames + publisher.rejected;
            deadline = Instant::now() + state.config.upload_timeout;
        }
    }
    publisher.finish().await;

    if publisher.frames == 0 {
        let why = match (received, publisher.first_reason) {
            (false, _) => "empty body".to_string(),
            (true, Some(reason)) => {
                format!(
                    "no valid frame in the body ({} rejected): {reason}",
                    publisher.rejected
                )
            }
            (true, None) => "no JPEG frame found in the body".to_string(),
        };
        return Err(Error::BadBody(why));
    }
    Ok(Json(
        json!({ "frames": publisher.frames, "rejected": publisher.rejected }),
    ))
}

/// The next body chunk; `None` at the end of the body or when the server shuts down. Fails
/// after the idle limit without a chunk, or at `deadline`.
async fn next_chunk(
    state: &AppState,
    body: &mut BodyDataStream,
    deadline: Instant,
) -> Result<Option<Bytes>, Error> {
    let idle = state.config.ingest_idle;
    tokio::select! {
        () = state.shutdown.wait() => Ok(None),
        () = tokio::time::sleep_until(deadline) => {
            Err(Error::UploadTooSlow(state.config.upload_timeout))
        }
        next = tokio::time::timeout(idle, body.next()) => match next {
            Err(_) => Err(Error::IngestStalled(idle)),
            Ok(None) => Ok(None),
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
            Ok(Some(Err(err))) => Err(Error::BadBody(format!("reading the body failed: {err}"))),
        }
    }
}
