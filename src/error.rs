//! `Error`: everything a request can get wrong, and the one place each maps to an HTTP status.
//!
//! The core (hub, parsers, stream names) has its own error types and knows nothing of HTTP;
//! they are wrapped here, at the edge, and given their status.
//!
//! Every error body is JSON `{"error": "<what was wrong>"}`. Client mistakes say exactly what to
//! fix; server-side failures are logged and answered without internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::hub::HubError;
use crate::jpeg::JpegError;
use crate::stream_name::InvalidStreamName;

/// Seconds a client is told to wait (`Retry-After`) when the server is full.
pub const FULL_RETRY_AFTER_SECS: u32 = 5;

/// A request framecast refused, with the reason shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `stream` parameter is not a valid stream name.
    #[error(transparent)]
    BadStreamName(#[from] InvalidStreamName),
    /// A query parameter has a value framecast does not understand.
    #[error("invalid query: {0}")]
    BadQuery(String),
    /// The body's Content-Type is not one framecast ingests.
    #[error(
        "unsupported Content-Type {0:?}: send image/jpeg, multipart/x-mixed-replace; boundary=..., or application/octet-stream (concatenated JPEGs)"
    )]
    UnsupportedMediaType(String),
    /// A single frame is bigger than the configured limit.
    #[error("frame larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The bytes are not an acceptable JPEG.
    #[error("not a valid JPEG: {0}")]
    NotJpeg(#[from] JpegError),
    /// The body could not be read or framed (e.g. multipart without a boundary).
    #[error("{0}")]
    BadBody(String),
    /// The upload stopped sending for longer than the idle limit.
    #[error("upload stalled: no data for {0:?}")]
    IngestStalled(std::time::Duration),
    /// The request lacks the token it needs, or its token is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The request's token is valid but does not allow what it asks for.
    #[error("{0}")]
    Forbidden(String),
    /// The request names a host other than the loopback one the server listens on.
    #[error(
        "host {0:?} is not served here: framecast listens on loopback only and answers requests for localhost or a loopback address; add the name to --allowed-hosts to serve it"
    )]
    HostNotAllowed(String),
    /// A web page on another site tried to publish.
    #[error(
        "publishing from web pages on other sites is not allowed ({0}); list the page's origin in --publish-origins to allow it"
    )]
    CrossSitePublish(String),
    /// This client already holds as many of something as one client may.
    #[error("this client already has {limit} {what} open, the most one client may ({flag})")]
    ClientQuota {
        /// What it has too many of: "event streams", "uploads".
        what: &'static str,
        /// The cap.
        limit: usize,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// As many uploads as the server takes at once are in progress.
    #[error("the server is taking as many uploads at once as it may ({0}); try again shortly")]
    TooManyUploads(usize),
    /// Uploads in progress already buffer as many bytes as they may, all together.
    #[error(
        "uploads in progress already buffer {0} bytes, the most the server holds; try again shortly"
    )]
    UploadBufferFull(usize),
    /// A frame took longer than the upload timeout to arrive whole.
    #[error("upload too slow: a frame must arrive whole within {0:?}")]
    UploadTooSlow(std::time::Duration),
    /// A one-off reader (a snapshot) named a stream that does not exist.
    #[error("no stream {0:?}")]
    NoSuchStream(String),
    /// The stream has no frame yet.
    #[error("stream {0:?} has no frame yet")]
    NoFrameYet(String),
    /// The server already serves `--max-connections` connections.
    #[error("the server is serving as many connections as it may; try again shortly")]
    TooManyConnections,
    /// The hub refused the stream: fed by a source, or a limit reached.
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl Error {
    /// The HTTP status for this error. Exhaustive on purpose: a new variant must pick one.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::BadStreamName(_)
            | Error::BadQuery(_)
            | Error::NotJpeg(_)
            | Error::BadBody(_) => StatusCode::BAD_REQUEST,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::CrossSitePublish(_) | Error::HostNotAllowed(_) | Error::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::IngestStalled(_) | Error::UploadTooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Error::ClientQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::TooManyUploads(_) | Error::UploadBufferFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Hub(HubError::StreamOwned { .. }) => StatusCode::CONFLICT,
            Error::TooManyConnections | Error::NoFrameYet(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::NoSuchStream(_) => StatusCode::NOT_FOUND,
            Error::Hub(
                HubError::TooManyStreams(_)
                | HubError::TooManyWaitingStreams(_)
                | HubError::TooManySubscribers(_),
            ) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status_code();
        // A frame may come any moment; being full takes longer to change.
        let retry_after = match self {
            Error::NoFrameYet(_) => 1,
            _ => FULL_RETRY_AFTER_SECS,
        };
        tracing::debug!(%status, error = %self, "request refused");
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}
