//! Outputs besides SSE, from the same slot: `GET /mjpeg` and `GET /snapshot`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::common::{PartReader, TestServer, sample_jpeg};

#[tokio::test]
async fn mjpeg_parts_are_the_jpegs_exactly_as_pushed_newest_first() {
    let server = TestServer::start().await;
    let frames: Vec<Vec<u8>> = (0..4).map(|seed| sample_jpeg(96, 64, seed)).collect();
    assert_eq!(server.post_jpeg("cam", &frames[0]).await.0, 200);
    let mut parts = PartReader::open(&server.url("/mjpeg?stream=cam")).await;
    assert_eq!(parts.next().await, frames[0], "the newest frame at once");
    for frame in &frames[1..] {
        assert_eq!(server.post_jpeg("cam", frame).await.0, 200);
        assert_eq!(&parts.next().await, frame);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_the_mjpeg_output_and_every_frame_decodes() {
    let server = TestServer::start_with(|config| {
        config.no_test_pattern = false;
        config.test_pattern_fps = 30;
    })
    .await;
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(server.url("/mjpeg?stream=default"))
            .args(["-frames:v", "30", "-f", "framemd5", "-"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffmpeg reads 30 frames in time")
    .expect("ffmpeg is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoded = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .count();
    assert_eq!(decoded, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mjpeg_reader_costs_a_healthy_one_nothing() {
    let server = TestServer::start().await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /mjpeg?stream=s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut healthy = PartReader::open(&server.url("/mjpeg?stream=s")).await;
    let frames: Vec<Vec<u8>> = (0..4).map(|seed| sample_jpeg(480, 360, seed)).collect();
    for i in 0..40 {
        let frame = &frames[i % frames.len()];
        assert_eq!(server.post_jpeg("s", frame).await.0, 200);
        assert_eq!(&healthy.next().await, frame, "frame {i}");
    }
    drop(stalled);
}

/// `GET /snapshot` with `If-None-Match`, if given: status, headers, body.
async fn snapshot(
    server: &TestServer,
    query: &str,
    if_none_match: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(server.url(&format!("/snapshot?{query}")));
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_snapshot_is_the_newest_frame_with_headers_a_poller_can_use() {
    let server = TestServer::start().await;
    assert_eq!(snapshot(&server, "stream=nowhere", None).await.0, 404);
    assert_eq!(
        server.stream_status("nowhere").await,
        serde_json::Value::Null,
        "not created"
    );

    let first = sample_jpeg(64, 48, 1);
    assert_eq!(server.post_jpeg("cam", &first).await.0, 200);
    let (status, headers, body) = snapshot(&server, "stream=cam", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, first);
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["etag"], "\"1\"");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-frame-seq"], "1");
    assert_eq!(headers["x-stream-state"], "live");
    assert!(headers.contains_key("last-modified") && headers.contains_key("x-frame-age-ms"));

    let (status, headers, body) = snapshot(&server, "stream=cam", Some("\"1\"")).await;
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(headers["etag"], "\"1\"");

    // Waiting: the next frame as soon as it comes...
    let second = sample_jpeg(64, 48, 2);
    let waiting = {
        let url = server.url("/snapshot?stream=cam&wait=10");
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("if-none-match", "\"1\"")
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.bytes().await.unwrap().to_vec(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.post_jpeg("cam", &second).await.0, 200);
    assert_eq!(waiting.await.unwrap(), (200, second));
    // ...or 304 when none came in time.
    let started = tokio::time::Instant::now();
    let (status, _, _) = snapshot(&server, "stream=cam&wait=1", Some("\"2\"")).await;
    assert_eq!(status, 304);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_stream_without_a_frame_is_503_or_waits_for_its_first() {
    let server = TestServer::start().await;
    let _viewer = reqwest::get(server.url("/events?stream=later"))
        .await
        .unwrap();
    let (status, headers, _) = snapshot(&server, "stream=later", None).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    let waiting = {
        let url = server.url("/snapshot?stream=later&wait=10");
        tokio::spawn(async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frame = sample_jpeg(64, 48, 9);
    assert_eq!(server.post_jpeg("later", &frame).await.0, 200);
    assert_eq!(waiting.await.unwrap().to_vec(), frame);
}

#[tokio::test]
async fn waiting_snapshots_count_against_their_clients_viewer_quota() {
    let server = TestServer::start_with(|config| config.max_subscribers_per_ip = 2).await;
    assert_eq!(
        server.post_jpeg("cam", &sample_jpeg(32, 32, 1)).await.0,
        200
    );
    // Two long polls for a frame that does not come hold both of this client's slots...
    let mut polls = Vec::new();
    for _ in 0..2 {
        let url = server.url("/snapshot?stream=cam&wait=5");
        polls.push(tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .header("if-none-match", "\"1\"")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    crate::common::eventually("both polls are waiting", || async {
        server.stream_status("cam").await["subscribers"] == 2
    })
    .await;
    // ...so a third, or an event stream, is refused with 429.
    assert_eq!(
        snapshot(&server, "stream=cam&wait=5", Some("\"1\""))
            .await
            .0,
        429
    );
    let events = reqwest::get(server.url("/events?stream=cam"))
        .await
        .unwrap();
    assert_eq!(events.status(), 429);
    for poll in polls {
        assert_eq!(poll.await.unwrap(), 304);
    }
}

/// `GET /mjpeg` as a browser asks for it, read until `wanted` has arrived; every byte so far.
async fn read_mjpeg_as_a_browser_until(
    server: &TestServer,
    stream: &str,
    wanted: &[u8],
) -> Vec<u8> {
    use futures_util::StreamExt;
    let response = reqwest::Client::new()
        .get(server.url(&format!("/mjpeg?stream={stream}")))
        .header("sec-fetch-dest", "image")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.windows(wanted.len()).any(|window| window == wanted) {
            seen.extend_from_slice(&body.next().await.unwrap().unwrap());
        }
    })
    .await
    .expect("the part and the next part's headers arrive without a next frame");
    seen
}

#[tokio::test]
async fn a_browser_gets_each_frame_followed_by_the_next_parts_headers() {
    // Chromium draws a part only once the next part's headers are in: they must come with the
    // frame, not with the next one, or a browser shows every frame one frame late.
    let server = TestServer::start().await;
    let frame = sample_jpeg(96, 64, 7);
    assert_eq!(server.post_jpeg("cam", &frame).await.0, 200);
    let mut wanted = frame.clone();
    wanted.extend_from_slice(b"\r\n--framecast-frame\r\nContent-Type: image/jpeg\r\n\r\n");
    let seen = read_mjpeg_as_a_browser_until(&server, "cam", &wanted).await;
    let mut expected = b"--framecast-frame\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    expected.extend_from_slice(&wanted);
    assert_eq!(
        seen, expected,
        "the opening, the frame, the next part's headers"
    );
    // Tools still get Content-Length with every part.
    let mut parts = PartReader::open(&server.url("/mjpeg?stream=cam")).await;
    assert_eq!(parts.next().await, frame);
}

#[tokio::test]
async fn a_frame_holding_the_mjpeg_boundary_is_refused() {
    let server = TestServer::start().await;
    let jpeg = sample_jpeg(32, 32, 1);
    let text = b"--framecast-frame\r\nContent-Type: image/jpeg\r\n\r\n";
    let mut crafted = jpeg[..2].to_vec();
    crafted.extend_from_slice(&[0xFF, 0xFE, 0, (text.len() + 2) as u8]);
    crafted.extend_from_slice(text);
    crafted.extend_from_slice(&jpeg[2..]);
    let (status, body) = server.post_jpeg("cam", &crafted).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("boundary"),
        "{body}"
    );
    assert_eq!(server.post_jpeg("cam", &jpeg).await.0, 200);
}
