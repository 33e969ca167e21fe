//! CORS: a page on another origin can read streams with an `Authorization` header, and cannot
//! publish.

use crate::common::{TestServer, sample_jpeg};

async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,last-event-id",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_browser_preflight_for_authorization_and_last_event_id_is_allowed() {
    let server = TestServer::start().await;
    let response = preflight(&server, "/events?stream=x", "http://localhost:5173").await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(allowed.contains("last-event-id"), "{allowed}");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(headers.get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn a_cross_origin_stream_response_is_readable_and_never_compressed() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .get(server.url("/events?stream=x"))
        .header("origin", "http://elsewhere.test")
        .header("authorization", "Bearer abc")
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn ingest_is_not_open_to_other_origins() {
    let server = TestServer::start().await;
    let response = preflight(&server, "/frames", "http://evil.test").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_configured_origin_list_admits_only_those_origins() {
    let server = TestServer::start_with(|config| {
        config.cors_origins = vec!["http://app.test".into()];
    })
    .await;
    let allowed = preflight(&server, "/events", "http://app.test").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    let refused = preflight(&server, "/events", "http://other.test").await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Sends the upload a web page on `origin` makes with `fetch(url, {method: 'POST', body})`:
/// a simple request, so no preflight, and no Content-Type. Returns the status and the body.
async fn page_upload(server: &TestServer, origin: &str, site: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(server.url("/frames?stream=victim"))
        .header("origin", origin)
        .header("sec-fetch-site", site)
        .header("sec-fetch-mode", "no-cors")
        .body(sample_jpeg(32, 32, 1))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_page_on_another_site_cannot_publish_even_without_a_preflight() {
    let server = TestServer::start().await;
    let (status, body) = page_upload(&server, "http://evil.test", "cross-site").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--publish-origins"), "{body}");
    let (status, _) = page_upload(&server, "http://sub.127.0.0.1.test", "same-site").await;
    assert_eq!(status, 403);
    assert_eq!(
        server.stream_status("victim").await,
        serde_json::Value::Null,
        "a refused upload creates no stream"
    );
    // curl, ffmpeg and scripts send neither header and keep working.
    let (status, _) = server.post_jpeg("victim", &sample_jpeg(32, 32, 2)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_same_upload_with_real_curl_is_refused() {
    let server = TestServer::start().await;
    let dir = std::env::temp_dir().join(format!("framecast-cors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let photo = dir.join("photo.jpg");
    std::fs::write(&photo, sample_jpeg(32, 32, 3)).unwrap();
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args([
            "-H",
            "Origin: http://evil.example",
            "-H",
            "Sec-Fetch-Site: cross-site",
        ])
        .args(["-H", "Content-Type:", "--data-binary"])
        .arg(format!("@{}", photo.display()))
        .arg(server.url("/frames?stream=victim"))
        .output()
        .await
        .expect("curl is installed");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "403");
}

#[tokio::test]
async fn a_listed_publish_origin_may_publish_and_gets_cors() {
    let server = TestServer::start_with(|config| {
        config.publish_origins = vec!["http://studio.test".into()];
    })
    .await;
    let (status, body) = page_upload(&server, "http://studio.test", "cross-site").await;
    assert_eq!(status, 200, "{body}");
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/frames"))
        .header("origin", "http://studio.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://studio.test"
    );
    let (status, _) = page_upload(&server, "http://evil.test", "cross-site").await;
    assert_eq!(status, 403);
}

/// Sends a GET for `path` addressed to `host`, as a browser whose page's name was rebound to
/// 127.0.0.1 would.
async fn get_with_host(server: &TestServer, path: &str, host: &str) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        crate::common::WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

#[tokio::test]
async fn on_loopback_a_rebound_host_name_is_refused() {
    let server = TestServer::start_with(|config| {
        config.allowed_hosts = vec!["camera-box.lan".into()];
    })
    .await;
    for path in ["/streams", "/events?stream=x", "/"] {
        let (status, answer) = get_with_host(&server, path, "evil.example:8080").await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(answer.contains("--allowed-hosts"), "{answer}");
    }
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "camera-box.lan:8080",
    ] {
        let (status, answer) = get_with_host(&server, "/streams", host).await;
        assert_eq!(status, 200, "{host}: {answer}");
    }
}
