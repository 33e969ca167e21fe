//! Real outside tools against the real server: ffmpeg pushing MJPEG, curl reading the stream.
//!
//! These need `ffmpeg` and `curl` on the PATH; the test command installs them.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::common::{
    EventReader, TestServer, eventually, ffmpeg_test_source, parse_block, spawn_binary,
};

/// Pushes two seconds of ffmpeg's test source at 15 fps with the given muxer, in real time.
async fn ffmpeg_push(server: &TestServer, muxer: &str, stream: &str) -> std::process::ExitStatus {
    let url = server.url(&format!("/frames?stream={stream}"));
    let mut ffmpeg = ffmpeg_test_source(muxer, &[], &url);
    tokio::time::timeout(Duration::from_secs(20), ffmpeg.status())
        .await
        .expect("ffmpeg finishes")
        .expect("ffmpeg is installed")
}

async fn assert_thirty_frames_in_order(reader: &mut EventReader) {
    for expected in 1..=30u64 {
        let event = reader.next_frame().await.unwrap();
        let json = event.json();
        assert_eq!(json["seq"], expected);
        assert_eq!(json["width"], 320);
        assert_eq!(json["height"], 240);
        let jpeg = event.jpeg();
        assert_eq!(jpeg.len() as u64, json["size"].as_u64().unwrap());
        assert!(framecast::jpeg::inspect(&jpeg).is_ok());
    }
}

/// Pushes with ffmpeg's `muxer` while a subscriber watches; all 30 frames must arrive in order.
async fn assert_ffmpeg_push_is_seen_whole(muxer: &str) {
    let server = TestServer::start().await;
    let mut reader = EventReader::open(&server.url("/events?stream=ff")).await;
    let (status, ()) = tokio::join!(
        ffmpeg_push(&server, muxer, "ff"),
        assert_thirty_frames_in_order(&mut reader)
    );
    assert!(status.success(), "ffmpeg failed: {status}");
    let stream = server.stream_status("ff").await;
    assert_eq!(stream["published"], 30);
    assert_eq!(stream["rejected"], 0);
}

#[tokio::test]
async fn ffmpeg_mpjpeg_push_publishes_thirty_frames_in_order() {
    assert_ffmpeg_push_is_seen_whole("mpjpeg").await;
}

#[tokio::test]
async fn ffmpeg_mjpeg_push_publishes_thirty_frames_in_order() {
    assert_ffmpeg_push_is_seen_whole("mjpeg").await;
}

#[tokio::test]
async fn curl_n_output_parses_as_server_sent_events() {
    let mut server = TestServer::start().await;
    let curl = Command::new("curl")
        .args(["-sN", "--max-time", "15", &server.url("/events?stream=c")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("curl is installed");
    // Wait until curl is subscribed, then publish three frames and stop the server.
    eventually("curl is subscribed", || async {
        server.stream_status("c").await["subscribers"] == 1
    })
    .await;
    let jpegs: Vec<Vec<u8>> = (1..=3)
        .map(|seed| crate::common::sample_jpeg(64, 48, seed))
        .collect();
    let mut reader = EventReader::open(&server.url("/events?stream=c")).await;
    for jpeg in &jpegs {
        server.post_jpeg("c", jpeg).await;
        // Pace the frames so that curl, which reads promptly, sees each one.
        reader.next_frame().await.unwrap();
    }
    server.shutdown.trigger();
    server.task.take().unwrap().await.unwrap().unwrap();

    let output = tokio::time::timeout(Duration::from_secs(10), curl.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "curl ends cleanly: {}",
        output.status
    );
    let text = output.stdout;
    assert!(text.ends_with(b"\n\n"));
    let blocks: Vec<_> = text[..text.len() - 2]
        .split(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .split(|line| line.is_empty())
        .map(|lines| parse_block(&lines.join(&b'\n')))
        .collect();
    assert_eq!(blocks[0].retry, Some(2000));
    let frames: Vec<_> = blocks
        .iter()
        .filter(|e| e.event.as_deref() == Some("frame"))
        .collect();
    assert_eq!(frames.len(), 3);
    for (event, jpeg) in frames.iter().zip(&jpegs) {
        assert_eq!(event.jpeg(), *jpeg);
    }
}

#[tokio::test]
async fn ffmpeg_piped_into_stdin_feeds_a_stream() {
    let mut ffmpeg = ffmpeg_test_source("mjpeg", &[], "-")
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed");
    let pipe: Stdio = ffmpeg.stdout.take().unwrap().try_into().unwrap();
    let (mut framecast, url) =
        spawn_binary(&["--no-test-pattern", "--source", "cam=-"], pipe).await;

    // Frames may have started before this subscriber: it sees the newest, then the rest in order.
    let mut reader = EventReader::open(&format!("{url}/events?stream=cam")).await;
    let mut last = 0;
    while last < 30 {
        let event = reader.next_frame().await.unwrap();
        let json = event.json();
        let seq = json["seq"].as_u64().unwrap();
        assert!(seq > last, "frames arrive in order");
        assert_eq!(json["width"], 320);
        assert!(framecast::jpeg::inspect(&event.jpeg()).is_ok());
        last = seq;
    }
    assert!(ffmpeg.wait().await.unwrap().success());

    let streams: serde_json::Value = reqwest::get(format!("{url}/streams"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cam = &streams["streams"][0];
    assert_eq!(cam["name"], "cam");
    assert_eq!(cam["source"], "stdin");
    assert_eq!(cam["published"], 30);
    assert_eq!(cam["rejected"], 0);

    let pushed = reqwest::Client::new()
        .post(format!("{url}/frames?stream=cam"))
        .header("content-type", "image/jpeg")
        .body(crate::common::sample_jpeg(32, 32, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 409);
    framecast.start_kill().unwrap();
}

#[tokio::test]
async fn an_ffmpeg_camera_serving_one_client_feeds_every_viewer() {
    // `-listen 1` makes ffmpeg an HTTP server that accepts exactly one client, like a small
    // camera: every viewer seeing frames proves framecast used one upstream connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let camera_url = format!("http://127.0.0.1:{port}/");
    let mut ffmpeg = ffmpeg_test_source("mpjpeg", &["-listen", "1"], &camera_url)
        .spawn()
        .expect("ffmpeg is installed");
    let source = format!("cam={camera_url}");
    let (mut framecast, url) =
        spawn_binary(&["--no-test-pattern", "--source", &source], Stdio::null()).await;

    let events = format!("{url}/events?stream=cam");
    let mut first = EventReader::open(&events).await;
    let first_frame = first.next_frame().await.unwrap();
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(EventReader::open(&events).await);
    }
    let mut last = first_frame.json()["seq"].as_u64().unwrap();
    while last < 25 {
        let event = first.next_frame().await.unwrap();
        let seq = event.json()["seq"].as_u64().unwrap();
        assert!(seq > last, "frames arrive in order");
        assert_eq!(event.json()["width"], 320);
        assert!(framecast::jpeg::inspect(&event.jpeg()).is_ok());
        last = seq;
    }
    for other in &mut others {
        let event = other.next_frame().await.unwrap();
        assert!(framecast::jpeg::inspect(&event.jpeg()).is_ok());
    }
    // ffmpeg ends after two seconds: the stream goes offline, and says why.
    loop {
        let event = first.next().await.unwrap();
        if event.event.as_deref() == Some("status") && event.json()["state"] == "offline" {
            let reason = event.json()["reason"].as_str().unwrap().to_owned();
            assert!(reason.contains("ended the stream"), "{reason}");
            break;
        }
    }
    assert!(ffmpeg.wait().await.unwrap().success());
    framecast.start_kill().unwrap();
}
