//! Hard limits: what one client can use up, it cannot keep from producers or other viewers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
