//! Replaying a folder of JPEGs or an MJPEG file, looping, at the requested rate.

use std::path::PathBuf;

use framecast::config::parse_source;

use crate::common::{EventReader, TestServer, sample_jpeg};

/// A fresh, empty folder for one test.
fn scratch_folder(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("framecast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

async fn server_replaying(spec: &str) -> TestServer {
    let spec = parse_source(spec).unwrap();
    TestServer::start_with(|config| config.sources = vec![spec]).await
}

#[tokio::test]
async fn a_folder_plays_its_jpegs_in_name_order_and_loops() {
    let folder = scratch_folder("folder-replay");
    let jpegs: Vec<Vec<u8>> = (0..3).map(|i| sample_jpeg(48, 32, 50 + i)).collect();
    for (i, jpeg) in jpegs.iter().enumerate() {
        std::fs::write(folder.join(format!("frame-{i}.JPG")), jpeg).unwrap();
    }
    std::fs::write(folder.join("frame-1b.jpg"), b"not a jpeg at all").unwrap();
    std::fs::write(folder.join("notes.txt"), b"ignored").unwrap();

    let server = server_replaying(&format!("lobby={} fps=60", folder.display())).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=lobby")).await;
    let first = viewer.next_frame().await.unwrap().jpeg();
    let start = jpegs
        .iter()
        .position(|jpeg| *jpeg == first)
        .expect("a file's bytes");
    for step in 1..=7 {
        let jpeg = viewer.next_frame().await.unwrap().jpeg();
        assert_eq!(jpeg, jpegs[(start + step) % 3], "step {step}");
    }
    let status = server.stream_status("lobby").await;
    assert_eq!(status["source"], "file");
    assert!(status["rejected"].as_u64().unwrap() >= 2, "{status}");
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn an_mjpeg_file_plays_and_loops() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ffmpeg-160x120.mjpeg"
    );
    let frames_in_file = {
        let mut splitter =
            framecast::mjpeg::Splitter::new(framecast::mjpeg::Framing::Concatenated, 1 << 20);
        splitter.push(&std::fs::read(fixture).unwrap());
        let mut count = std::iter::from_fn(|| splitter.next_piece()).count();
        count += std::iter::from_fn(|| splitter.finish()).count();
        count as u64
    };
    let server = server_replaying(&format!("clip={fixture} fps=100")).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=clip&payload=none")).await;
    loop {
        let json = viewer.next_frame().await.unwrap().json();
        assert_eq!(
            (json["width"].as_u64(), json["height"].as_u64()),
            (Some(160), Some(120))
        );
        if json["seq"].as_u64().unwrap() > frames_in_file + 2 {
            break;
        }
    }
    let status = server.stream_status("clip").await;
    assert_eq!(status["rejected"], 0);
    assert_eq!(status["state"], "live");
}

#[tokio::test]
async fn a_source_named_default_takes_the_place_of_the_test_pattern() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ffmpeg-160x120.mjpeg"
    );
    let spec = parse_source(&format!("default={fixture}")).unwrap();
    let server = TestServer::start_with(|config| {
        config.no_test_pattern = false;
        config.sources = vec![spec];
    })
    .await;
    let mut viewer = EventReader::open(&server.url("/events?payload=none")).await;
    assert_eq!(viewer.next_frame().await.unwrap().json()["width"], 160);
    assert_eq!(server.stream_status("default").await["source"], "file");
}

#[tokio::test]
async fn two_sources_for_one_stream_are_refused_at_startup() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = framecast::config::Config {
        sources: vec![
            parse_source("cam=-").unwrap(),
            parse_source("cam=tests").unwrap(),
        ],
        ..framecast::config::Config::default()
    };
    let shutdown = framecast::shutdown::Shutdown::new();
    let err = framecast::run(listener, config, shutdown)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "stream \"cam\" is given two sources");
}
