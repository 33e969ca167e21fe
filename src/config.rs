//! `Config`: every setting framecast has, from flags or `FRAMECAST_*` environment variables.
//!
//! The defaults live here as named constants so that a limit is documented once, where it is set.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::jwt::Verifier;
use crate::secret::Secret;
use crate::stream_name::StreamName;

/// The secret in the first line of the file at `path`; `what` names it in errors.
fn read_secret_file(path: &std::path::Path, what: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read the {what} file {}: {err}", path.display()))?;
    let first_line = text.lines().next().unwrap_or_default();
    Secret::new(first_line).map_err(|err| format!("the {what} file {}: {err}", path.display()))
}

/// Where the server listens unless told otherwise: loopback only, so nothing is exposed by accident.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Largest frame accepted: 4K JPEGs at high quality run to a few MiB, so 8 MiB leaves headroom.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Idle time before a `:` comment is sent; the SSE spec suggests about 15 s against idle proxies.
pub const DEFAULT_KEEP_ALIVE: &str = "15s";
/// Reconnect delay advertised to clients in the `retry:` field.
pub const DEFAULT_RETRY_MS: u32 = 2000;
/// Most streams that may exist at once; each costs a little memory even when idle.
pub const DEFAULT_MAX_STREAMS: usize = 64;
/// Most streams that only viewers have asked for: enough for a wall of cameras whose producers
/// start late, small enough that made-up names cost little.
pub const DEFAULT_MAX_WAITING_STREAMS: usize = 64;
/// Widths a viewer may ask for: thumbnails, small tiles, and half of 720p.
pub const DEFAULT_VARIANT_WIDTHS: &str = "160,320,640";
/// Most streams one event-stream connection may carry: a wall of 64 cameras on one page.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: usize = 64;
/// Most SSE subscribers at once, across all streams; beyond it new viewers get 503.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 20_000;
/// Most event streams one client (one address, or one IPv6 /64) may hold: a wall of cameras in
/// a few tabs, or an office behind one NAT, fits; one client cannot take every viewer slot.
pub const DEFAULT_MAX_SUBSCRIBERS_PER_IP: usize = 256;
/// Most uploads one client may have in progress at once.
pub const DEFAULT_MAX_UPLOADS_PER_IP: usize = 16;
/// Most uploads in progress at once, all clients: one continuous upload for each of
/// `--max-streams` streams, and as many single-frame posts again.
pub const DEFAULT_MAX_UPLOADS: usize = 128;
/// Most bytes all uploads in progress may buffer together (each holds up to one frame).
pub const DEFAULT_MAX_UPLOAD_BUFFER_BYTES: usize = 256 * 1024 * 1024;
/// Longest a frame may take to arrive whole: a single upload's body, or each frame of a
/// continuous one. An 8 MiB frame in a minute needs about 140 KB/s.
pub const DEFAULT_UPLOAD_TIMEOUT: &str = "60s";
/// Most connections served at once: every subscriber, upload and request holds one. Above
/// `--max-subscribers`, so uploads and `/streams` still get in when the viewers are at their cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 25_000;
/// Kernel send buffer asked for on each connection (Linux doubles it). Bounds what a viewer that
/// stopped reading can pin in kernel memory: autotuning would let each one queue up to 4 MiB.
/// At 720p and 30 fps (≈5.6 MB/s) 512 KiB is ≈90 ms of video, ample on a LAN.
pub const DEFAULT_SEND_BUFFER_BYTES: usize = 256 * 1024;
/// How long a viewer's connection may accept no bytes at all before it is closed: a viewer that
/// stopped reading holds one frame, and this bounds for how long. Long enough for a phone
/// switching networks, short enough that a thousand frozen viewers free their frames soon.
pub const DEFAULT_SEND_TIMEOUT: &str = "30s";
/// Frame rate of the built-in test pattern.
pub const DEFAULT_TEST_PATTERN_FPS: u32 = 30;
/// Longest wait for the next chunk of an ingest body before the upload is dropped as stalled.
pub const DEFAULT_INGEST_IDLE: &str = "10s";
/// A stream with no new frame for this long is reported `stalled` (at 30 fps, 150 frames late).
pub const DEFAULT_STALL_AFTER: &str = "5s";
/// How long a camera stays connected after the last viewer leaves: long enough that a page
/// reload or a quick tab switch does not reconnect to the camera.
pub const DEFAULT_LINGER: &str = "30s";
/// Time allowed to open a TCP (and TLS) connection to a camera.
pub const DEFAULT_CONNECT_TIMEOUT: &str = "5s";
/// Longest silence from a camera before it is dropped and reconnected; twice the stall time, so
/// viewers hear `stalled` first.
pub const DEFAULT_READ_TIMEOUT: &str = "10s";
/// Prefix of everything framecast names in NATS.
pub const DEFAULT_NATS_PREFIX: &str = "framecast";
/// A source's lease in the cluster: short enough for a quick takeover, long enough that a
/// busy node renews it (every third of it) in time.
pub const DEFAULT_NATS_LEASE: &str = "3s";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line each, coloured on a terminal.
    Text,
    /// For log collectors: one JSON object per line, with the same fields.
    Json,
}

/// framecast: one JPEG source in, many Server-Sent Events viewers out.
#[derive(Debug, Clone, Parser)]
#[command(name = "framecast", version, about)]
pub struct Config {
    /// Address to listen on: `HOST:PORT`, where HOST is an IP address or a name such as
    /// `localhost` (every address it resolves to is bound); `0` as the port picks a free one.
    #[arg(long, env = "FRAMECAST_BIND", default_value = DEFAULT_BIND, value_parser = parse_bind)]
    pub bind: String,

    /// Serve HTTPS with this certificate chain (PEM, leaf first), offering HTTP/2 to browsers
    /// (one connection for every stream of a page) and HTTP/1.1 to other clients. Needs
    /// `--tls-key`.
    #[arg(long, env = "FRAMECAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "FRAMECAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Origins allowed to read streams from another site, comma-separated, or `*` for any.
    /// Credentials (cookies) are never allowed; `Authorization` headers are.
    #[arg(
        long,
        env = "FRAMECAST_CORS_ORIGINS",
        default_value = "*",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub cors_origins: Vec<String>,

    /// Origins whose web pages may publish (`POST /frames`), comma-separated; none by default.
    /// Uploads from other pages (a browser's `Origin` or `Sec-Fetch-Site: cross-site`) get 403;
    /// producers that are not web pages (ffmpeg, curl, scripts) are not affected.
    #[arg(long, env = "FRAMECAST_PUBLISH_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub publish_origins: Vec<String>,

    /// Host names, besides localhost and loopback addresses, that requests may be addressed to
    /// while framecast listens on loopback only (a defence against DNS rebinding), e.g. a name
    /// in /etc/hosts or a reverse proxy's `Host`. Comma-separated.
    #[arg(long, env = "FRAMECAST_ALLOWED_HOSTS", value_delimiter = ',', value_parser = parse_host_name)]
    pub allowed_hosts: Vec<String>,

    /// A token producers must send to publish, as `Authorization: Bearer TOKEN` (ffmpeg:
    /// `-headers 'Authorization: Bearer TOKEN'`); uploads without it get 401. Unset: no token.
    #[arg(long, env = "FRAMECAST_PUBLISH_TOKEN", value_parser = Secret::new, hide_env_values = true)]
    pub publish_token: Option<Secret>,

    /// A file holding the publish token (its first line), so the token stays out of the process
    /// list and the environment.
    #[arg(
        long,
        env = "FRAMECAST_PUBLISH_TOKEN_FILE",
        conflicts_with = "publish_token"
    )]
    pub publish_token_file: Option<PathBuf>,

    /// A token Prometheus (or anything else) must send to read `GET /metrics`, as
    /// `Authorization: Bearer TOKEN`. Unset: `/metrics` is open unless access tokens (JWT) are
    /// configured, in which case it takes one that may watch every stream (`subscribe: ["*"]`).
    #[arg(long, env = "FRAMECAST_METRICS_TOKEN", value_parser = Secret::new, hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// A file holding the metrics token (its first line).
    #[arg(
        long,
        env = "FRAMECAST_METRICS_TOKEN_FILE",
        conflicts_with = "metrics_token"
    )]
    pub metrics_token_file: Option<PathBuf>,

    /// Secret that access tokens (JWT, HS256) are signed with, at least 32 bytes (`openssl rand
    /// -hex 32`). When set, watching a stream needs a token that allows it; see the README's
    /// Security section for the claims.
    #[arg(long, env = "FRAMECAST_JWT_SECRET", value_parser = Secret::new, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// A file holding the JWT secret (its first line).
    #[arg(long, env = "FRAMECAST_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,

    /// A PEM public key that access tokens are signed for: RSA (RS256), EC P-256 (ES256) or
    /// Ed25519 (EdDSA). Works alone or with `--jwt-secret`.
    #[arg(long, env = "FRAMECAST_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Largest accepted JPEG frame, in bytes; bigger uploads get 413.
    #[arg(long, env = "FRAMECAST_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Send a `:` keep-alive comment after this long without a frame (e.g. `15s`, `500ms`).
    #[arg(long, env = "FRAMECAST_KEEP_ALIVE", default_value = DEFAULT_KEEP_ALIVE, value_parser = parse_duration)]
    pub keep_alive: Duration,

    /// Reconnect delay, in milliseconds, sent to clients as `retry:` at the start of each stream.
    #[arg(long, env = "FRAMECAST_RETRY_MS", default_value_t = DEFAULT_RETRY_MS)]
    pub retry_ms: u32,

    /// Most streams producers (uploads, sources) may have at once.
    #[arg(long, env = "FRAMECAST_MAX_STREAMS", default_value_t = DEFAULT_MAX_STREAMS)]
    pub max_streams: usize,

    /// Most streams that only viewers have asked for (waiting for a producer) at once; they
    /// count apart from `--max-streams` and go when their last viewer leaves.
    #[arg(long, env = "FRAMECAST_MAX_WAITING_STREAMS", default_value_t = DEFAULT_MAX_WAITING_STREAMS)]
    pub max_waiting_streams: usize,

    /// Most streams one `GET /events` connection may carry (`?stream=a&stream=b…`).
    #[arg(long, env = "FRAMECAST_MAX_STREAMS_PER_CONNECTION", default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION)]
    pub max_streams_per_connection: usize,

    /// Widths a viewer may ask frames scaled to (`/events?width=N` is rounded to the nearest),
    /// comma-separated; each (stream, width) being watched is scaled once for all its viewers.
    #[arg(long, env = "FRAMECAST_VARIANT_WIDTHS", value_delimiter = ',', default_value = DEFAULT_VARIANT_WIDTHS,
          value_parser = clap::value_parser!(u16).range(16..=7680))]
    pub variant_widths: Vec<u16>,

    /// Most SSE subscribers at once, across all streams.
    #[arg(long, env = "FRAMECAST_MAX_SUBSCRIBERS", default_value_t = DEFAULT_MAX_SUBSCRIBERS)]
    pub max_subscribers: usize,

    /// Most event streams one client address (an IPv6 /64) may have open; more get 429.
    #[arg(long, env = "FRAMECAST_MAX_SUBSCRIBERS_PER_IP", default_value_t = DEFAULT_MAX_SUBSCRIBERS_PER_IP)]
    pub max_subscribers_per_ip: usize,

    /// Most uploads one client address (an IPv6 /64) may have in progress; more get 429.
    #[arg(long, env = "FRAMECAST_MAX_UPLOADS_PER_IP", default_value_t = DEFAULT_MAX_UPLOADS_PER_IP)]
    pub max_uploads_per_ip: usize,

    /// Most uploads in progress at once; more get 503.
    #[arg(long, env = "FRAMECAST_MAX_UPLOADS", default_value_t = DEFAULT_MAX_UPLOADS)]
    pub max_uploads: usize,

    /// Most bytes all uploads in progress may buffer together; an upload that would pass it
    /// gets 503.
    #[arg(long, env = "FRAMECAST_MAX_UPLOAD_BUFFER_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BUFFER_BYTES)]
    pub max_upload_buffer_bytes: usize,

    /// Time a frame has to arrive whole: a single-JPEG upload's body, or each frame of a
    /// continuous upload after the one before; slower uploads get 408.
    #[arg(long, env = "FRAMECAST_UPLOAD_TIMEOUT", default_value = DEFAULT_UPLOAD_TIMEOUT, value_parser = parse_duration)]
    pub upload_timeout: Duration,

    /// framecast is behind a reverse proxy: take the client's address for the per-client
    /// limits from the last entry of `Forwarded` or `X-Forwarded-For`, which the proxy must set.
    #[arg(long, env = "FRAMECAST_TRUST_PROXY",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub trust_proxy: bool,

    /// Most open connections; beyond it new ones get 503, except `/healthz`. Lowered at start
    /// if the open-file limit (raised to its hard limit) cannot hold that many, with a warning.
    #[arg(long, env = "FRAMECAST_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Kernel send buffer per connection, in bytes (`0` leaves it to the kernel's autotuning).
    /// Raise it for viewers far away on fast links.
    #[arg(long, env = "FRAMECAST_SEND_BUFFER_BYTES", default_value_t = DEFAULT_SEND_BUFFER_BYTES)]
    pub send_buffer_bytes: usize,

    /// Close a connection that accepts no bytes for this long (e.g. `30s`; `0` never does).
    /// Progress, however slow, resets the clock.
    #[arg(long, env = "FRAMECAST_SEND_TIMEOUT", default_value = DEFAULT_SEND_TIMEOUT, value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// Drop an upload whose body sends nothing for this long (e.g. `10s`).
    #[arg(long, env = "FRAMECAST_INGEST_IDLE", default_value = DEFAULT_INGEST_IDLE, value_parser = parse_duration)]
    pub ingest_idle: Duration,

    /// A source feeding a stream: `NAME=SPEC [OPTION...]`, where SPEC is a camera URL
    /// (`http://user:pass@camera/video.mjpg`, MJPEG stream or JPEG snapshot), `-` for
    /// standard input, or an `.mjpeg` file or folder of `.jpg` files to replay. Options:
    /// `fps=N`, `linger=30s`, `always-on`, `user=NAME`, `password=SECRET`. Repeatable; the
    /// variable takes a comma-separated list.
    ///
    /// Kept as text here and read by [`Config::sources`], so that a mistake is reported without
    /// repeating the value, which may hold a password.
    #[arg(
        long = "source",
        env = "FRAMECAST_SOURCE",
        value_delimiter = ',',
        value_name = "NAME=SPEC"
    )]
    pub source_flags: Vec<String>,

    /// Sources given as values rather than flags (by tests and embedders); [`Config::sources`]
    /// returns these and the parsed `--source` flags.
    #[arg(skip)]
    pub sources: Vec<SourceSpec>,

    /// Report a stream as `stalled` after this long without a frame.
    #[arg(long, env = "FRAMECAST_STALL_AFTER", default_value = DEFAULT_STALL_AFTER, value_parser = parse_duration)]
    pub stall_after: Duration,

    /// Keep a camera connected this long after its last viewer leaves.
    #[arg(long, env = "FRAMECAST_LINGER", default_value = DEFAULT_LINGER, value_parser = parse_duration)]
    pub linger: Duration,

    /// Keep every camera connected even with no viewers (faster first frame, constant load).
    #[arg(long, env = "FRAMECAST_ALWAYS_ON",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub always_on: bool,

    /// Give up on connecting to a camera after this long.
    #[arg(long, env = "FRAMECAST_CONNECT_TIMEOUT", default_value = DEFAULT_CONNECT_TIMEOUT, value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Reconnect to a camera that sends nothing for this long (there is no total timeout).
    #[arg(long, env = "FRAMECAST_READ_TIMEOUT", default_value = DEFAULT_READ_TIMEOUT, value_parser = parse_duration)]
    pub read_timeout: Duration,

    /// How logs are written to stderr: `text` for people, `json` for log collectors (one
    /// object per line). `FRAMECAST_LOG` (e.g. `framecast=debug`) sets what is logged.
    #[arg(long, env = "FRAMECAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Do not feed the `default` stream from the built-in test pattern.
    #[arg(long, env = "FRAMECAST_NO_TEST_PATTERN",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_test_pattern: bool,

    /// Frames per second of the built-in test pattern.
    #[arg(long, env = "FRAMECAST_TEST_PATTERN_FPS", default_value_t = DEFAULT_TEST_PATTERN_FPS,
          value_parser = clap::value_parser!(u32).range(1..=120))]
    pub test_pattern_fps: u32,

    /// Join a cluster: share streams with every framecast node using these NATS servers
    /// (comma-separated `nats://[USER:PASSWORD@]HOST:PORT` or `tls://` URLs; nats-server must
    /// run with JetStream, `-js`).
    #[arg(long, env = "FRAMECAST_NATS", value_parser = crate::cluster::parse_servers,
          hide_env_values = true)]
    pub nats: Option<crate::cluster::NatsServers>,

    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed) to join the cluster.
    #[arg(long, env = "FRAMECAST_NATS_CREDS", requires = "nats")]
    pub nats_creds: Option<PathBuf>,

    /// This node's name in the cluster, as `GET /streams` shows it [default: the host name
    /// and a random suffix].
    #[arg(long, env = "FRAMECAST_NATS_NODE", requires = "nats", value_parser = parse_node_name)]
    pub nats_node: Option<String>,

    /// Prefix of the subjects, the frame log and the lease bucket in NATS, so that several
    /// clusters can share one NATS.
    #[arg(long, env = "FRAMECAST_NATS_PREFIX", default_value = DEFAULT_NATS_PREFIX,
          value_parser = parse_node_name)]
    pub nats_prefix: String,

    /// How long a node's hold on a source lasts without renewal: when a node dies, another
    /// takes its cameras over within about this time.
    #[arg(long, env = "FRAMECAST_NATS_LEASE", default_value = DEFAULT_NATS_LEASE,
          value_parser = parse_lease)]
    pub nats_lease: Duration,
}

impl Config {
    /// The publish token, from `--publish-token` or read from `--publish-token-file`.
    pub fn publish_token(&self) -> Result<Option<Secret>, String> {
        match &self.publish_token_file {
            Some(path) => read_secret_file(path, "publish token").map(Some),
            None => Ok(self.publish_token.clone()),
        }
    }

    /// The metrics token, from `--metrics-token` or read from `--metrics-token-file`.
    pub fn metrics_token(&self) -> Result<Option<Secret>, String> {
        match &self.metrics_token_file {
            Some(path) => read_secret_file(path, "metrics token").map(Some),
            None => Ok(self.metrics_token.clone()),
        }
    }

    /// The access-token verifier the JWT options describe, if any is set; files are read here.
    pub fn verifier(&self) -> Result<Option<Verifier>, String> {
        let secret = match &self.jwt_secret_file {
            Some(path) => Some(read_secret_file(path, "JWT secret")?),
            None => self.jwt_secret.clone(),
        };
        let public_key = match &self.jwt_public_key {
            Some(path) => Some(std::fs::read(path).map_err(|err| {
                format!("cannot read the JWT public key {}: {err}", path.display())
            })?),
            None => None,
        };
        Verifier::new(secret, public_key.as_deref()).map_err(|err| err.to_string())
    }

    /// Every source: those given as values, then each `--source` flag, parsed. An error names
    /// the flag's position and stream but never repeats its value.
    pub fn sources(&self) -> Result<Vec<SourceSpec>, String> {
        let mut sources = self.sources.clone();
        for (index, flag) in self.source_flags.iter().enumerate() {
            let spec = parse_source(flag)
                .map_err(|err| format!("--source number {} is not valid: {err}", index + 1))?;
            sources.push(spec);
        }
        Ok(sources)
    }
}

impl Default for Config {
    /// The configuration of `framecast` run with no flags and no environment.
    fn default() -> Self {
        Config::parse_from(["framecast"])
    }
}

/// One `--source NAME=SPEC [OPTION...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The stream the source feeds.
    pub stream: StreamName,
    /// Where its frames come from.
    pub input: SourceInput,
    /// Frames per second: how often a snapshot URL is polled or a file replayed.
    pub fps: Option<u32>,
    /// How long a camera stays connected after its last viewer leaves (else `--linger`).
    pub linger: Option<Duration>,
    /// Keep this camera connected even with no viewers.
    pub always_on: bool,
}

/// Where a source reads its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceInput {
    /// Standard input (`-`).
    Stdin,
    /// An `http://` or `https://` URL: an MJPEG stream or a JPEG snapshot.
    Camera(CameraUrl),
    /// An MJPEG file or a folder of JPEGs.
    File(PathBuf),
}

/// A camera's URL with its credentials kept apart, so that logging the URL never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    /// The URL without user name or password.
    pub url: reqwest::Url,
    /// User name and password, from the URL or from `user=` / `password=` options.
    pub credentials: Option<Credentials>,
}

/// A user name and password for Basic or Digest authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password; never printed.
    pub password: String,
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraUrl")
            .field("url", &self.to_string())
            .field("user", &self.credentials.as_ref().map(|c| c.user.as_str()))
            .finish()
    }
}

/// The URL with every query value hidden: many cameras take their password in the query
/// (`?user=admin&pwd=…`), and this is what logs show.
impl fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.url.query().is_none() {
            return f.write_str(self.url.as_str());
        }
        let mut shown = self.url.clone();
        let hidden: Vec<String> = self
            .url
            .query_pairs()
            .map(|(key, _)| format!("{key}=***"))
            .collect();
        shown.set_query(Some(&hidden.join("&")));
        f.write_str(shown.as_str())
    }
}

/// Parses `NAME=SPEC` followed by space-separated options (`fps=5 linger=10s always-on
/// user=admin password=secret`). Errors never repeat a URL, which may hold a password.
pub fn parse_source(text: &str) -> Result<SourceSpec, String> {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let (name, spec) = first
        .split_once('=')
        .ok_or("use NAME=SPEC, e.g. cam=- or cam=http://camera/video.mjpg")?;
    let stream = StreamName::parse(Some(name)).map_err(|err| err.to_string())?;
    let mut source = SourceSpec {
        stream,
        input: SourceInput::Stdin,
        fps: None,
        linger: None,
        always_on: false,
    };
    let (mut user, mut password) = (None, None);
    for word in words {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "fps" => {
                let fps: u32 = value.parse().map_err(|_| {
                    format!("{name}: fps={value:?} is not a whole number; use fps=1 to fps=120")
                })?;
                if !(1..=120).contains(&fps) {
                    return Err(format!(
                        "{name}: fps={fps} is out of range; use fps=1 to fps=120"
                    ));
                }
                source.fps = Some(fps);
            }
            "linger" => source.linger = Some(parse_duration(value)?),
            "always-on" => source.always_on = true,
            "user" => user = Some(value.to_owned()),
            "password" => password = Some(value.to_owned()),
            _ => {
                return Err(format!(
                    "{name}: unknown option {key:?}; use fps=, linger=, always-on, user=, password="
                ));
            }
        }
    }
    source.input = if spec == "-" {
        SourceInput::Stdin
    } else if spec.starts_with("http://") || spec.starts_with("https://") {
        let mut url = reqwest::Url::parse(spec)
            .map_err(|err| format!("{name}: the camera URL is not valid ({err})"))?;
        if !url.username().is_empty() {
            let decode = |part: &str| {
                percent_decode(part).ok_or_else(|| format!("{name}: bad escape in the URL's user"))
            };
            user.get_or_insert(decode(url.username())?);
            password.get_or_insert(decode(url.password().unwrap_or_default())?);
            // Infallible for http(s) URLs, which always have a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        let credentials = user.map(|user| Credentials {
            user,
            password: password.unwrap_or_default(),
        });
        SourceInput::Camera(CameraUrl { url, credentials })
    } else if let Some((scheme, _)) = spec.split_once("://") {
        // Only the scheme is repeated: the rest may hold a password.
        let scheme: String = scheme.chars().take(16).collect();
        return Err(format!(
            "{name}: {scheme}:// sources are not supported; framecast pulls http:// and https:// \
             cameras (MJPEG streams or JPEG snapshots), reads standard input (-) and replays files. \
             For another protocol, let ffmpeg convert: ffmpeg -i URL -f mjpeg - | framecast --source {name}=-"
        ));
    } else {
        let path = PathBuf::from(spec);
        if !path.exists() {
            return Err(format!("{spec:?}: no such file or folder"));
        }
        SourceInput::File(path)
    };
    Ok(source)
}

/// Decodes `%XX` escapes, as user names and passwords in URLs carry them.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Reads one `--cors-origins` entry: `*`, or an origin such as `https://app.example.com:8443`
/// (scheme, host and optional port; no path). Spaces around it are ignored.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim();
    if origin == "*" {
        return Ok(origin.to_owned());
    }
    let usage = || {
        format!(
            "{origin:?} is not an origin: use scheme://host[:port] such as https://app.example.com, \
             or * for any"
        )
    };
    let (scheme, host) = origin.split_once("://").ok_or_else(usage)?;
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' '])
        && axum::http::HeaderValue::from_str(origin).is_ok();
    if !valid {
        return Err(usage());
    }
    Ok(origin.to_owned())
}

/// Reads one `--allowed-hosts` entry: a host name or address, without scheme or port.
pub fn parse_host_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a host name: give it without scheme or port, e.g. camera-box.lan"
        ))
    }
}

/// Checks that `text` is `HOST:PORT` (an IPv6 address in brackets); the host is resolved when
/// the server binds.
pub fn parse_bind(text: &str) -> Result<String, String> {
    let usage =
        || format!("{text:?}: use HOST:PORT, e.g. 127.0.0.1:8080, localhost:8080 or [::1]:8080");
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    port.parse::<u16>().map_err(|_| usage())?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) {
        return Err(usage());
    }
    Ok(text.to_owned())
}

/// A node name or NATS prefix: 1 to 64 of `A-Z a-z 0-9 _ -`, safe in a subject, a JetStream
/// name and a log line.
fn parse_node_name(text: &str) -> Result<String, String> {
    StreamName::parse(Some(text))
        .map(|name| name.as_str().to_owned())
        .map_err(|_| "use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'".into())
}

/// A lease of at least a second (renewals go out every third of it).
fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = parse_duration(text)?;
    if lease < Duration::from_secs(1) {
        return Err("a lease shorter than 1s cannot be renewed reliably".into());
    }
    Ok(lease)
}

/// Parses `15s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 15s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: use ms, s or m as the unit")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn defaults_match_the_documented_constants() {
        let config = Config::default();
        assert_eq!(config.bind, DEFAULT_BIND);
        assert_eq!(config.cors_origins, vec!["*".to_string()]);
        assert_eq!(config.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(config.keep_alive, Duration::from_secs(15));
        assert!(!config.no_test_pattern);
        assert!(config.sources.is_empty());
    }

    #[test]
    fn sources_parse_as_name_equals_spec() {
        let spec = parse_source("cam_1=-").unwrap();
        assert_eq!(spec.stream.as_str(), "cam_1");
        assert_eq!(spec.input, SourceInput::Stdin);
        assert!(parse_source("cam").is_err());
        assert!(parse_source("bad name=-").is_err());
        assert!(parse_source("cam=/no/such/kind").is_err());
        assert!(parse_source("cam=- fps=0").is_err());
        assert!(parse_source("cam=- colour=blue").is_err());
    }

    #[test]
    fn camera_credentials_leave_the_url_and_never_show() {
        let spec = parse_source("cam=http://admin:p%40ss@10.0.0.5:8080/video.mjpg fps=5 always-on")
            .unwrap();
        let SourceInput::Camera(camera) = &spec.input else {
            panic!("{spec:?}")
        };
        assert_eq!(camera.url.as_str(), "http://10.0.0.5:8080/video.mjpg");
        let credentials = camera.credentials.as_ref().unwrap();
        assert_eq!(
            (credentials.user.as_str(), credentials.password.as_str()),
            ("admin", "p@ss")
        );
        assert_eq!((spec.fps, spec.always_on), (Some(5), true));
        assert!(!format!("{spec:?} {camera}").contains("p@ss"));

        let spec =
            parse_source("cam=https://cam/snap.jpg user=viewer password=s3cret linger=5s").unwrap();
        let SourceInput::Camera(camera) = &spec.input else {
            panic!("{spec:?}")
        };
        assert_eq!(camera.credentials.as_ref().unwrap().password, "s3cret");
        assert_eq!(spec.linger, Some(Duration::from_secs(5)));
        assert!(!format!("{spec:?}").contains("s3cret"));

        let err = parse_source("cam=http://admin:hunter2@[bad/").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn query_values_never_show() {
        let spec = parse_source("cam=http://10.0.0.5/video.cgi?user=admin&pwd=hunter2").unwrap();
        let SourceInput::Camera(camera) = &spec.input else {
            panic!("{spec:?}")
        };
        assert_eq!(
            camera.url.query(),
            Some("user=admin&pwd=hunter2"),
            "still sent"
        );
        assert_eq!(
            camera.to_string(),
            "http://10.0.0.5/video.cgi?user=***&pwd=***"
        );
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn paths_become_file_sources() {
        let spec = parse_source("replay=tests/fixtures fps=10").unwrap();
        assert_eq!(spec.input, SourceInput::File("tests/fixtures".into()));
        assert_eq!(spec.fps, Some(10));
    }
}
