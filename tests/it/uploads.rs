//! Continuous uploads: multipart and concatenated-JPEG bodies, published frame by frame.

use tokio::sync::mpsc;

use crate::common::{self, EventReader, TestServer, multipart_part, sample_jpeg};

/// Starts a streaming POST to stream `live` whose body is fed through the returned sender.
fn start_upload(
    server: &TestServer,
    content_type: Option<&str>,
) -> (
    mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<(u16, serde_json::Value)>,
) {
    let mut request = reqwest::Client::new().post(server.url("/frames?stream=live"));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    common::start_upload(request)
}

#[tokio::test]
async fn each_multipart_part_is_published_as_soon_as_it_arrives() {
    let server = TestServer::start().await;
    let mut reader = EventReader::open(&server.url("/events?stream=live")).await;
    let (upload, reply) = start_upload(&server, Some("multipart/x-mixed-replace; boundary=frame"));
    upload.send(b"--frame\r\n".to_vec()).await.unwrap();
    for seed in 1..=5 {
        let jpeg = sample_jpeg(64, 48, seed);
        upload.send(multipart_part("frame", &jpeg)).await.unwrap();
        // The upload is still open: the frame must arrive before the body ends.
        let event = reader.next_frame().await.unwrap();
        assert_eq!(event.json()["seq"], seed);
        assert_eq!(event.jpeg(), jpeg);
    }
    drop(upload);
    let (status, body) = reply.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"frames": 5, "rejected": 0}));
}

#[tokio::test]
async fn a_bad_part_is_counted_and_the_upload_goes_on() {
    let server = TestServer::start().await;
    let mut reader = EventReader::open(&server.url("/events?stream=live")).await;
    let (upload, reply) = start_upload(&server, None);
    let good_one = sample_jpeg(64, 48, 1);
    let good_two = sample_jpeg(64, 48, 2);
    let mut corrupt = sample_jpeg(64, 48, 3);
    corrupt.truncate(corrupt.len() / 2);

    upload.send(b"--ffmpeg\r\n".to_vec()).await.unwrap();
    upload
        .send(multipart_part("ffmpeg", &good_one))
        .await
        .unwrap();
    assert_eq!(reader.next_frame().await.unwrap().jpeg(), good_one);
    upload
        .send(multipart_part("ffmpeg", &corrupt))
        .await
        .unwrap();
    upload
        .send(multipart_part("ffmpeg", &good_two))
        .await
        .unwrap();
    let event = reader.next_frame().await.unwrap();
    assert_eq!(
        event.json()["seq"],
        2,
        "the corrupt part must not be numbered"
    );
    assert_eq!(event.jpeg(), good_two);
    drop(upload);

    let (status, body) = reply.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"frames": 2, "rejected": 1}));
    assert_eq!(server.stream_status("live").await["rejected"], 1);
}

#[tokio::test]
async fn concatenated_jpegs_split_at_any_chunk_size_arrive_whole() {
    let server = TestServer::start().await;
    let mut reader = EventReader::open(&server.url("/events?stream=live")).await;
    let (upload, reply) = start_upload(&server, Some("application/octet-stream"));
    let frames: Vec<Vec<u8>> = (1..=4).map(|seed| sample_jpeg(80, 60, seed)).collect();
    for (i, jpeg) in frames.iter().enumerate() {
        // Odd chunk sizes put chunk edges inside markers and segment lengths.
        for chunk in jpeg.chunks(7 + i * 13) {
            upload.send(chunk.to_vec()).await.unwrap();
        }
        // The end-of-image marker completes the frame; the upload is still open.
        let event = reader.next_frame().await.unwrap();
        assert_eq!(event.jpeg(), *jpeg);
    }
    drop(upload);
    let (status, body) = reply.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"frames": 4, "rejected": 0}));
}

#[tokio::test]
async fn a_body_with_no_frame_at_all_is_400() {
    let server = TestServer::start().await;
    let (upload, reply) = start_upload(&server, Some("application/octet-stream"));
    upload
        .send(b"just some text, no pictures".to_vec())
        .await
        .unwrap();
    drop(upload);
    let (status, body) = reply.await.unwrap();
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("framing"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_whose_first_bytes_tell_no_framing_is_400_before_it_ends() {
    let server = TestServer::start().await;
    let (upload, reply) = start_upload(&server, None);
    upload
        .send(b"no boundary, no JPEG: ".repeat(4))
        .await
        .unwrap();
    // The upload stays open: the answer comes from its first bytes alone.
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(10), reply)
        .await
        .expect("answered before the body ended")
        .unwrap();
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("framing"),
        "{body}"
    );
    drop(upload);
}
