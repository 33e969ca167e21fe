//! Several streams on one connection (`?stream=a&stream=b`), and `?fps=` per viewer.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::common::{EventReader, TestServer, parse_block, publish_every, sample_jpeg};

#[tokio::test]
async fn one_connection_carries_each_stream_byte_exact_and_in_order() {
    let server = TestServer::start().await;
    let a: Vec<Vec<u8>> = (0..3).map(|seed| sample_jpeg(64, 48, seed)).collect();
    let b: Vec<Vec<u8>> = (10..13).map(|seed| sample_jpeg(96, 64, seed)).collect();
    // `b` already has a frame: it comes at once, with both statuses.
    assert_eq!(server.post_jpeg("b", &b[0]).await.0, 200);
    let mut reader = EventReader::open(&server.url("/events?stream=a&stream=b&stream=a")).await;
    // Each stream's status, and `b`'s newest frame after its status, in whichever order the
    // streams come.
    let mut opening: Vec<(String, String, Vec<u8>)> = Vec::new();
    while opening.len() < 3 {
        let event = reader.next().await.unwrap();
        let Some(kind) = event.event.clone() else {
            continue;
        };
        let jpeg = if kind == "frame" {
            event.jpeg()
        } else {
            Vec::new()
        };
        opening.push((
            kind,
            event.json()["stream"].as_str().unwrap().to_owned(),
            jpeg,
        ));
    }
    let order: Vec<(&str, &str)> = opening
        .iter()
        .map(|(kind, stream, _)| (kind.as_str(), stream.as_str()))
        .collect();
    assert!(order.contains(&("status", "a")), "{order:?}");
    let b_status = order.iter().position(|e| *e == ("status", "b"));
    let b_frame = order.iter().position(|e| *e == ("frame", "b"));
    assert!(b_status < b_frame && b_status.is_some(), "{order:?}");
    assert_eq!(opening[b_frame.unwrap()].2, b[0]);

    for i in 0..3 {
        assert_eq!(server.post_jpeg("a", &a[i]).await.0, 200);
        let event = reader.next_frame().await.unwrap();
        assert_eq!(event.json()["stream"], "a");
        assert_eq!(event.json()["seq"], i as u64 + 1);
        assert_eq!(event.jpeg(), a[i]);
        if i > 0 {
            assert_eq!(server.post_jpeg("b", &b[i]).await.0, 200);
            let event = reader.next_frame().await.unwrap();
            assert_eq!(event.json()["stream"], "b");
            assert_eq!(event.json()["seq"], i as u64 + 1);
            assert_eq!(event.jpeg(), b[i]);
        }
    }
    let counted: Vec<_> = server
        .streams()
        .await
        .iter()
        .map(|s| s["subscribers"].clone())
        .collect();
    assert_eq!(
        counted,
        [1, 1],
        "one subscriber of each stream, not two of `a`"
    );
    let all: serde_json::Value = reqwest::get(server.url("/streams"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["viewers"], 1, "one connection: {all}");
    drop(reader);
    crate::common::eventually("the viewer is gone", || async {
        let all: serde_json::Value = reqwest::get(server.url("/streams"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["viewers"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_stream_never_starves_a_slow_one_on_a_slow_connection() {
    // A small kernel send buffer, so that what the test reads is what the server chose to send
    // lately, not a backlog queued in the first moments.
    let server = TestServer::start_with(|config| config.send_buffer_bytes = 16 * 1024).await;
    let busy = publish_every(
        &server,
        "busy",
        (0..4).map(|seed| sample_jpeg(480, 360, seed)).collect(),
        Duration::from_millis(33),
    );
    let quiet = publish_every(
        &server,
        "quiet",
        vec![sample_jpeg(64, 48, 99)],
        Duration::from_secs(1),
    );
    // A connection that takes about 120 KB/s, far less than the busy stream's ~1.5 MB/s.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8192).unwrap();
    let mut connection = socket.connect(server.addr).await.unwrap();
    connection
        .write_all(b"GET /events?stream=busy&stream=quiet HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = vec![0; 6 * 1024];
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let n = connection.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        received.extend_from_slice(&buffer[..n]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    busy.abort();
    quiet.abort();
    // Count frames per stream in what arrived (chunk-size lines do not contain "event:").
    let text = String::from_utf8_lossy(&received);
    let mut frames: HashMap<String, Vec<u64>> = HashMap::new();
    for block in text.split("\n\n").filter(|b| b.contains("event: frame")) {
        let start = block.find("id: ").unwrap_or(0);
        let event = parse_block(&block.as_bytes()[start..]);
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&event.data) else {
            continue; // the last block may be cut short
        };
        frames
            .entry(json["stream"].as_str().unwrap().to_owned())
            .or_default()
            .push(json["seq"].as_u64().unwrap());
    }
    let quiet_seen = frames.get("quiet").map_or(0, Vec::len);
    let busy_seen = frames.get("busy").map_or(0, Vec::len);
    // 5 quiet frames were published in 5 s, and the connection carries about two busy frames
    // per quiet one: taking turns, not one quiet frame is lost.
    assert!(quiet_seen >= 4, "the quiet stream starved: {frames:?}");
    assert!(
        frames["quiet"].windows(2).all(|w| w[1] == w[0] + 1),
        "every quiet frame arrives: {frames:?}"
    );
    assert!(busy_seen >= 2, "the busy stream starved: {frames:?}");
    let busy_seqs = &frames["busy"];
    assert!(
        busy_seqs.windows(2).any(|w| w[1] > w[0] + 1),
        "a slow connection skips to the busy stream's newest frame: {busy_seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_caps_what_one_viewer_receives_to_the_newest_frames() {
    let server = TestServer::start().await;
    let producer = publish_every(
        &server,
        "cam",
        (0..4).map(|seed| sample_jpeg(64, 48, seed)).collect(),
        Duration::from_millis(50),
    );
    let mut capped = EventReader::open(&server.url("/events?stream=cam&fps=4&payload=none")).await;
    let mut full = EventReader::open(&server.url("/events?stream=cam&payload=none")).await;
    let first = capped.next_frame().await.unwrap().json()["seq"]
        .as_u64()
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut seqs = vec![first];
    while started.elapsed() < Duration::from_secs(3) {
        seqs.push(
            capped.next_frame().await.unwrap().json()["seq"]
                .as_u64()
                .unwrap(),
        );
    }
    producer.abort();
    let full_latest = loop {
        let seq = full.next_frame().await.unwrap().json()["seq"]
            .as_u64()
            .unwrap();
        if seq >= *seqs.last().unwrap() {
            break seq;
        }
    };
    // 3 s at 4 fps: 12 frames after the first; never more, fewer only if the machine is busy.
    let sent = seqs.len() - 1;
    assert!((9..=13).contains(&sent), "{sent} frames: {seqs:?}");
    // At 20 fps published, each frame sent skips about 4: the newest, not the next.
    let spread = (seqs[sent] - seqs[0]) as f64 / sent as f64;
    assert!(
        spread >= 3.0,
        "frames are {spread:.1} apart on average: {seqs:?}"
    );
    assert!(full_latest >= *seqs.last().unwrap());
}

#[tokio::test]
async fn curl_reads_several_streams_on_one_connection() {
    let server = TestServer::start().await;
    assert_eq!(
        server.post_jpeg("left", &sample_jpeg(32, 32, 1)).await.0,
        200
    );
    assert_eq!(
        server.post_jpeg("right", &sample_jpeg(32, 32, 2)).await.0,
        200
    );
    let output = tokio::process::Command::new("curl")
        .args(["-sN", "--max-time", "1"])
        .arg(server.url("/events?stream=left&stream=right&payload=none"))
        .output()
        .await
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    for stream in ["left", "right"] {
        assert!(
            text.contains(&format!(
                "event: frame\ndata: {{\"stream\":\"{stream}\",\"seq\":1,"
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn too_many_streams_or_a_bad_fps_is_a_clear_400() {
    let server = TestServer::start_with(|config| config.max_streams_per_connection = 2).await;
    for (query, says) in [
        ("stream=a&stream=b&stream=c", "--max-streams-per-connection"),
        ("stream=a&fps=0", "fps"),
        ("stream=a&stream=no%20spaces", "invalid stream name"),
    ] {
        let response = reqwest::get(server.url(&format!("/events?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body = response.text().await.unwrap();
        assert!(body.contains(says), "{query}: {body}");
    }
}
