//! `GET /metrics`, read by the real tools: `promtool check metrics` lints it, and a real
//! Prometheus server (Debian's `prometheus`) scrapes it with a bearer token and answers queries.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::common::{EventReader, TestServer, eventually, publish_every, sample_jpeg};

const METRICS_TOKEN: &str = "scrape-me-7c1e9a3f";

/// How long a real Prometheus gets to start and scrape: it scrapes every second.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(30);

/// The Debian tool at `/usr/bin/NAME` (outside `PATH` for no one, but named in full so a
/// missing package says so).
/// Fails the test unless `promtool check metrics` finds nothing wrong with `text`.
pub async fn promtool_check(text: &str) {
    let mut promtool = tokio::process::Command::new(debian_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let checked = tokio::time::timeout(Duration::from_secs(10), promtool.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool check metrics found problems:\n{said}"
    );
}

fn debian_tool(name: &str) -> String {
    let path = format!("/usr/bin/{name}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install Debian's prometheus package (tests/all.sh does)"
    );
    path
}

async fn metrics_text(server: &TestServer, token: Option<&str>) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The value of the sample `line_start` (a name with its labels, exactly as rendered).
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn promtool_passes_the_metrics_of_a_busy_server() {
    let server = TestServer::start().await;
    let frames: Vec<Vec<u8>> = (0..3).map(|seed| sample_jpeg(320, 240, seed)).collect();
    server.post_jpeg("cam", &frames[0]).await;
    let publisher = publish_every(&server, "cam", frames, Duration::from_millis(50));
    // One of each output, a scaled variant, a refused upload and an unknown route.
    let mut sse = EventReader::open(&server.url("/events?stream=cam")).await;
    let mut thumbnails = EventReader::open(&server.url("/events?stream=cam&width=160")).await;
    let mjpeg = reqwest::get(server.url("/mjpeg?stream=cam")).await.unwrap();
    assert_eq!(mjpeg.status(), 200);
    let snapshot = reqwest::get(server.url("/snapshot?stream=cam"))
        .await
        .unwrap();
    assert_eq!(snapshot.status(), 200);
    let (refused, _) = server.post_jpeg("cam", b"not a jpeg").await;
    assert_eq!(refused, 400);
    let missing = reqwest::get(server.url("/no/such/route")).await.unwrap();
    assert_eq!(missing.status(), 404);
    sse.next_frame().await.unwrap();
    thumbnails.next_frame().await.unwrap();

    let (status, content_type, text) = metrics_text(&server, None).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for (line_start, at_least) in [
        ("framecast_subscribers{output=\"sse\",stream=\"cam\"}", 2.0),
        (
            "framecast_subscribers{output=\"mjpeg\",stream=\"cam\"}",
            1.0,
        ),
        ("framecast_frames_published_total{stream=\"cam\"}", 2.0),
        ("framecast_frames_rejected_total{stream=\"cam\"}", 1.0),
        (
            "framecast_frames_sent_total{output=\"snapshot\",stream=\"cam\"}",
            1.0,
        ),
        (
            "framecast_variant_frames_scaled_total{stream=\"cam\",width=\"160\"}",
            1.0,
        ),
        ("framecast_stream_state{state=\"live\",stream=\"cam\"}", 1.0),
        (
            "framecast_http_responses_total{route=\"other\",status=\"404\"}",
            1.0,
        ),
        (
            "framecast_http_responses_total{route=\"/frames\",status=\"400\"}",
            1.0,
        ),
        ("framecast_uploads_total{result=\"failed\"}", 1.0),
        ("framecast_connections", 2.0),
        ("framecast_viewers", 3.0),
        ("framecast_build_info{version=\"0.1.0\"}", 1.0),
    ] {
        let value = sample(&text, line_start).unwrap_or_else(|| panic!("no {line_start}:\n{text}"));
        assert!(
            value >= at_least,
            "{line_start} is {value}, expected at least {at_least}"
        );
    }

    promtool_check(&text).await;
    publisher.abort();
}

#[tokio::test]
async fn the_metrics_token_is_required_once_set_and_never_repeated() {
    let server = TestServer::start_with(|config| {
        config.metrics_token = Some(framecast::secret::Secret::new(METRICS_TOKEN).unwrap());
    })
    .await;
    let (status, _, body) = metrics_text(&server, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, _, body) = metrics_text(&server, Some("scrape-me-wrong")).await;
    assert_eq!(status, 401);
    assert!(!body.contains("scrape-me"), "{body}");
    // Only as a header: a token in a scrape URL would end up in access logs.
    let in_query = reqwest::get(server.url(&format!("/metrics?access_token={METRICS_TOKEN}")))
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);
    let (status, _, body) = metrics_text(&server, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(!body.contains(METRICS_TOKEN));
    // The rest of the reading routes stay as they were: open without access tokens.
    let streams = reqwest::get(server.url("/streams")).await.unwrap();
    assert_eq!(streams.status(), 200);
}

/// A Prometheus server scraping `target` every second with `token`, on a free loopback port.
struct Prometheus {
    _child: tokio::process::Child,
    _dir: TempDir,
    api: String,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    async fn start(target: &str, token: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "framecast-prometheus-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        std::fs::write(dir.0.join("token"), token).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: framecast\n    authorization:\n      \
             credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
            dir.0.join("token").display()
        );
        std::fs::write(dir.0.join("prometheus.yml"), config).unwrap();
        // A free port, learnt by binding it and letting go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(debian_tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.0.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Prometheus {
            _child: child,
            _dir: dir,
            api: format!("http://{listen}/api/v1"),
        }
    }

    /// The value of instant query `query`, if it has exactly one sample.
    async fn value(&self, query: &str) -> Option<f64> {
        let response = reqwest::Client::new()
            .get(format!("{}/query", self.api))
            .query(&[("query", query)])
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let answer: Value = response.json().await.ok()?;
        match answer["data"]["result"].as_array()?.as_slice() {
            [only] => only["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Waits until `query` has the value `check` accepts; returns it.
    async fn wait_for(&self, query: &str, check: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + PROMETHEUS_WAIT;
        loop {
            let value = self.value(query).await;
            if let Some(value) = value.filter(|value| check(*value)) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus answered {value:?} for {query} after {PROMETHEUS_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_subscribers_and_a_growing_frame_count() {
    let server = TestServer::start_with(|config| {
        config.metrics_token = Some(framecast::secret::Secret::new(METRICS_TOKEN).unwrap());
    })
    .await;
    let frames: Vec<Vec<u8>> = (0..3).map(|seed| sample_jpeg(160, 120, seed)).collect();
    let publisher = publish_every(&server, "lobby", frames, Duration::from_millis(100));
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(EventReader::open(&server.url("/events?stream=lobby")).await);
    }
    let mjpeg = reqwest::get(server.url("/mjpeg?stream=lobby"))
        .await
        .unwrap();
    eventually("the viewers are counted", || async {
        server.stream_status("lobby").await["subscribers"] == 4
    })
    .await;

    let prometheus = Prometheus::start(&server.addr.to_string(), METRICS_TOKEN).await;
    prometheus
        .wait_for("up{job=\"framecast\"}", |up| up == 1.0)
        .await;
    let sse = "framecast_subscribers{stream=\"lobby\",output=\"sse\"}";
    prometheus.wait_for(sse, |count| count == 3.0).await;
    let mjpeg_count = "framecast_subscribers{stream=\"lobby\",output=\"mjpeg\"}";
    prometheus.wait_for(mjpeg_count, |count| count == 1.0).await;
    let published = "framecast_frames_published_total{stream=\"lobby\"}";
    let first = prometheus.wait_for(published, |count| count > 0.0).await;
    let later = prometheus.wait_for(published, |count| count > first).await;
    println!("Prometheus saw lobby's frames grow from {first} to {later}");

    // A viewer leaves; the next scrapes say so.
    viewers.pop();
    prometheus.wait_for(sse, |count| count == 2.0).await;
    drop((mjpeg, viewers));
    publisher.abort();
}
