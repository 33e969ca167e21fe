//! Test helpers: a real framecast server on 127.0.0.1:0, an SSE reader, and real JPEGs.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use framecast::config::Config;
use framecast::shutdown::Shutdown;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often [`eventually`] checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// Checks `condition` every few milliseconds until it holds; fails the test, naming `what`,
/// if it still does not after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A framecast server running in this process, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server without the test pattern, after `adjust` has changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            no_test_pattern: true,
            ..Config::default()
        };
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(framecast::run(listener, config, shutdown.clone()));
        TestServer {
            addr,
            shutdown,
            task: Some(task),
        }
    }

    /// Starts a server with the default configuration minus the test pattern.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs one JPEG to `stream` and returns the status and JSON body.
    pub async fn post_jpeg(&self, stream: &str, jpeg: &[u8]) -> (u16, serde_json::Value) {
        post_jpeg_to(&self.url(&format!("/frames?stream={stream}")), jpeg).await
    }

    /// Every `/streams` entry.
    pub async fn streams(&self) -> Vec<serde_json::Value> {
        let mut all: serde_json::Value = reqwest::get(self.url("/streams"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match all["streams"].take() {
            serde_json::Value::Array(streams) => streams,
            other => panic!("/streams lists no streams: {other}"),
        }
    }

    /// The `/streams` entry for `stream`.
    pub async fn stream_status(&self, stream: &str) -> serde_json::Value {
        self.streams()
            .await
            .into_iter()
            .find(|s| s["name"] == stream)
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// One parsed server-sent event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
    pub comment: bool,
}

impl Event {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }

    /// The JPEG carried by a frame event, decoded.
    pub fn jpeg(&self) -> Vec<u8> {
        let json = self.json();
        base64::engine::general_purpose::STANDARD
            .decode(json["jpeg"].as_str().expect("frame event has a jpeg field"))
            .unwrap()
    }
}

/// Reads events from an SSE response body, parsing the wire format as a browser would.
pub struct EventReader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no blank line, so that a big event arriving in
    /// many small chunks is not searched from its start again for each one.
    searched: usize,
}

impl EventReader {
    pub async fn open(url: &str) -> EventReader {
        let response = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventReader::from_body(response.bytes_stream().boxed())
    }

    pub fn from_body(body: BoxStream<'static, reqwest::Result<Bytes>>) -> EventReader {
        EventReader {
            body,
            buffer: BytesMut::new(),
            searched: 0,
        }
    }

    /// The next event or comment block; `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            // A blank line may straddle the end of what was searched before.
            let from = self.searched.saturating_sub(1);
            if let Some(at) = find(&self.buffer[from..], b"\n\n") {
                let end = from + at;
                let block = self.buffer.split_to(end + 2);
                self.searched = 0;
                return Some(parse_block(&block[..end]));
            }
            self.searched = self.buffer.len();
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("no event within the wait limit")?;
            self.buffer.extend_from_slice(&chunk.ok()?);
        }
    }

    /// The next `frame` event, skipping `retry:`, comments and other events.
    pub async fn next_frame(&mut self) -> Option<Event> {
        loop {
            let event = self.next().await?;
            if event.event.as_deref() == Some("frame") {
                return Some(event);
            }
        }
    }
}

/// Reads `multipart/x-mixed-replace` parts by their `Content-Length`, as a strict client would.
pub struct PartReader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl PartReader {
    pub async fn open(url: &str) -> PartReader {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "multipart/x-mixed-replace; boundary=framecast-frame"
        );
        PartReader {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
        }
    }

    async fn fill(&mut self, at_least: usize) {
        while self.buffer.len() < at_least {
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("a part within the wait limit")
                .expect("the body goes on")
                .unwrap();
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next part's JPEG.
    pub async fn next(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("Content-Length: "))
                    .expect("each part says its length")
                    .parse()
                    .unwrap();
                assert!(head.contains("Content-Type: image/jpeg"), "{head}");
                let start = end + 4;
                self.fill(start + length + 2).await;
                let jpeg = self.buffer[start..start + length].to_vec();
                assert_eq!(&self.buffer[start + length..start + length + 2], b"\r\n");
                self.buffer.drain(..start + length + 2);
                return jpeg;
            }
            let more = self.buffer.len() + 1;
            self.fill(more).await;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one event block (lines without the blank line that ended it).
pub fn parse_block(block: &[u8]) -> Event {
    let text = std::str::from_utf8(block).expect("SSE is UTF-8");
    let mut event = Event::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.starts_with(':') {
            event.comment = true;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => data.push(value),
            "retry" => event.retry = Some(value.parse().unwrap()),
            other => panic!("unexpected field {other:?}"),
        }
    }
    event.data = data.join("\n");
    event
}

/// A real baseline JPEG of `width`x`height` whose content depends on `seed`.
pub fn sample_jpeg(width: u16, height: u16, seed: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for y in 0..height as u32 {
        for x in 0..width as u32 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Smooth gradients plus noise: compresses like a busy camera picture.
            rgb.push((x + seed * 7) as u8 ^ (state & 0x1f) as u8);
            rgb.push((y + seed * 3) as u8 ^ (state >> 8 & 0x1f) as u8);
            rgb.push((x ^ y) as u8 ^ (state >> 16 & 0x1f) as u8);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 85)
        .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    jpeg
}

/// Starts the real `framecast` binary with `args` (plus `--bind 127.0.0.1:0` unless they bind)
/// and `stdin`,
/// and returns it with its base URL, read from the line it prints once listening.
/// Its stderr is a pipe that is closed at once, which the server must survive.
pub async fn spawn_binary(
    args: &[&str],
    stdin: std::process::Stdio,
) -> (tokio::process::Child, String) {
    let default_bind: &[&str] = if args.contains(&"--bind") {
        &[]
    } else {
        &["--bind", "127.0.0.1:0"]
    };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"));
    command.args(default_bind).args(args).stdin(stdin);
    spawn_command(command).await
}

/// Starts `command`, which runs the binary (perhaps through a shell that sets limits first), and
/// returns it with its base URL, as [`spawn_binary`] does.
pub async fn spawn_command(
    mut command: tokio::process::Command,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("framecast listening on ")
        .expect("the first line names the address")
        .to_owned();
    (child, url)
}

/// The real binary with its logs at debug level in a pipe, for tests that read them.
pub struct LoggedBinary {
    pub child: tokio::process::Child,
    /// Its base URL, from the line it prints once listening.
    pub url: String,
    logs: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    /// Every log line read so far.
    pub seen: Vec<String>,
}

impl LoggedBinary {
    /// Starts the binary with `args` plus `--bind 127.0.0.1:0`.
    pub async fn start(args: &[&str]) -> LoggedBinary {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env("FRAMECAST_LOG", "framecast=debug")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .expect("the listening line within the wait limit")
            .unwrap()
            .expect("the server is running");
        let url = line
            .strip_prefix("framecast listening on ")
            .expect("the first line names the address")
            .to_owned();
        let logs = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        LoggedBinary {
            child,
            url,
            logs,
            seen: Vec::new(),
        }
    }

    /// Reads log lines until one contains `text`; returns every line read so far.
    pub async fn wait_for_log(&mut self, text: &str) -> String {
        while !self.seen.iter().any(|line| line.contains(text)) {
            let line = tokio::time::timeout(WAIT, self.logs.next_line())
                .await
                .unwrap_or_else(|_| panic!("no log line with {text:?} within the wait limit"))
                .unwrap()
                .expect("the server is still running");
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// Stops the server and returns every line it logged.
    pub async fn stop_and_read_logs(mut self) -> String {
        self.child.start_kill().unwrap();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(WAIT, self.logs.next_line()).await {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// ffmpeg producing two seconds of its test source (320x240, 15 fps, in real time) with
/// `muxer` and `options` into `output` (a URL, or `-` for stdout).
pub fn ffmpeg_test_source(muxer: &str, options: &[&str], output: &str) -> tokio::process::Command {
    let mut ffmpeg = tokio::process::Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"])
        .args(["-t", "2", "-f", muxer])
        .args(options)
        .arg(output)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    ffmpeg
}

/// Publishes `frames` to `stream` every `interval` until aborted, from a task.
pub fn publish_every(
    server: &TestServer,
    stream: &str,
    frames: Vec<Vec<u8>>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let url = server.url(&format!("/frames?stream={stream}"));
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut ticks = tokio::time::interval(interval);
        for frame in frames.iter().cycle() {
            ticks.tick().await;
            let response = client
                .post(&url)
                .header("content-type", "image/jpeg")
                .body(frame.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    })
}

/// Sends `request` with a body fed chunk by chunk through the returned sender (a continuous
/// upload); the task ends with the answer's status and JSON body.
pub fn start_upload(
    request: reqwest::RequestBuilder,
) -> (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    JoinHandle<(u16, serde_json::Value)>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let body = tokio_stream::wrappers::ReceiverStream::new(receiver).map(Ok::<_, std::io::Error>);
    let request = request.body(reqwest::Body::wrap_stream(body));
    let reply = tokio::spawn(async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    });
    (sender, reply)
}

/// One part laid out as `ffmpeg -f mpjpeg` writes it: headers, JPEG, then the next delimiter.
/// The body starts with a delimiter line of its own.
pub fn multipart_part(boundary: &str, jpeg: &[u8]) -> Vec<u8> {
    let mut part = format!(
        "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    )
    .into_bytes();
    part.extend_from_slice(jpeg);
    part.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    part
}

/// POSTs one JPEG to `url` (a `/frames?stream=…` URL) and returns the status and JSON body.
pub async fn post_jpeg_to(url: &str, jpeg: &[u8]) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "image/jpeg")
        .body(jpeg.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
