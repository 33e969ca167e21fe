//! Several framecast nodes as one, over a real `nats-server` with JetStream: frames pushed to
//! any node reach viewers on every node, numbered once, byte for byte the same.

use std::time::{Duration, Instant};

use crate::common::{
    EventReader, PartReader, WAIT, eventually, post_jpeg_to, sample_jpeg, spawn_binary,
};
use crate::fake_camera::{FakeCamera, Setup};
use crate::nats::{
    Nats, Node, PACE, PASSWORD, USER, frames, read_until, settle, subscribers_on_each_node,
};
use crate::startup::refused;

#[tokio::test]
async fn frames_pushed_to_one_node_reach_viewers_on_the_others_and_no_one_else() {
    let nats = Nats::start("fanout", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    let c = Node::start(&nats, "c", &[]).await;
    let mut on_b = EventReader::open(&b.url("/events?stream=cam")).await;
    let mut on_c = EventReader::open(&c.url("/events?stream=cam")).await;
    settle().await;

    let sent = frames(10);
    let a_before = nats.bytes_sent_to("a").await;
    for (index, jpeg) in sent.iter().enumerate() {
        assert_eq!(a.push(jpeg).await, index as u64 + 1);
        tokio::time::sleep(PACE).await;
    }
    let seen_on_b = read_until(&mut on_b, &sent, 10).await;
    let seen_on_c = read_until(&mut on_c, &sent, 10).await;
    assert_eq!(seen_on_b.len(), 10, "every frame reached B");
    // Same number, same receive time, same bytes: the events are identical.
    assert_eq!(seen_on_b, seen_on_c);

    // A has no viewers: it sent frames to NATS but was sent none back, only acknowledgements.
    let a_received = nats.bytes_sent_to("a").await - a_before;
    let frame_bytes: usize = sent.iter().map(Vec::len).sum();
    assert!(
        (a_received as usize) < frame_bytes / 20,
        "A received {a_received} bytes for {frame_bytes} bytes of frames it did not watch"
    );
    let b_received = nats.bytes_sent_to("b").await;
    assert!(
        b_received as usize > frame_bytes,
        "B received {b_received} bytes"
    );

    // Each node counts the same in /metrics, which Prometheus's own checker accepts.
    let metrics = b.text("/metrics").await;
    crate::metrics::promtool_check(&metrics).await;
    let counted = metrics
        .lines()
        .find_map(|line| line.strip_prefix("framecast_cluster_received_bytes_total "))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no received bytes in\n{metrics}"));
    assert!(counted as usize > frame_bytes, "B counted {counted} bytes");
    assert!(
        metrics.contains("framecast_cluster_connected 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_viewer_joining_anywhere_gets_the_newest_frame_at_once() {
    let nats = Nats::start("join", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let c = Node::start(&nats, "c", &[]).await;
    let sent = frames(3);
    for jpeg in &sent {
        a.push(jpeg).await;
    }
    settle().await;

    // No frame is coming: the first one C shows must be the newest already sent.
    let asked = Instant::now();
    let mut on_c = EventReader::open(&c.url("/events?stream=cam")).await;
    let first = on_c.next_frame().await.unwrap();
    let waited = asked.elapsed();
    assert_eq!(first.json()["seq"], 3);
    assert_eq!(first.jpeg(), sent[2]);
    eprintln!("the newest frame reached a viewer joining another node in {waited:?}");
    assert!(waited < Duration::from_millis(500), "took {waited:?}");

    // And its status says live, as on the node that took the frames.
    let streams = c.json("/streams").await;
    assert_eq!(streams["streams"][0]["state"], "live", "{streams}");
}

#[tokio::test]
async fn uploads_to_different_nodes_share_one_numbering() {
    let nats = Nats::start("numbering", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    let c = Node::start(&nats, "c", &[]).await;
    let mut viewers = Vec::new();
    for node in [&a, &b, &c] {
        viewers.push(EventReader::open(&node.url("/events?stream=cam")).await);
    }
    settle().await;

    // A round-robin balancer: each upload goes to the other node.
    let sent = frames(12);
    for (index, jpeg) in sent.iter().enumerate() {
        let node = if index % 2 == 0 { &a } else { &b };
        assert_eq!(node.push(jpeg).await, index as u64 + 1, "upload {index}");
        tokio::time::sleep(PACE).await;
    }
    let mut seen = Vec::new();
    for viewer in &mut viewers {
        seen.push(read_until(viewer, &sent, 12).await);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
}

#[tokio::test]
async fn producers_racing_on_two_nodes_never_share_a_number() {
    let nats = Nats::start("race", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    let upload = |url: String, seed: u32| async move {
        let mut numbers = Vec::new();
        for i in 0..15 {
            let jpeg = sample_jpeg(64, 48, seed + i);
            let (status, body) = post_jpeg_to(&url, &jpeg).await;
            assert_eq!(status, 200, "{body}");
            numbers.push(body["seq"].as_u64().unwrap());
        }
        numbers
    };
    let (from_a, from_b) = tokio::join!(
        upload(a.url("/frames?stream=cam"), 0),
        upload(b.url("/frames?stream=cam"), 100),
    );
    let mut all: Vec<u64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=30).collect::<Vec<u64>>(),
        "A {from_a:?}, B {from_b:?}"
    );
    assert!(from_a.is_sorted() && from_b.is_sorted());
}

#[tokio::test]
async fn a_node_refuses_to_start_when_frames_would_not_fit_a_nats_message() {
    let nats = Nats::start("payload", "1MB").await;
    let url = nats.url();
    let said = refused(&["--bind", "127.0.0.1:0", "--nats", &url], "max_payload").await;
    assert!(said.contains("--max-frame-bytes"), "{said}");

    // With frames that fit, it starts.
    let (mut node, _) = spawn_binary(
        &[
            "--no-test-pattern",
            "--nats",
            &url,
            "--max-frame-bytes",
            "1000000",
        ],
        std::process::Stdio::null(),
    )
    .await;
    node.kill().await.unwrap();

    // The shipped nats-server.conf takes frames of the default --max-frame-bytes.
    let shipped = Nats::start("payload-shipped", "9MB").await;
    let url = shipped.url();
    let args = ["--no-test-pattern", "--nats", &url];
    let (mut node, _) = spawn_binary(&args, std::process::Stdio::null()).await;
    node.kill().await.unwrap();
}

#[tokio::test]
async fn nodes_log_in_to_nats_with_the_password_in_their_url() {
    // deploy/nats-server.conf wants a user and password.
    let nats = Nats::start("login", "1MB").await;
    let url = |password: &str| format!("nats://{USER}:{password}@{}", nats.address());
    let wrong = url("wrong");
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--max-frame-bytes",
        "1000000",
        "--nats",
    ];
    let said = refused(&[&args[..], &[&wrong]].concat(), "cannot connect to NATS").await;
    assert!(
        !said.contains("wrong") && !said.contains(PASSWORD),
        "{said}"
    );
    let anonymous = format!("nats://{}", nats.address());
    refused(
        &[&args[..], &[&anonymous]].concat(),
        "cannot connect to NATS",
    )
    .await;
    // The right password: the node joins and listens.
    let right = url(PASSWORD);
    let mut with_right = args.to_vec();
    with_right.push(&right);
    let (mut node, _) = spawn_binary(&with_right, std::process::Stdio::null()).await;
    node.kill().await.unwrap();
}

#[tokio::test]
async fn a_password_in_the_nats_url_never_shows() {
    // Nothing listens on this port: the node names the server and says why, without the secret.
    let secret = "nats://alice:hunter2@127.0.0.1:9";
    let said = refused(
        &["--bind", "127.0.0.1:0", "--nats", secret],
        "nats://127.0.0.1:9",
    )
    .await;
    assert!(
        !said.contains("hunter2") && !said.contains("alice"),
        "{said}"
    );
}

/// The node whose `/streams` says the source of `stream` runs on it.
async fn owner_of(nodes: &[&Node], stream: &str) -> Option<usize> {
    for (index, node) in nodes.iter().enumerate() {
        let streams: serde_json::Value = reqwest::get(node.url("/streams"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let runs_here = streams["streams"]
            .as_array()?
            .iter()
            .any(|entry| entry["name"] == stream && entry["owner"] == streams["node"]);
        if runs_here {
            return Some(index);
        }
    }
    None
}

#[tokio::test]
async fn one_node_pulls_a_camera_for_the_cluster_and_another_takes_over_when_it_dies() {
    let camera = FakeCamera::start(Setup::default()).await;
    let nats = Nats::start("camera", "1MB").await;
    let source = format!("cam={} linger=2s", camera.url(None));
    let args = [
        "--source",
        &source,
        "--nats-lease",
        "2s",
        "--stall-after",
        "1s",
    ];
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(Node::start(&nats, name, &args).await);
    }
    settle().await;
    assert_eq!(camera.connections(), 0, "nobody watches yet");
    // Every node names the one running the camera, though none follows the stream yet.
    let mut owners = Vec::new();
    for node in &nodes {
        owners.push(node.json("/streams").await["streams"][0]["owner"].clone());
    }
    assert!(owners[0].is_string(), "{owners:?}");
    assert!(owners.iter().all(|owner| *owner == owners[0]), "{owners:?}");

    // Viewers on every node: the camera sees one connection.
    let mut viewers = Vec::new();
    for node in &nodes {
        viewers.push(EventReader::open(&node.url("/events?stream=cam")).await);
    }
    let mut last_seq = vec![0; 3];
    for (viewer, last) in viewers.iter_mut().zip(&mut last_seq) {
        for _ in 0..5 {
            let frame = viewer.next_frame().await.unwrap();
            assert!(
                camera.sent(&frame.jpeg()),
                "a frame the camera did not send"
            );
            let seq = frame.json()["seq"].as_u64().unwrap();
            assert!(seq > *last);
            *last = seq;
        }
    }
    assert_eq!(camera.connections(), 1, "one connection for three nodes");
    assert_eq!(camera.open_connections(), 1);
    // The camera's stream takes no pushed frames, on any node.
    for node in &nodes {
        let jpeg = sample_jpeg(64, 48, 1);
        let (status, body) = post_jpeg_to(&node.url("/frames?stream=cam"), &jpeg).await;
        assert_eq!(status, 409, "{body}");
    }
    // Any node's /streams shows the whole cluster: one viewer of the camera on each node, live
    // everywhere (as soon as the census, reused for a second, is taken again).
    eventually("every node's viewer shows in the census", || async {
        subscribers_on_each_node(&nodes[0]).await == [1, 1, 1]
    })
    .await;
    let streams = nodes[0].json("/streams").await;
    let census = streams["cluster"]["nodes"].as_array().unwrap();
    let names: Vec<&str> = census
        .iter()
        .map(|node| node["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "{streams}");
    for node in census {
        assert_eq!(node["streams"][0]["name"], "cam", "{streams}");
        assert_eq!(node["streams"][0]["state"], "live", "{streams}");
    }
    let local = nodes[0].json("/streams?local").await;
    assert!(local.get("cluster").is_none(), "{local}");
    assert_eq!(local["node"], "a");

    // Kill the node that pulls the camera, as a crash would.
    let refs: Vec<&Node> = nodes.iter().collect();
    let owner = owner_of(&refs, "cam")
        .await
        .expect("a node says it runs the camera");
    nodes[owner].child.kill().await.unwrap();
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|&index| index != owner).collect();

    // Each surviving viewer hears the stream stall, then gets frames again, in order.
    for &index in &survivors {
        let viewer = &mut viewers[index];
        let mut stalled = false;
        loop {
            let event = tokio::time::timeout(WAIT, viewer.next())
                .await
                .expect("the camera comes back within the wait limit")
                .expect("the stream goes on");
            match event.event.as_deref() {
                Some("status") => {
                    let state = event.json()["state"].as_str().unwrap().to_owned();
                    stalled |= state == "stalled" || state == "connecting";
                }
                Some("frame") => {
                    let seq = event.json()["seq"].as_u64().unwrap();
                    assert!(seq > last_seq[index], "seq {seq} after {}", last_seq[index]);
                    last_seq[index] = seq;
                    if stalled {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let took = killed.elapsed();
    eprintln!("another node took the camera over {took:?} after its puller died");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(camera.open_connections(), 1, "again one connection");
    assert_eq!(camera.connections(), 2);
}

#[tokio::test]
async fn nodes_carry_on_alone_while_nats_is_down_and_rejoin_when_it_is_back() {
    let mut nats = Nats::start("restart", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    // C has no viewers: it never sees the stream's frames, only takes some in at the end.
    let c = Node::start(&nats, "c", &[]).await;
    let mut on_a = EventReader::open(&a.url("/events?stream=cam")).await;
    let mut on_b = EventReader::open(&b.url("/events?stream=cam")).await;
    settle().await;
    let sent = frames(6);
    assert_eq!(a.push(&sent[0]).await, 1);
    assert_eq!(on_b.next_frame().await.unwrap().jpeg(), sent[0]);

    // NATS goes away for five seconds: A still serves its own viewers what is pushed to it.
    nats.stop().await;
    let stopped = Instant::now();
    eventually("A's /healthz says NATS is unreachable", || async {
        cluster_health(&a).await == Some(false)
    })
    .await;
    // B's viewers are told that frames from elsewhere cannot reach them.
    let told = loop {
        let event = on_b.next().await.unwrap();
        if event.event.as_deref() == Some("status") && event.json()["state"] == "stalled" {
            break event.json();
        }
    };
    assert!(
        told["reason"].as_str().unwrap().contains("cluster"),
        "{told}"
    );
    let metrics = a.text("/metrics").await;
    assert!(
        metrics.contains("framecast_cluster_connected 0"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(stopped.elapsed())).await;
    let during = a.push(&sent[1]).await;
    assert_eq!(during, 2, "numbered after the last frame A saw");
    let frame = loop {
        let frame = on_a.next_frame().await.unwrap();
        if frame.json()["seq"].as_u64() == Some(during) {
            break frame;
        }
    };
    assert_eq!(frame.jpeg(), sent[1]);
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Back on the same port, without its stored state: the nodes rejoin by themselves. The
    // frames now go to C, which never saw the stream: the log lost it with the restart, so C
    // asks the others how far it was numbered, and goes on from there.
    nats.restart().await;
    eventually("C is back in the cluster", || async {
        cluster_health(&c).await == Some(true)
    })
    .await;
    let mut delivered = false;
    let deadline = Instant::now() + WAIT;
    let mut index = 2;
    while !delivered && Instant::now() < deadline {
        let seq = c.push(&sent[index.min(5)]).await;
        assert!(
            seq > during,
            "seq {seq} after {during}: viewers would wait for more"
        );
        index += 1;
        let wait = tokio::time::timeout(Duration::from_millis(500), async {
            for viewer in [&mut on_a, &mut on_b] {
                loop {
                    let frame = viewer.next_frame().await.unwrap();
                    if frame.json()["seq"].as_u64() == Some(seq) {
                        break;
                    }
                }
            }
        });
        delivered = wait.await.is_ok();
    }
    assert!(
        delivered,
        "frames pushed to C reach A and B after NATS came back"
    );
    assert_eq!(cluster_health(&b).await, Some(true));
}

/// What a node's `/healthz` says of its NATS connection.
async fn cluster_health(node: &Node) -> Option<bool> {
    let health: serde_json::Value = reqwest::get(node.url("/healthz"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    assert_eq!(
        health["ok"], true,
        "a node without NATS is still healthy: {health}"
    );
    health["cluster"]["connected"].as_bool()
}

#[tokio::test]
async fn every_output_works_on_a_node_that_did_not_take_the_frames_in() {
    let nats = Nats::start("outputs", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    let sent = frames(2);
    for jpeg in &sent {
        a.push(jpeg).await;
    }

    // A snapshot on B, which has never heard of the stream: the newest frame, as sent.
    let snapshot = reqwest::get(b.url("/snapshot?stream=cam")).await.unwrap();
    assert_eq!(snapshot.status(), 200);
    assert_eq!(snapshot.headers()["x-frame-seq"], "2");
    assert_eq!(snapshot.headers()["etag"], "\"2\"");
    assert_eq!(snapshot.bytes().await.unwrap(), sent[1]);
    let unknown = reqwest::get(b.url("/snapshot?stream=nowhere"))
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        404,
        "a stream no node has is still unknown"
    );

    // MJPEG on B starts with the newest frame too.
    let mut parts = PartReader::open(&b.url("/mjpeg?stream=cam")).await;
    assert_eq!(parts.next().await, sent[1]);

    // And a scaled variant is made on B from what came over NATS.
    let mut scaled = EventReader::open(&b.url("/events?stream=cam&width=160")).await;
    let frame = scaled.next_frame().await.unwrap();
    assert_eq!(frame.json()["width"], 160);
    assert_eq!(frame.json()["seq"], 2);
}

#[tokio::test]
async fn a_node_stopping_hands_its_camera_over_at_once() {
    let camera = FakeCamera::start(Setup::default()).await;
    let nats = Nats::start("handover", "1MB").await;
    let source = format!("cam={}", camera.url(None));
    // A lease far longer than the handover may take: only giving it up explains a quick one.
    let args = ["--source", &source, "--nats-lease", "20s"];
    let mut nodes = vec![
        Node::start(&nats, "a", &args).await,
        Node::start(&nats, "b", &args).await,
    ];
    let mut viewers = Vec::new();
    for node in &nodes {
        let mut viewer = EventReader::open(&node.url("/events?stream=cam")).await;
        viewer.next_frame().await.unwrap();
        viewers.push(viewer);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let owner = owner_of(&refs, "cam")
        .await
        .expect("a node runs the camera");
    let other = 1 - owner;

    let pid = nodes[owner].child.id().unwrap().to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(stopped.success());
    let asked = Instant::now();
    tokio::time::timeout(WAIT, nodes[owner].child.wait())
        .await
        .expect("the node stops")
        .unwrap();

    let last = viewers[other].next_frame().await.unwrap().json()["seq"]
        .as_u64()
        .unwrap();
    loop {
        let frame = viewers[other].next_frame().await.unwrap();
        let seq = frame.json()["seq"].as_u64().unwrap();
        assert!(seq > last);
        if camera.connections() == 2 && seq > last + 1 {
            break;
        }
    }
    let took = asked.elapsed();
    eprintln!("the camera was handed over {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with a 20 s lease"
    );
    assert_eq!(owner_of(&[&nodes[other]], "cam").await, Some(0));
}

#[tokio::test]
async fn viewers_coming_and_going_do_not_pile_up_consumers_in_nats() {
    let nats = Nats::start("churn", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let b = Node::start(&nats, "b", &[]).await;
    a.push(&sample_jpeg(64, 48, 1)).await;
    // Twenty viewers on B, one after the other, each gone as soon as it has its picture: B
    // keeps following the stream a moment after each leaves, so one consumer serves them all.
    for _ in 0..20 {
        let mut viewer = EventReader::open(&b.url("/events?stream=cam")).await;
        assert_eq!(viewer.next_frame().await.unwrap().json()["seq"], 1);
        drop(viewer);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(nats.consumers().await <= 1, "consumers pile up");
    }
    // Once nobody watches, B stops following and deletes its consumer.
    eventually("B's consumers are gone", || async {
        nats.consumers().await == 0
    })
    .await;
}

#[tokio::test]
async fn two_nodes_cannot_share_a_name() {
    let nats = Nats::start("names", "1MB").await;
    let _a = Node::start(&nats, "a", &[]).await;
    let url = nats.url();
    let args = ["--bind", "127.0.0.1:0", "--max-frame-bytes", "1000000"];
    let said = refused(
        &[&args[..], &["--nats", &url, "--nats-node", "a"]].concat(),
        "already called \"a\"",
    )
    .await;
    assert!(!said.contains(PASSWORD), "{said}");
    // Another name joins.
    let _b = Node::start(&nats, "b", &[]).await;
}

#[tokio::test]
async fn asking_streams_often_asks_the_cluster_at_most_once_a_second() {
    let nats = Nats::start("census", "1MB").await;
    let a = Node::start(&nats, "a", &[]).await;
    let _b = Node::start(&nats, "b", &[]).await;
    settle().await;
    let before = nats.messages_from("a").await;
    // A hundred /streams at once, then a hundred more: two censuses at most.
    for _ in 0..2 {
        let asks = (0..100).map(|_| a.json("/streams"));
        for streams in futures_util::future::join_all(asks).await {
            assert_eq!(
                streams["cluster"]["nodes"].as_array().unwrap().len(),
                2,
                "{streams}"
            );
        }
    }
    let sent = nats.messages_from("a").await - before;
    assert!(sent <= 4, "A sent NATS {sent} messages for 200 /streams");
}
