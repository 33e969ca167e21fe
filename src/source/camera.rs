//! The camera source: pulls an HTTP camera over one connection, for every viewer at once.
//!
//! This is why framecast exists: viewers never talk to the camera, and the camera sees one
//! client however many people watch. The URL may serve an MJPEG stream
//! (`multipart/x-mixed-replace`, cut up by the same splitter as uploads) or a single JPEG
//! snapshot, which is then polled at the source's fps over the same kept-alive connection.
//!
//! By default the camera is connected when the first viewer arrives and dropped a linger time
//! after the last one leaves. A failed or silent connection is retried with capped, jittered
//! backoff, and viewers are told `connecting`, `live`, `stalled` or `offline` as it goes.
//! Credentials are answered to Basic or Digest challenges and never appear in logs or states.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::on_demand;
use crate::config::{CameraUrl, Credentials};
use crate::mjpeg::ContentType;
use crate::publish::{Publisher, SplitPublisher};
use crate::shutdown::Shutdown;
use crate::status::State;

/// First reconnect delay; doubles per failure up to [`BACKOFF_CAP`].
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Pause between reading a 401 page and answering its challenge, so that the answer goes out
/// on the same connection (see [`Auth::get`]). Paid once per connection, not per frame.
const POOL_RETURN_PAUSE: Duration = Duration::from_millis(50);
/// Most bytes read from an error response's body (a 401 page) to keep the connection reusable.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// Everything a camera source needs to know.
#[derive(Debug, Clone)]
pub struct Camera {
    /// Where to pull from, with credentials kept apart.
    pub url: CameraUrl,
    /// How often a snapshot URL is polled.
    pub snapshot_fps: u32,
    /// Stay connected this long after the last viewer leaves.
    pub linger: Duration,
    /// Stay connected with no viewers at all.
    pub always_on: bool,
    /// Time allowed to open the connection.
    pub connect_timeout: Duration,
    /// Longest silence before the connection is dropped and made again.
    pub read_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
}

impl Camera {
    /// Feeds `stream` from the camera until shutdown, connected while there is demand for it.
    pub async fn run(self, publisher: Publisher, shutdown: Shutdown) {
        let camera = self;
        let stream = publisher.stream();
        tracing::info!(stream = %stream.name(), url = %camera.url, always_on = camera.always_on,
                   "camera source");
        let mut subscribers = publisher.demand();
        loop {
            if !camera.always_on {
                stream.set_status(State::Connecting, Some("idle until a viewer arrives"));
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = on_demand::viewers_arrive(&mut subscribers) => {}
                }
            }
            // The session is dropped, and its connection closed, when the linger runs out.
            let linger_over = async {
                if camera.always_on {
                    std::future::pending().await
                } else {
                    on_demand::viewers_gone_for(subscribers.clone(), camera.linger).await
                }
            };
            tokio::select! {
                () = shutdown.wait() => return,
                never = pull(&camera, &publisher) => match never {},
                () = linger_over => {
                    tracing::info!(stream = %stream.name(), linger = ?camera.linger,
                                   "no viewers; disconnecting from the camera");
                }
            }
        }
    }
}

/// Connects, publishes, and reconnects after failures, for as long as it is polled.
async fn pull(camera: &Camera, publisher: &Publisher) -> Infallible {
    let stream = publisher.stream();
    // One client per session: its pool holds the one connection, dropped with the session.
    let client = Client::builder()
        .connect_timeout(camera.connect_timeout)
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .no_proxy()
        .user_agent(concat!("framecast/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            // Only the TLS setup can fail here (e.g. an unreadable system certificate store).
            let reason = format!("cannot set up the HTTP client: {}", describe(&err));
            tracing::error!(stream = %stream.name(), %reason);
            stream.set_status(State::Offline, Some(&reason));
            return std::future::pending().await;
        }
    };
    let mut auth = Auth::new(camera.url.credentials.clone());
    let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
    loop {
        // While offline, retries update the reason rather than flicker through `connecting`.
        if stream.state() != State::Offline {
            stream.set_status(State::Connecting, None);
        }
        let Err(problem) = pull_once(camera, publisher, &client, &mut auth, &mut backoff).await;
        let delay = backoff.next_delay();
        tracing::warn!(stream = %stream.name(), %problem, retry_in = ?delay, "camera failed");
        let reason = format!("{problem}; retrying in {:.1} s", delay.as_secs_f64());
        stream.set_status(State::Offline, Some(&reason));
        tokio::time::sleep(delay).await;
        stream.record_reconnect();
    }
}

/// Requests the camera until something fails; returns why.
///
/// Every answer is read as a stream of frames, whatever its Content-Type claims (some cameras
/// label an MJPEG stream `image/jpeg`). An answer that ends after one picture is a snapshot:
/// the URL is then asked again every 1/fps s, over the same kept-alive connection.
async fn pull_once(
    camera: &Camera,
    publisher: &Publisher,
    client: &Client,
    auth: &mut Auth,
    backoff: &mut Backoff,
) -> Result<Infallible, String> {
    let stream = publisher.stream();
    let poll_period = Duration::from_secs(1) / camera.snapshot_fps;
    let mut polling = false;
    loop {
        let asked = Instant::now();
        let mut response = auth.get(camera, client).await?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !polling {
            tracing::info!(stream = %stream.name(), content_type, "camera answered");
        }
        let mut publisher = match ContentType::parse(&content_type).multipart_framing() {
            Some(framing) => {
                SplitPublisher::new(framing, camera.max_frame_bytes, publisher.clone())
            }
            None => SplitPublisher::sniffing(camera.max_frame_bytes, publisher.clone()),
        };
        while let Some(chunk) = next_chunk(camera, &mut response).await? {
            let published = publisher.frames;
            publisher.push(&chunk).await;
            if publisher.frames > published {
                backoff.reset();
            }
        }
        publisher.finish().await;
        match publisher.frames {
            0 => {
                return Err(match publisher.first_reason {
                    Some(reason) => format!("the camera sent no valid picture: {reason}"),
                    None => "the camera sent no picture".into(),
                });
            }
            1 => {}
            _ => return Err("the camera ended the stream".into()),
        }
        if !polling {
            polling = true;
            tracing::info!(stream = %stream.name(), fps = camera.snapshot_fps,
                           "one picture per request: polling the camera's snapshots");
        }
        tokio::time::sleep_until(asked + poll_period).await;
    }
}

/// The next piece of a streamed body, `None` at its end; fails after `read_timeout` of silence.
async fn next_chunk(camera: &Camera, response: &mut Response) -> Result<Option<Bytes>, String> {
    match tokio::time::timeout(camera.read_timeout, response.chunk()).await {
        Err(_) => Err(format!(
            "no data from the camera for {} s",
            camera.read_timeout.as_secs_f64()
        )),
        Ok(chunk) => chunk.map_err(|err| describe(&err)),
    }
}

/// Answers the camera's authentication challenge, remembering it for later requests.
struct Auth {
    credentials: Option<Credentials>,
    scheme: Option<Scheme>,
}

enum Scheme {
    Basic,
    /// The server's Digest challenge; answering it again counts up its nonce count.
    Digest(Box<digest_auth::WwwAuthenticateHeader>),
}

impl Auth {
    fn new(credentials: Option<Credentials>) -> Auth {
        Auth {
            credentials,
            scheme: None,
        }
    }

    /// GETs the camera URL, answering a 401 challenge once; fails unless the answer is 2xx.
    async fn get(&mut self, camera: &Camera, client: &Client) -> Result<Response, String> {
        let url = &camera.url.url;
        // Headers must come within the connect and read timeouts, however slow the camera.
        let headers_due = camera.connect_timeout + camera.read_timeout;
        for attempt in 0..2 {
            let request = self.authorize(client.get(url.clone()), url)?;
            let response = tokio::time::timeout(headers_due, request.send())
                .await
                .map_err(|_| {
                    format!(
                        "no answer from the camera in {} s",
                        headers_due.as_secs_f64()
                    )
                })?
                .map_err(|err| describe(&err))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Err(match status {
                    StatusCode::UNAUTHORIZED => {
                        "the camera refused the user name or password".into()
                    }
                    _ => format!("the camera answered {status}"),
                });
            }
            if self.credentials.is_none() {
                return Err(
                    "the camera asks for a user name and password; give them in the URL \
                            or as user= and password= options"
                        .into(),
                );
            }
            self.scheme = Some(Self::challenge(&response)?);
            // Reading the 401 page to its end lets the answer reuse the same connection, once
            // the client's connection task has put it back in the pool; asking at once would
            // often find it still busy and open a second connection to the camera.
            drain(camera, response).await;
            tokio::time::sleep(POOL_RETURN_PAUSE).await;
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Adds the answer to the camera's challenge to `request`, if the camera has asked.
    fn authorize(
        &mut self,
        request: RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<RequestBuilder, String> {
        let (Some(credentials), Some(scheme)) = (&self.credentials, &mut self.scheme) else {
            return Ok(request);
        };
        let prompt = match scheme {
            Scheme::Basic => {
                return Ok(request.basic_auth(&credentials.user, Some(&credentials.password)));
            }
            Scheme::Digest(prompt) => prompt,
        };
        let uri = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let context = digest_auth::AuthContext::new(
            credentials.user.as_str(),
            credentials.password.as_str(),
            uri.as_str(),
        );
        let answer = prompt
            .respond(&context)
            .map_err(|err| format!("cannot answer the camera's Digest challenge: {err}"))?;
        let mut value = HeaderValue::try_from(answer.to_header_string())
            .map_err(|_| "the user name or password holds characters HTTP cannot carry")?;
        value.set_sensitive(true);
        Ok(request.header(header::AUTHORIZATION, value))
    }

    /// The scheme a 401 response asks for: Digest if offered, else Basic.
    fn challenge(response: &Response) -> Result<Scheme, String> {
        let offers: Vec<&str> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let starts_with = |offer: &str, scheme: &str| {
            offer
                .get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        };
        if let Some(digest) = offers.iter().find(|offer| starts_with(offer, "digest")) {
            let prompt = digest_auth::parse(digest)
                .map_err(|err| format!("cannot read the camera's Digest challenge: {err}"))?;
            return Ok(Scheme::Digest(Box::new(prompt)));
        }
        if offers.iter().any(|offer| starts_with(offer, "basic")) {
            return Ok(Scheme::Basic);
        }
        Err(format!(
            "the camera asks for an unsupported authentication ({})",
            offers.join(", ")
        ))
    }
}

/// Reads and drops a small error body so that its connection can carry the next request.
async fn drain(camera: &Camera, mut response: Response) {
    let mut left = ERROR_BODY_BYTES;
    while let Ok(Some(chunk)) = next_chunk(camera, &mut response).await {
        let Some(rest) = left.checked_sub(chunk.len()) else {
            return;
        };
        left = rest;
    }
}

/// The innermost cause of a client error, which says what actually went wrong
/// ("Connection refused"), without the URL.
fn describe(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    if err.is_timeout() || err.is_connect() && text.contains("timed out") {
        return format!("could not connect to the camera in time ({text})");
    }
    if err.is_connect() {
        return format!("could not connect to the camera: {text}");
    }
    text
}
