//! Who may publish: with `--publish-token` set, only producers that send it.

use std::time::Duration;

use crate::common::{EventReader, LoggedBinary, TestServer, ffmpeg_test_source, sample_jpeg};

const TOKEN: &str = "pub-7f3a9c1e5b";

async fn upload(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "image/jpeg")
        .body(sample_jpeg(32, 32, 1));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn uploads_without_the_publish_token_get_401_and_with_it_200() {
    let server = TestServer::start_with(|config| {
        config.publish_token = Some(framecast::secret::Secret::new(TOKEN).unwrap());
    })
    .await;
    let url = server.url("/frames?stream=cam");
    for authorization in [None, Some("Bearer wrong"), Some("Basic cHViOng=")] {
        let response = upload(&url, authorization).await;
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = response.text().await.unwrap();
        assert!(body.contains("\"error\""), "{body}");
        assert!(!body.contains(TOKEN) && !body.contains("wrong"), "{body}");
    }
    assert_eq!(
        server.stream_status("cam").await,
        serde_json::Value::Null,
        "a refused upload creates no stream"
    );
    let response = upload(&url, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ffmpeg_publishes_with_the_token_in_its_headers() {
    let server = TestServer::start_with(|config| {
        config.publish_token = Some(framecast::secret::Secret::new(TOKEN).unwrap());
    })
    .await;
    let mut reader = EventReader::open(&server.url("/events?stream=ff")).await;
    let url = server.url("/frames?stream=ff");
    let header = format!("Authorization: Bearer {TOKEN}\r\n");
    let mut ffmpeg = ffmpeg_test_source("mpjpeg", &["-headers", &header], &url);
    let status = tokio::time::timeout(Duration::from_secs(20), ffmpeg.status())
        .await
        .expect("ffmpeg finishes")
        .expect("ffmpeg is installed");
    assert!(status.success());
    let frame = reader.next_frame().await.unwrap();
    assert_eq!(frame.json()["seq"], 1);
}

#[tokio::test]
async fn the_token_file_is_read_and_the_token_never_reaches_the_logs() {
    let dir = std::env::temp_dir().join(format!("framecast-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let file_arg = file.display().to_string();
    let server =
        LoggedBinary::start(&["--no-test-pattern", "--publish-token-file", &file_arg]).await;
    let url = format!("{}/frames?stream=cam", server.url);
    assert_eq!(upload(&url, Some("Bearer guess")).await.status(), 401);
    assert_eq!(
        upload(&url, Some(&format!("Bearer {TOKEN}")))
            .await
            .status(),
        200
    );
    let logs = server.stop_and_read_logs().await;
    assert!(logs.contains("request refused"), "{logs}");
    assert!(!logs.contains(TOKEN), "the token reached the logs: {logs}");
    assert!(
        !logs.contains("guess"),
        "a wrong token reached the logs: {logs}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unreadable_or_empty_token_file_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("framecast-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    for file in [dir.join("missing"), empty] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--bind", "127.0.0.1:0", "--publish-token-file"])
            .arg(&file)
            .output();
        let output = tokio::time::timeout(crate::common::WAIT, output)
            .await
            .expect("it exits")
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("publish token file"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
