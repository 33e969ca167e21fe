//! Stopping the server ends every open stream cleanly and promptly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::common::{EventReader, TestServer, sample_jpeg, spawn_binary};

#[tokio::test]
async fn shutdown_ends_open_streams_cleanly_within_two_seconds() {
    let mut server = TestServer::start().await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(EventReader::open(&server.url("/events?stream=s")).await);
    }
    server.post_jpeg("s", &sample_jpeg(32, 32, 1)).await;
    for reader in &mut readers {
        reader.next_frame().await.unwrap();
    }

    let started = Instant::now();
    server.shutdown.trigger();
    let task = server.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("run() returns within 2 s")
        .unwrap()
        .unwrap();
    for reader in &mut readers {
        assert!(reader.next().await.is_none(), "the stream ends, not errors");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_binary_exits_promptly_on_sigterm_with_viewers_connected_and_stderr_closed() {
    // spawn_binary closes its stderr at once, as with `framecast 2>&1 | head -1`: a closed
    // stderr must not make it deaf to SIGTERM.
    let (mut child, url) = spawn_binary(&[], Stdio::null()).await;

    // One viewer reading the test pattern, one connected but never reading.
    let mut reader = EventReader::open(&format!("{url}/events")).await;
    reader.next_frame().await.unwrap();
    let mut idle = TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    idle.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();

    let started = Instant::now();
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .expect("framecast exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
