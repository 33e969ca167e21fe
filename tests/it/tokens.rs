//! Access tokens (JWT) minted by another implementation (PyJWT, as a Django or Flask backend
//! would), checked by the real server: who may watch, list and publish which stream, until when.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{EventReader, LoggedBinary, TestServer, sample_jpeg};

/// The HS256 secret the server is started with.
const SECRET: &str = "4f1d0c2b9a8e7d6c5b4a39281706f5e4d3c2b1a0";
/// Test-only key pairs, as a backend would hold the private half.
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt-test-keys");

/// Debian's Python, where `python3-jwt` is installed (a user's `python3` may be another).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A token for `claims`, signed by PyJWT with `algorithm` and `key` (text, or a key file in
/// the fixtures when it ends in `.pem`). `none` and `HS256-raw` (an HMAC over any key
/// bytes, which PyJWT refuses for PEM text) are built by hand, as an attacker would.
fn mint(claims: &Value, algorithm: &str, key: &str) -> String {
    let key = if key.ends_with(".pem") {
        std::fs::read_to_string(format!("{KEYS}/{key}")).unwrap()
    } else {
        key.to_owned()
    };
    let script = r#"
import base64, hashlib, hmac, json, sys, jwt
claims, algorithm, key = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
def by_hand(alg, sign):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + sign(head.encode())
if algorithm == "none":
    print(by_hand("none", lambda _: ""))
elif algorithm == "HS256-raw":
    print(by_hand("HS256", lambda data: b64(hmac.new(key.encode(), data, hashlib.sha256).digest())))
else:
    print(jwt.encode(claims, key, algorithm=algorithm))
"#;
    let output = std::process::Command::new(python())
        .args(["-c", script, &claims.to_string(), algorithm, &key])
        .output()
        .expect("python3 with PyJWT (Debian: python3-jwt) is installed");
    assert!(
        output.status.success(),
        "PyJWT failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Seconds since the epoch, `offset` from now.
fn at(offset: i64) -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset
}

/// Claims that allow watching `subscribe` and publishing `publish` for `valid_for` seconds.
fn claims(subscribe: &[&str], publish: &[&str], valid_for: i64) -> Value {
    json!({
        "sub": "alice",
        "exp": at(valid_for),
        "framecast": { "subscribe": subscribe, "publish": publish },
    })
}

async fn start() -> TestServer {
    TestServer::start_with(|config| {
        config.jwt_secret = Some(framecast::secret::Secret::new(SECRET).unwrap());
        config.jwt_public_key = Some(format!("{KEYS}/rsa-public.pem").into());
    })
    .await
}

/// `GET path` with `token` as a bearer header; returns status, `WWW-Authenticate`, body.
async fn get(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    if status == 200 && path.starts_with("/events") {
        return (status, challenge, String::new());
    }
    (status, challenge, response.text().await.unwrap())
}

#[tokio::test]
async fn a_token_matrix_each_case_answered_as_a_user_would_expect() {
    let server = start().await;
    let watch_cam = claims(&["cam"], &[], 300);
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no token", None, 401),
        (
            "HS256 from the backend",
            Some(mint(&watch_cam, "HS256", SECRET)),
            200,
        ),
        (
            "RS256 from the backend",
            Some(mint(&watch_cam, "RS256", "rsa-private.pem")),
            200,
        ),
        (
            "prefix pattern",
            Some(mint(&claims(&["ca*"], &[], 300), "HS256", SECRET)),
            200,
        ),
        (
            "every stream",
            Some(mint(&claims(&["*"], &[], 300), "HS256", SECRET)),
            200,
        ),
        (
            "wrong signature",
            Some(mint(
                &watch_cam,
                "HS256",
                "another-secret-another-secret-!!",
            )),
            401,
        ),
        (
            "expired",
            Some(mint(&claims(&["cam"], &[], -60), "HS256", SECRET)),
            401,
        ),
        (
            "another stream",
            Some(mint(&claims(&["lobby"], &[], 300), "HS256", SECRET)),
            403,
        ),
        (
            "publish only",
            Some(mint(&claims(&[], &["cam"], 300), "HS256", SECRET)),
            403,
        ),
        (
            "no framecast claim",
            Some(mint(&json!({"exp": at(300)}), "HS256", SECRET)),
            403,
        ),
        (
            "no exp",
            Some(mint(
                &json!({"framecast": {"subscribe": ["cam"]}}),
                "HS256",
                SECRET,
            )),
            401,
        ),
        ("alg none", Some(mint(&watch_cam, "none", "")), 401),
        (
            "HS256 keyed with the RSA public key (key confusion)",
            Some(mint(
                &watch_cam,
                "HS256-raw",
                &std::fs::read_to_string(format!("{KEYS}/rsa-public.pem")).unwrap(),
            )),
            401,
        ),
        (
            "ES256 with a key the server does not have",
            Some(mint(&watch_cam, "ES256", "ec-p256-private.pem")),
            401,
        ),
        ("garbage", Some("not.a.token".to_owned()), 401),
    ];
    for (case, token, expected) in &cases {
        let (status, challenge, body) = get(&server, "/events?stream=cam", token.as_deref()).await;
        assert_eq!(status, *expected, "{case}: {body}");
        if *expected == 401 {
            assert_eq!(challenge.as_deref(), Some("Bearer"), "{case}");
        }
        if *expected == 403 {
            assert!(body.contains("stream 'cam'"), "{case}: {body}");
        }
        if *expected != 200 {
            let error = serde_json::from_str::<Value>(&body).unwrap()["error"].clone();
            assert!(error.is_string(), "{case}: {body}");
            if let Some(token) = token {
                for part in token.split('.').filter(|part| part.len() > 8) {
                    assert!(
                        !body.contains(part),
                        "{case}: the answer repeats the token: {body}"
                    );
                }
            }
        }
    }
    // Where headers are impossible (EventSource), the token comes in the query.
    let token = mint(&watch_cam, "HS256", SECRET);
    let (status, _, _) = get(
        &server,
        &format!("/events?stream=cam&access_token={token}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// Publishes a frame to `stream` with a token that may publish anywhere.
async fn publish_as_producer(server: &TestServer, stream: &str) {
    let producer = mint(&claims(&[], &["*"], 300), "HS256", SECRET);
    let response = reqwest::Client::new()
        .post(server.url(&format!("/frames?stream={stream}")))
        .bearer_auth(&producer)
        .header("content-type", "image/jpeg")
        .body(sample_jpeg(32, 32, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{stream}");
}

#[tokio::test]
async fn streams_lists_only_what_the_token_may_watch_and_healthz_stays_open() {
    let server = start().await;
    for stream in ["cam-1", "cam-2", "lobby"] {
        publish_as_producer(&server, stream).await;
    }
    assert_eq!(get(&server, "/streams", None).await.0, 401);
    assert_eq!(get(&server, "/healthz", None).await.0, 200);
    let viewer = mint(&claims(&["cam-*"], &[], 300), "HS256", SECRET);
    let (status, _, body) = get(&server, "/streams", Some(&viewer)).await;
    assert_eq!(status, 200);
    let listed: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["cam-1", "cam-2"]);
}

#[tokio::test]
async fn metrics_name_every_stream_so_they_take_a_token_that_may_watch_every_stream() {
    let server = start().await;
    publish_as_producer(&server, "cam-1").await;
    let (status, challenge, _) = get(&server, "/metrics", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    let some = mint(&claims(&["cam-*"], &[], 300), "HS256", SECRET);
    let (status, _, body) = get(&server, "/metrics", Some(&some)).await;
    assert_eq!(status, 403);
    assert!(body.contains("every stream"), "{body}");
    let expired = mint(&claims(&["*"], &[], -60), "HS256", SECRET);
    assert_eq!(get(&server, "/metrics", Some(&expired)).await.0, 401);
    let all = mint(&claims(&["*"], &[], 300), "HS256", SECRET);
    let (status, _, body) = get(&server, "/metrics", Some(&all)).await;
    assert_eq!(status, 200);
    assert!(body.contains("framecast_frames_published_total{stream=\"cam-1\"} 1"));
}

#[tokio::test]
async fn publishing_takes_a_token_whose_publish_patterns_match() {
    let server = start().await;
    let post = |token: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(server.url("/frames?stream=robot-7"))
            .header("content-type", "image/jpeg")
            .body(sample_jpeg(32, 32, 2));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 401);
    assert_eq!(
        post(Some(mint(&claims(&["*"], &[], 300), "HS256", SECRET))).await,
        403
    );
    assert_eq!(
        post(Some(mint(&claims(&[], &["cam-*"], 300), "HS256", SECRET))).await,
        403
    );
    assert_eq!(
        post(Some(mint(
            &claims(&[], &["robot-*"], 300),
            "EdDSA",
            "ed25519-private.pem"
        )))
        .await,
        401,
        "no Ed25519 key is configured"
    );
    assert_eq!(
        post(Some(mint(
            &claims(&[], &["robot-*"], 300),
            "RS256",
            "rsa-private.pem"
        )))
        .await,
        200
    );
}

#[tokio::test]
async fn a_stream_ends_with_an_end_event_when_its_token_expires() {
    let server = start().await;
    let claims = claims(&["cam"], &[], 2);
    let token = mint(&claims, "HS256", SECRET);
    let opened = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("/events?stream=cam"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = EventReader::from_body(Box::pin(futures_util::StreamExt::boxed(
        response.bytes_stream(),
    )));
    let last = loop {
        let event = tokio::time::timeout(Duration::from_secs(6), events.next())
            .await
            .expect("the token's end comes on time")
            .expect("an end event before the stream closes");
        if event.event.as_deref() == Some("end") {
            break event;
        }
    };
    assert_eq!(last.json(), json!({ "reason": "token-expired" }));
    // Not before the token's `exp` (minting may take a while on a busy machine, so the time
    // left is measured from the clock, not from the request), and promptly after it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let exp = claims["exp"].as_f64().unwrap();
    assert!(now >= exp - 0.05, "ended {:.3} s before exp", exp - now);
    assert!(now < exp + 2.0, "ended {:.3} s after exp", now - exp);
    assert!(opened.elapsed() < Duration::from_secs(4));
    assert!(
        events.next().await.is_none(),
        "the stream closes after the end event"
    );
}

#[tokio::test]
async fn tokens_and_secrets_never_reach_the_logs() {
    let key = format!("{KEYS}/ec-p256-public.pem");
    let server = LoggedBinary::start(&[
        "--no-test-pattern",
        "--jwt-secret",
        SECRET,
        "--jwt-public-key",
        &key,
    ])
    .await;
    let good = mint(
        &claims(&["cam"], &["cam"], 300),
        "ES256",
        "ec-p256-private.pem",
    );
    let bad = mint(
        &claims(&["cam"], &[], 300),
        "HS256",
        "a-wrong-secret-a-wrong-secret-abc",
    );
    let client = reqwest::Client::new();
    for token in [&good, &bad] {
        let url = format!(
            "{}/events?stream=cam&payload=none&access_token={token}",
            server.url
        );
        drop(client.get(&url).send().await.unwrap());
        let url = format!("{}/frames?stream=cam", server.url);
        let response = client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "image/jpeg")
            .body(sample_jpeg(16, 16, 1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), if token == &good { 200 } else { 401 });
    }
    let logs = server.stop_and_read_logs().await;
    assert!(logs.contains("request refused"), "{logs}");
    for secret in [SECRET, good.as_str(), bad.as_str()] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "a secret reached the logs: {logs}"
        );
    }
}

#[tokio::test]
async fn bad_jwt_options_stop_the_start_and_say_why_without_the_secret() {
    let private = format!("{KEYS}/rsa-private.pem");
    for (args, says) in [
        (vec!["--jwt-secret", "too-short-secret-1"], "too short"),
        (
            vec!["--jwt-public-key", "/nonexistent/key.pem"],
            "cannot read the JWT public key",
        ),
        (
            vec!["--jwt-public-key", private.as_str()],
            "holds a private key",
        ),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--bind", "127.0.0.1:0"])
            .args(&args)
            .output();
        let output = tokio::time::timeout(crate::common::WAIT, output)
            .await
            .expect("it exits")
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("too-short-secret-1"), "{stderr}");
    }
}

#[tokio::test]
async fn a_token_must_cover_every_stream_of_a_connection_and_403_names_the_others() {
    let server = start().await;
    let token = mint(&claims(&["cam-*"], &[], 300), "HS256", SECRET);
    let (status, _, body) = get(
        &server,
        "/events?stream=cam-1&stream=lobby&stream=cam-2&stream=door",
        Some(&token),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("streams 'lobby', 'door'"), "{body}");
    assert!(!body.contains("cam-"), "{body}");
    let (status, _, _) = get(&server, "/events?stream=cam-1&stream=cam-2", Some(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_token_past_exp_but_within_the_leeway_gets_only_the_end_event() {
    let server = start().await;
    let producer = mint(&claims(&[], &["cam"], 300), "HS256", SECRET);
    let stream = format!("cam&access_token={producer}");
    assert_eq!(
        server.post_jpeg(&stream, &sample_jpeg(32, 32, 1)).await.0,
        200
    );
    let token = mint(&claims(&["cam"], &[], -2), "HS256", SECRET);
    let response = reqwest::Client::new()
        .get(server.url("/events?stream=cam"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "accepted: 2 s late is within the 5 s leeway"
    );
    let body = tokio::time::timeout(Duration::from_secs(5), response.text())
        .await
        .expect("the stream ends at once")
        .unwrap();
    assert_eq!(
        body, "retry: 2000\n\nevent: end\ndata: {\"reason\":\"token-expired\"}\n\n",
        "nothing but the end: no status, no frame"
    );
}
