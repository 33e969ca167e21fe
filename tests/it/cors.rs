//! CORS: a page on another origin can read streams with an `Authorization` header, and cannot
//! publish.

use crate::common::TestServer;

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
