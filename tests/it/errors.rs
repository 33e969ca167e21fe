//! Bad input gets a clear JSON error with the right status, and nothing bad is broadcast.

use crate::common::{EventReader, TestServer, sample_jpeg};

async fn post(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(server.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, response.json().await.unwrap())
}

/// Checks that after the refused uploads the first frame a subscriber sees is a good one.
async fn assert_nothing_was_broadcast(server: &TestServer, stream: &str) {
    let mut reader = EventReader::open(&server.url(&format!("/events?stream={stream}"))).await;
    let good = sample_jpeg(40, 30, 9);
    server.post_jpeg(stream, &good).await;
    let event = reader.next_frame().await.unwrap();
    assert_eq!(event.json()["seq"], 1, "a refused frame was numbered");
    assert_eq!(event.jpeg(), good);
}

#[tokio::test]
async fn wrong_content_type_is_415_and_says_what_to_send() {
    let server = TestServer::start().await;
    let jpeg = sample_jpeg(40, 30, 1);
    let (status, body) = post(
        &server,
        "/frames?stream=s",
        Some("text/plain"),
        jpeg.clone(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        body["error"].as_str().unwrap().contains("image/jpeg"),
        "{body}"
    );
    // What `curl --data-binary @frame.jpg` sends without -H.
    let (status, _) = post(
        &server,
        "/frames?stream=s",
        Some("application/x-www-form-urlencoded"),
        jpeg,
    )
    .await;
    assert_eq!(status, 415);
    assert_nothing_was_broadcast(&server, "s").await;
}

#[tokio::test]
async fn a_frame_over_the_limit_is_413() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let big = sample_jpeg(200, 200, 1);
    assert!(big.len() > 4096);
    let (status, body) = post(&server, "/frames?stream=s", Some("image/jpeg"), big.clone()).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("4096"), "{body}");

    // Without a Content-Length (chunked), the limit still holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let response = reqwest::Client::new()
        .post(server.url("/frames?stream=s"))
        .header("content-type", "image/jpeg")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_nothing_was_broadcast(&server, "s").await;
}

#[tokio::test]
async fn bytes_that_are_not_a_jpeg_are_400_with_the_reason() {
    let server = TestServer::start().await;
    // Someone watches, so the stream stays and counts what it refused (an upload that brings
    // no frame to a stream nobody holds gives the name back).
    let _watching = EventReader::open(&server.url("/events?stream=s")).await;
    let (status, body) = post(
        &server,
        "/frames?stream=s",
        Some("image/jpeg"),
        b"hello, this is not a picture".repeat(10),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("not a valid JPEG"),
        "{body}"
    );

    let jpeg = sample_jpeg(40, 30, 1);
    let truncated = jpeg[..jpeg.len() - 200].to_vec();
    let (status, body) = post(&server, "/frames?stream=s", Some("image/jpeg"), truncated).await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = post(&server, "/frames?stream=s", Some("image/jpeg"), Vec::new()).await;
    assert_eq!(status, 400);

    assert_eq!(server.stream_status("s").await["rejected"], 3);
    assert_nothing_was_broadcast(&server, "s").await;
}

#[tokio::test]
async fn bad_stream_names_and_parameters_are_400() {
    let server = TestServer::start().await;
    let jpeg = sample_jpeg(40, 30, 1);
    for path in [
        "/frames?stream=a%20b",
        "/frames?stream=..%2Fx",
        "/frames?stream=",
    ] {
        let (status, body) = post(&server, path, Some("image/jpeg"), jpeg.clone()).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains("stream name"),
            "{body}"
        );
    }
    let long = format!("/events?stream={}", "x".repeat(65));
    let response = reqwest::get(server.url(&long)).await.unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::get(server.url("/events?payload=half"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("payload"));
}

#[tokio::test]
async fn pushing_into_the_test_pattern_stream_is_409() {
    let server = TestServer::start_with(|config| config.no_test_pattern = false).await;
    let (status, body) = server.post_jpeg("default", &sample_jpeg(40, 30, 1)).await;
    assert_eq!(status, 409);
    assert!(
        body["error"].as_str().unwrap().contains("test pattern"),
        "{body}"
    );
}
