//! Hard limits: what one client can use up, it cannot keep from producers or other viewers.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::common::{EventReader, TestServer, eventually, sample_jpeg, spawn_command};

#[tokio::test]
async fn viewers_asking_for_made_up_streams_never_take_a_producers_name() {
    let server = TestServer::start_with(|config| {
        config.max_streams = 4;
        config.max_waiting_streams = 4;
    })
    .await;
    let client = reqwest::Client::new();
    // A burst of one-off names, by HEAD and by GETs that leave at once.
    for n in 0..20 {
        let url = server.url(&format!("/events?stream=junk{n}"));
        let _ = client.head(&url).send().await.unwrap();
        drop(client.get(&url).send().await.unwrap());
    }
    // Producers still get their names at once.
    for cam in ["cam1", "cam2", "cam3", "cam4"] {
        let (status, body) = server.post_jpeg(cam, &sample_jpeg(32, 32, 1)).await;
        assert_eq!(status, 200, "{cam}: {body}");
    }
    let (status, _) = server.post_jpeg("cam5", &sample_jpeg(32, 32, 1)).await;
    assert_eq!(status, 503, "producers have their own limit");

    // Viewers holding made-up names open fill only the waiting streams' own limit (once the
    // server has seen the burst's connections close).
    let mut holding = Vec::new();
    for n in 0..4 {
        let url = server.url(&format!("/events?stream=held{n}"));
        eventually("a waiting stream is free", || async {
            client.get(&url).send().await.unwrap().status() == 200
        })
        .await;
        holding.push(EventReader::open(&url).await);
    }
    let refused = client
        .get(server.url("/events?stream=one-more"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body = refused.text().await.unwrap();
    assert!(body.contains("waiting for a producer"), "{body}");
    // Viewers of the producers' streams are not limited by it.
    let mut viewer = EventReader::open(&server.url("/events?stream=cam1")).await;
    assert_eq!(viewer.next_frame().await.unwrap().json()["seq"], 1);

    // Waiting streams whose viewers left are gone within a pass of the upkeep.
    drop(holding);
    eventually("only the producers' streams are left", || async {
        server.streams().await.len() == 4
    })
    .await;
}

#[tokio::test]
async fn a_viewer_waiting_for_a_producer_sees_its_frames_when_it_comes() {
    let server = TestServer::start_with(|config| config.max_streams = 1).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=later")).await;
    let (status, _) = server.post_jpeg("later", &sample_jpeg(32, 32, 7)).await;
    assert_eq!(status, 200);
    assert_eq!(viewer.next_frame().await.unwrap().json()["seq"], 1);
}

/// Sends a plain `GET` for `path` and returns the status code of the answer (0: the server
/// closed the connection without one), with the still-open socket.
async fn get_status(addr: &str, path: &str) -> (u16, TcpStream) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0; 12];
    let read = tokio::time::timeout(Duration::from_secs(3), socket.read_exact(&mut head))
        .await
        .expect("an answer within 3 s, never a hang");
    let status = match read {
        Ok(_) => std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap(),
        Err(_) => 0,
    };
    (status, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_refuses_cleanly_and_healthz_answers() {
    // As the issue reproduced it: `ulimit -n 256` (soft and hard) and 300 subscribers.
    let mut command = tokio::process::Command::new("bash");
    command.args([
        "-c",
        "ulimit -n 256 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_framecast"),
        "--bind",
        "127.0.0.1:0",
        "--no-test-pattern",
    ]);
    let (_child, url) = spawn_command(command).await;
    let addr = url.trim_start_matches("http://").to_owned();

    let mut viewers = Vec::new();
    let (mut refused, mut closed) = (0, 0);
    for _ in 0..300 {
        match get_status(&addr, "/events?stream=s").await {
            (200, socket) => viewers.push(socket),
            (503, _) => refused += 1,
            (0, _) => closed += 1,
            (other, _) => panic!("a subscriber got {other}"),
        }
    }
    assert!(
        (150..256).contains(&viewers.len()) && refused + closed == 300 - viewers.len(),
        "{} served, {refused} refused, {closed} closed",
        viewers.len()
    );
    assert!(
        refused > 0,
        "beyond the cap, clients hear 503 rather than silence"
    );
    for _ in 0..5 {
        let (status, _) = get_status(&addr, "/healthz").await;
        assert_eq!(status, 200, "/healthz answers while the server is full");
    }

    drop(viewers);
    eventually("a new subscriber gets in once the others left", || async {
        get_status(&addr, "/events?stream=s").await.0 == 200
    })
    .await;
}

/// The answer to a request: status, JSON body, `Retry-After`.
type Answer = (u16, serde_json::Value, Option<String>);

async fn answer_of(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry_after)
}

/// Starts an upload to `stream` whose body is whatever is sent through the returned sender,
/// as `image/jpeg` (one frame) or `application/octet-stream` (concatenated frames).
fn start_upload(
    server: &TestServer,
    stream: &str,
    content_type: &str,
    forwarded_for: Option<&str>,
) -> (mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<Answer>) {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(4);
    let body = ReceiverStream::new(receiver).map(Ok::<_, std::io::Error>);
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/frames?stream={stream}")))
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(body));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let answer = tokio::spawn(async move { answer_of(request.send().await.unwrap()).await });
    (sender, answer)
}

/// Opens an event stream, as a client at `forwarded_for` if given; returns the answer's
/// status and the open response.
async fn subscribe(server: &TestServer, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url("/events?stream=s"));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn one_client_cannot_hold_more_event_streams_than_its_quota() {
    let server = TestServer::start_with(|config| config.max_subscribers_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let response = subscribe(&server, None).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let (status, body, retry_after) = answer_of(subscribe(&server, None).await).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-subscribers-per-ip"),
        "{body}"
    );
    // Claiming to be someone else does not help without --trust-proxy.
    let spoofed = subscribe(&server, Some("198.51.100.7")).await;
    assert_eq!(spoofed.status(), 429);

    held.pop();
    eventually("a slot is free once a viewer left", || async {
        subscribe(&server, None).await.status() == 200
    })
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota() {
    let server = TestServer::start_with(|config| {
        config.max_subscribers_per_ip = 1;
        config.trust_proxy = true;
    })
    .await;
    let _first = subscribe(&server, Some("198.51.100.7")).await;
    assert_eq!(_first.status(), 200);
    assert_eq!(subscribe(&server, Some("198.51.100.7")).await.status(), 429);
    // The last entry is the one the proxy added; what the client wrote before it is ignored.
    assert_eq!(
        subscribe(&server, Some("203.0.113.1, 198.51.100.7"))
            .await
            .status(),
        429
    );
    let other = subscribe(&server, Some("198.51.100.8")).await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn one_client_cannot_hold_more_uploads_than_its_quota() {
    let server = TestServer::start_with(|config| config.max_uploads_per_ip = 2).await;
    let first = start_upload(&server, "a", "application/octet-stream", None);
    let second = start_upload(&server, "b", "application/octet-stream", None);
    for (sender, _) in [&first, &second] {
        sender.send(sample_jpeg(64, 64, 1)).await.unwrap();
    }
    eventually("both uploads are in", || async {
        server.streams().await.len() == 2
    })
    .await;
    let (_third, answer) = start_upload(&server, "c", "application/octet-stream", None);
    let (status, body, retry_after) = answer.await.unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());

    // Ending an upload frees its slot.
    let (sender, answer) = first;
    drop(sender);
    assert_eq!(answer.await.unwrap().0, 200);
    let (sender, answer) = start_upload(&server, "c", "image/jpeg", None);
    sender.send(sample_jpeg(64, 64, 2)).await.unwrap();
    drop(sender);
    assert_eq!(answer.await.unwrap().0, 200);
}

#[tokio::test]
async fn uploads_together_cannot_buffer_more_than_their_budget() {
    let server = TestServer::start_with(|config| config.max_upload_buffer_bytes = 100_000).await;
    // Two uploads parked part-way through a frame, as a slow or hostile producer would.
    let (parked, _first) = start_upload(&server, "a", "image/jpeg", None);
    parked.send(vec![0xFF; 60_000]).await.unwrap();
    eventually("the first upload holds its bytes", || async {
        server.streams().await.len() == 1
    })
    .await;
    let (second, answer) = start_upload(&server, "b", "image/jpeg", None);
    second.send(vec![0xFF; 60_000]).await.unwrap();
    let (status, body, retry_after) = answer.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some());
    assert!(body["error"].as_str().unwrap().contains("buffer"), "{body}");
    drop(parked);
}

#[tokio::test]
async fn a_frame_that_trickles_in_is_cut_off_at_the_upload_timeout() {
    let server = TestServer::start_with(|config| {
        config.upload_timeout = Duration::from_millis(1500);
    })
    .await;
    let jpeg = sample_jpeg(64, 64, 3);
    for content_type in ["image/jpeg", "application/octet-stream"] {
        // One byte every 200 ms: never idle, never done.
        let (sender, answer) = start_upload(&server, "slow", content_type, None);
        let trickle = {
            let jpeg = jpeg.clone();
            tokio::spawn(async move {
                for byte in jpeg {
                    if sender.send(vec![byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let (status, body, _) = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("an answer soon after the timeout")
            .unwrap();
        assert_eq!(status, 408, "{content_type}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("whole within"),
            "{body}"
        );
        trickle.abort();
    }
    // A continuous upload whose frames each come in time is never cut off.
    let (sender, answer) = start_upload(&server, "steady", "application/octet-stream", None);
    for seed in 0..4 {
        sender.send(sample_jpeg(64, 64, seed)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    drop(sender);
    let (status, body, _) = answer.await.unwrap();
    assert_eq!((status, body["frames"].as_u64()), (200, Some(4)), "{body}");
}

#[tokio::test]
async fn uploads_that_bring_no_frame_give_their_stream_names_back() {
    let server = TestServer::start_with(|config| config.max_streams = 2).await;
    let client = reqwest::Client::new();
    // Bodies that are not JPEGs, to as many names as the server has room for and more.
    for n in 0..6 {
        let response = client
            .post(server.url(&format!("/frames?stream=junk{n}")))
            .header("content-type", "image/jpeg")
            .body(vec![0u8; 100])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "junk{n}");
    }
    assert!(
        server.streams().await.is_empty(),
        "{:?}",
        server.streams().await
    );
    for cam in ["cam1", "cam2"] {
        let (status, body) = server.post_jpeg(cam, &sample_jpeg(32, 32, 1)).await;
        assert_eq!(status, 200, "{cam}: {body}");
    }
}
