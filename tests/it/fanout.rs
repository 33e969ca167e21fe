//! A frame pushed in reaches every subscriber, byte for byte, and late joiners see it at once.

use crate::common::{EventReader, TestServer, eventually, sample_jpeg};

#[tokio::test]
async fn a_posted_jpeg_reaches_two_subscribers_byte_identical() {
    let server = TestServer::start().await;
    let mut first = EventReader::open(&server.url("/events?stream=cam")).await;
    let mut second = EventReader::open(&server.url("/events?stream=cam")).await;
    let jpeg = sample_jpeg(320, 240, 1);

    let (status, reply) = server.post_jpeg("cam", &jpeg).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["stream"], "cam");
    assert_eq!(reply["seq"], 1);
    assert_eq!(reply["width"], 320);
    assert_eq!(reply["height"], 240);

    for reader in [&mut first, &mut second] {
        let event = reader.next_frame().await.unwrap();
        assert_eq!(event.id.as_deref(), Some("1"));
        let json = event.json();
        assert_eq!(json["stream"], "cam");
        assert_eq!(json["seq"], 1);
        assert_eq!(json["width"], 320);
        assert_eq!(json["height"], 240);
        assert_eq!(json["size"], jpeg.len());
        assert!(json["ts"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(event.jpeg(), jpeg);
    }
}

#[tokio::test]
async fn the_stream_starts_with_retry_then_the_state_then_the_newest_frame() {
    let server = TestServer::start().await;
    let old = sample_jpeg(64, 48, 1);
    let newest = sample_jpeg(64, 48, 2);
    server.post_jpeg("default", &old).await;
    server.post_jpeg("default", &newest).await;

    let mut late = EventReader::open(&server.url("/events")).await;
    let first = late.next().await.unwrap();
    assert_eq!(first.retry, Some(2000));
    let status = late.next().await.unwrap();
    assert_eq!(status.event.as_deref(), Some("status"));
    assert_eq!(status.json()["state"], "live");
    assert_eq!(status.json()["stream"], "default");
    let frame = late.next().await.unwrap();
    assert_eq!(frame.event.as_deref(), Some("frame"));
    assert_eq!(frame.json()["seq"], 2);
    assert_eq!(frame.jpeg(), newest);
}

#[tokio::test]
async fn payload_none_sends_the_same_events_without_the_jpeg() {
    let server = TestServer::start().await;
    let mut reader = EventReader::open(&server.url("/events?stream=dbg&payload=none")).await;
    let jpeg = sample_jpeg(32, 32, 3);
    server.post_jpeg("dbg", &jpeg).await;
    let json = reader.next_frame().await.unwrap().json();
    assert_eq!(json["seq"], 1);
    assert_eq!(json["size"], jpeg.len());
    assert!(json.get("jpeg").is_none());
}

#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let server = TestServer::start_with(|config| {
        config.keep_alive = std::time::Duration::from_millis(200);
    })
    .await;
    let mut reader = EventReader::open(&server.url("/events?stream=quiet")).await;
    assert_eq!(reader.next().await.unwrap().retry, Some(2000));
    let status = reader.next().await.unwrap().json();
    assert_eq!(status["state"], "connecting");
    assert_eq!(status["reason"], "waiting for frames to be pushed");
    let comment = reader.next().await.unwrap();
    assert!(comment.comment);
    assert!(comment.data.is_empty());
}

#[tokio::test]
async fn the_test_pattern_feeds_the_default_stream_with_changing_frames() {
    let server = TestServer::start_with(|config| config.no_test_pattern = false).await;
    let mut reader = EventReader::open(&server.url("/events")).await;
    let first = reader.next_frame().await.unwrap();
    let second = reader.next_frame().await.unwrap();
    assert_eq!(first.json()["width"], 640);
    assert_eq!(first.json()["height"], 480);
    assert!(second.json()["seq"].as_u64() > first.json()["seq"].as_u64());
    assert_ne!(first.jpeg(), second.jpeg());
    assert!(framecast::jpeg::inspect(&second.jpeg()).is_ok());

    let status = server.stream_status("default").await;
    assert_eq!(status["source"], "test-pattern");
    assert_eq!(status["subscribers"], 1);
}

#[tokio::test]
async fn the_status_page_counts_frames_and_subscribers() {
    let server = TestServer::start().await;
    let reader = EventReader::open(&server.url("/events?stream=counted")).await;
    server.post_jpeg("counted", &sample_jpeg(48, 32, 1)).await;
    let status = server.stream_status("counted").await;
    assert_eq!(status["published"], 1);
    assert_eq!(status["rejected"], 0);
    assert_eq!(status["subscribers"], 1);
    assert_eq!(status["width"], 48);
    assert_eq!(status["height"], 32);
    assert_eq!(status["source"], "push");
    assert!(status["age_ms"].as_u64().is_some());

    drop(reader);
    // The server notices the closed connection on its next write or read; poll briefly.
    eventually("the subscriber count is back to 0", || async {
        let gone = server.stream_status("counted").await["subscribers"] == 0;
        if !gone {
            server.post_jpeg("counted", &sample_jpeg(48, 32, 2)).await;
        }
        gone
    })
    .await;
}

#[tokio::test]
async fn the_viewer_page_and_health_check_answer() {
    let server = TestServer::start().await;
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("EventSource"));
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}
