//! `Config`: every setting framecast has, from flags or `FRAMECAST_*` environment variables.
//!
//! The defaults live here as named constants so that a limit is documented once, where it is set.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::stream_name::StreamName;

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
/// Most SSE subscribers at once, across all streams; beyond it new viewers get 503.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 20_000;
/// Kernel send buffer asked for on each connection (Linux doubles it). Bounds what a viewer that
/// stopped reading can pin in kernel memory: autotuning would let each one queue up to 4 MiB.
/// At 720p and 30 fps (≈5.6 MB/s) 512 KiB is ≈90 ms of video, ample on a LAN.
pub const DEFAULT_SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Frame rate of the built-in test pattern.
pub const DEFAULT_TEST_PATTERN_FPS: u32 = 30;
/// Longest wait for the next chunk of an ingest body before the upload is dropped as stalled.
pub const DEFAULT_INGEST_IDLE: &str = "10s";

/// framecast: one JPEG source in, many Server-Sent Events viewers out.
#[derive(Debug, Clone, Parser)]
#[command(name = "framecast", version, about)]
pub struct Config {
    /// Address to listen on (`0` as the port picks a free one).
    #[arg(long, env = "FRAMECAST_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// Origins allowed to read streams from another site, comma-separated, or `*` for any.
    /// Credentials (cookies) are never allowed; `Authorization` headers are.
    #[arg(
        long,
        env = "FRAMECAST_CORS_ORIGINS",
        default_value = "*",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Largest accepted JPEG frame, in bytes; bigger uploads get 413.
    #[arg(long, env = "FRAMECAST_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Send a `:` keep-alive comment after this long without a frame (e.g. `15s`, `500ms`).
    #[arg(long, env = "FRAMECAST_KEEP_ALIVE", default_value = DEFAULT_KEEP_ALIVE, value_parser = parse_duration)]
    pub keep_alive: Duration,

    /// Reconnect delay, in milliseconds, sent to clients as `retry:` at the start of each stream.
    #[arg(long, env = "FRAMECAST_RETRY_MS", default_value_t = DEFAULT_RETRY_MS)]
    pub retry_ms: u32,

    /// Most streams that may exist at once.
    #[arg(long, env = "FRAMECAST_MAX_STREAMS", default_value_t = DEFAULT_MAX_STREAMS)]
    pub max_streams: usize,

    /// Most SSE subscribers at once, across all streams.
    #[arg(long, env = "FRAMECAST_MAX_SUBSCRIBERS", default_value_t = DEFAULT_MAX_SUBSCRIBERS)]
    pub max_subscribers: usize,

    /// Kernel send buffer per connection, in bytes (`0` leaves it to the kernel's autotuning).
    /// Raise it for viewers far away on fast links.
    #[arg(long, env = "FRAMECAST_SEND_BUFFER_BYTES", default_value_t = DEFAULT_SEND_BUFFER_BYTES)]
    pub send_buffer_bytes: usize,

    /// Drop an upload whose body sends nothing for this long (e.g. `10s`).
    #[arg(long, env = "FRAMECAST_INGEST_IDLE", default_value = DEFAULT_INGEST_IDLE, value_parser = parse_duration)]
    pub ingest_idle: Duration,

    /// A source feeding a stream, as `NAME=-` to read MJPEG or concatenated JPEGs from stdin
    /// (e.g. `ffmpeg ... -f mjpeg - | framecast --source cam=-`). Repeatable; the variable
    /// takes a comma-separated list.
    #[arg(long = "source", env = "FRAMECAST_SOURCE", value_delimiter = ',', value_parser = parse_source)]
    pub sources: Vec<SourceSpec>,

    /// Do not feed the `default` stream from the built-in test pattern.
    #[arg(long, env = "FRAMECAST_NO_TEST_PATTERN",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_test_pattern: bool,

    /// Frames per second of the built-in test pattern.
    #[arg(long, env = "FRAMECAST_TEST_PATTERN_FPS", default_value_t = DEFAULT_TEST_PATTERN_FPS,
          value_parser = clap::value_parser!(u32).range(1..=120))]
    pub test_pattern_fps: u32,
}

impl Default for Config {
    /// The configuration of `framecast` run with no flags and no environment.
    fn default() -> Self {
        Config::parse_from(["framecast"])
    }
}

/// One `--source NAME=SPEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The stream the source feeds.
    pub stream: StreamName,
    /// Where its frames come from.
    pub input: SourceInput,
}

/// Where a source reads its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceInput {
    /// Standard input (`-`).
    Stdin,
}

/// Parses `NAME=SPEC`.
pub fn parse_source(text: &str) -> Result<SourceSpec, String> {
    let (name, spec) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: use NAME=SPEC, e.g. cam=-"))?;
    let stream = StreamName::parse(Some(name)).map_err(|err| err.to_string())?;
    let input = match spec {
        "-" => SourceInput::Stdin,
        other => {
            return Err(format!(
                "{other:?}: only `-` (standard input) is supported as a source so far"
            ));
        }
    };
    Ok(SourceSpec { stream, input })
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
        assert_eq!(config.bind, DEFAULT_BIND.parse().unwrap());
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
    }
}
