//! `?width=`: frames scaled once per (stream, width) for everyone watching that width.

use std::time::Duration;

use crate::common::{EventReader, TestServer, eventually, sample_jpeg};

/// What ffprobe, a decoder that has nothing to do with framecast's, makes of `jpeg`.
async fn probe(jpeg: &[u8]) -> (u64, u64) {
    let path = std::env::temp_dir().join(format!(
        "framecast-variant-{}-{}.jpg",
        std::process::id(),
        jpeg.len()
    ));
    std::fs::write(&path, jpeg).unwrap();
    let output = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .await
        .expect("ffprobe is installed");
    std::fs::remove_file(&path).unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (width, height) = text.trim().split_once(',').expect("width,height");
    (width.parse().unwrap(), height.parse().unwrap())
}

#[tokio::test]
async fn a_narrower_variant_decodes_to_its_size_with_the_frames_seq_and_ts() {
    let server = TestServer::start().await;
    let mut full = EventReader::open(&server.url("/events?stream=cam")).await;
    let mut small = EventReader::open(&server.url("/events?stream=cam&width=300")).await;
    let original = sample_jpeg(640, 480, 4);
    assert_eq!(server.post_jpeg("cam", &original).await.0, 200);

    let full = full.next_frame().await.unwrap();
    let small = small.next_frame().await.unwrap();
    let (meta, jpeg) = (small.json(), small.jpeg());
    assert_eq!(
        (meta["width"].clone(), meta["height"].clone()),
        (320.into(), 240.into())
    );
    assert_eq!(meta["size"], jpeg.len());
    assert_eq!(probe(&jpeg).await, (320, 240), "ffprobe agrees");
    assert!(jpeg.len() < original.len() / 2, "{} bytes", jpeg.len());
    assert_eq!(meta["seq"], full.json()["seq"]);
    assert_eq!(meta["ts"], full.json()["ts"]);
    assert_eq!(
        full.jpeg(),
        original,
        "full-size viewers still get the frame as pushed"
    );
}

#[tokio::test]
async fn a_frame_no_wider_than_the_variant_passes_through_as_it_came() {
    let server = TestServer::start().await;
    let mut small = EventReader::open(&server.url("/events?stream=cam&width=640")).await;
    let original = sample_jpeg(320, 240, 5);
    assert_eq!(server.post_jpeg("cam", &original).await.0, 200);
    assert_eq!(small.next_frame().await.unwrap().jpeg(), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_of_a_width_cost_one_scaling_per_frame() {
    let server = TestServer::start().await;
    let mut viewers = Vec::new();
    for _ in 0..50 {
        viewers.push(
            EventReader::open(&server.url("/events?stream=cam&width=160&payload=none")).await,
        );
    }
    let frames = 8;
    for seed in 0..frames {
        assert_eq!(
            server
                .post_jpeg("cam", &sample_jpeg(640, 360, seed))
                .await
                .0,
            200
        );
        // Every viewer gets this frame before the next is pushed, so none is skipped.
        for viewer in &mut viewers {
            let event = viewer.next_frame().await.unwrap();
            assert_eq!(event.json()["seq"], seed as u64 + 1);
            assert_eq!(event.json()["width"], 160);
        }
    }
    let status = server.stream_status("cam").await;
    assert_eq!(status["subscribers"], 50);
    assert_eq!(
        status["variants"],
        serde_json::json!([{ "width": 160, "scaled": frames, "failed": 0 }]),
        "{status}"
    );
    // The variant stops when its last viewer leaves.
    drop(viewers);
    eventually("the variant is gone", || async {
        server.stream_status("cam").await["variants"].is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_and_full_size_viewers_never_wait_for_a_variant() {
    let server = TestServer::start().await;
    let mut full = EventReader::open(&server.url("/events?stream=cam&payload=none")).await;
    let _small = EventReader::open(&server.url("/events?stream=cam&width=160")).await;
    // Large frames, pushed back to back: scaling each takes longer than pushing it.
    let frames: Vec<Vec<u8>> = (0..3).map(|seed| sample_jpeg(1920, 1080, seed)).collect();
    let client = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    for i in 0..30 {
        let response = client
            .post(server.url("/frames?stream=cam"))
            .header("content-type", "image/jpeg")
            .body(frames[i % 3].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(full.next_frame().await.unwrap().json()["seq"], i as u64 + 1);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let status = server.stream_status("cam").await;
    let scaled = status["variants"][0]["scaled"].as_u64().unwrap();
    assert!(scaled <= 30, "{status}");
}
