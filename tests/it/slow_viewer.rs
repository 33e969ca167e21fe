//! A viewer that stops reading costs the others nothing: they still get every frame, and it
//! is dropped once its connection has accepted nothing for the send timeout.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::common::{EventReader, TestServer, eventually, publish_every, sample_jpeg};

/// Opens an event stream with a tiny receive window and never reads from it. `HTTP/1.1` goes
/// the direct path, `HTTP/1.0` through hyper.
async fn stalled_viewer(server: &TestServer, version: &str) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    let request = format!(
        "GET /events?stream=s {version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    stalled
}

/// Frames published at 10 fps for five seconds: plenty to fill the stalled viewer's buffers,
/// and 100 ms for the healthy viewer to read each one even on a busy machine.
const FRAMES: u64 = 50;
/// Time between frames.
const FRAME_INTERVAL: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_never_reads_does_not_stop_another_from_getting_every_frame() {
    let server = TestServer::start().await;

    let stalled = stalled_viewer(&server, "HTTP/1.1").await;

    let mut healthy = EventReader::open(&server.url("/events?stream=s")).await;
    let frames: Vec<Vec<u8>> = (0..4).map(|seed| sample_jpeg(480, 360, seed)).collect();
    assert!(
        frames[0].len() > 40_000,
        "frames should be camera-sized: {}",
        frames[0].len()
    );

    let publisher = {
        let url = server.url("/frames?stream=s");
        let frames = frames.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut ticks = tokio::time::interval(FRAME_INTERVAL);
            for i in 0..FRAMES {
                ticks.tick().await;
                let response = client
                    .post(&url)
                    .header("content-type", "image/jpeg")
                    .body(frames[i as usize % frames.len()].clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    };

    for expected in 1..=FRAMES {
        let event = healthy.next_frame().await.unwrap();
        assert_eq!(
            event.json()["seq"],
            expected,
            "the healthy viewer missed a frame"
        );
        assert_eq!(event.jpeg(), frames[(expected - 1) as usize % frames.len()]);
    }
    publisher.await.unwrap();
    assert_eq!(server.stream_status("s").await["subscribers"], 2);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_accepts_nothing_for_the_send_timeout_is_dropped_on_either_path() {
    let server = TestServer::start_with(|config| {
        config.send_timeout = Duration::from_secs(1);
        config.send_buffer_bytes = 4096;
    })
    .await;
    let direct = stalled_viewer(&server, "HTTP/1.1").await;
    let hyper = stalled_viewer(&server, "HTTP/1.0").await;
    let mut healthy = EventReader::open(&server.url("/events?stream=s")).await;

    // Frames keep coming, so both stalled connections fill up and stay full.
    let frame = sample_jpeg(480, 360, 1);
    let publisher = publish_every(&server, "s", vec![frame], FRAME_INTERVAL);
    let reader = tokio::spawn(async move { while healthy.next_frame().await.is_some() {} });

    eventually("only the healthy viewer is left", || async {
        server.stream_status("s").await["subscribers"] == 1
    })
    .await;
    publisher.abort();
    reader.abort();
    drop((direct, hyper));
}
