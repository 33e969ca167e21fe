//! Pulling a camera: one upstream connection for every viewer, linger, stalls, outages, auth.

use std::time::Duration;

use framecast::config::{Config, parse_source};

use crate::common::{EventReader, TestServer, WAIT, eventually};
use crate::fake_camera::{Auth, FakeCamera, Mode, Setup};

/// A server pulling `url` into stream `cam`, with timings short enough for tests.
async fn server_pulling(url: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let spec = parse_source(&format!("cam={url}")).unwrap();
    TestServer::start_with(|config| {
        config.sources = vec![spec];
        config.linger = Duration::from_millis(500);
        config.stall_after = Duration::from_millis(400);
        config.read_timeout = Duration::from_millis(1500);
        config.connect_timeout = Duration::from_secs(1);
        adjust(config);
    })
    .await
}

/// Waits for `event: status` with `state`, skipping frames; returns its JSON.
async fn wait_for_state(reader: &mut EventReader, state: &str) -> serde_json::Value {
    let wait = async {
        loop {
            let event = reader.next().await.expect("the stream ended");
            if event.event.as_deref() == Some("status") && event.json()["state"] == state {
                return event.json();
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {state:?} status within the wait limit"))
}

#[tokio::test]
async fn fifty_viewers_share_one_camera_connection() {
    let camera = FakeCamera::start(Setup::default()).await;
    let server = server_pulling(&camera.url(None), |_| {}).await;
    assert_eq!(camera.connections(), 0, "on demand: nobody is watching yet");

    let mut viewers = Vec::new();
    for _ in 0..50 {
        viewers.push(EventReader::open(&server.url("/events?stream=cam")).await);
    }
    for viewer in &mut viewers {
        for _ in 0..3 {
            let frame = viewer.next_frame().await.unwrap();
            assert!(
                camera.sent(&frame.jpeg()),
                "a frame differs from what the camera sent"
            );
        }
    }
    assert_eq!(camera.connections(), 1);
    assert_eq!(camera.served(), 1);
    let status = server.stream_status("cam").await;
    assert_eq!(status["subscribers"], 50);
    assert_eq!(status["state"], "live");
    assert_eq!(status["source"], "camera");
}

#[tokio::test]
async fn the_camera_is_dropped_a_linger_after_the_last_viewer_leaves() {
    let camera = FakeCamera::start(Setup::default()).await;
    let server = server_pulling(&camera.url(None), |_| {}).await;

    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    viewer.next_frame().await.unwrap();
    assert_eq!(camera.open_connections(), 1);
    drop(viewer);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(camera.open_connections(), 1, "still lingering");
    eventually("camera connection closed", || async {
        camera.open_connections() == 0
    })
    .await;
    let status = server.stream_status("cam").await;
    assert_eq!(status["state"], "connecting");
    assert_eq!(status["reason"], "idle until a viewer arrives");

    // A viewer coming back gets the camera again, on a new connection.
    let mut back = EventReader::open(&server.url("/events?stream=cam")).await;
    back.next_frame().await.unwrap();
    back.next_frame().await.unwrap();
    assert_eq!(camera.connections(), 2);
}

#[tokio::test]
async fn always_on_connects_without_viewers_and_stays() {
    let camera = FakeCamera::start(Setup::default()).await;
    let server = server_pulling(&format!("{} always-on", camera.url(None)), |_| {}).await;
    eventually("camera connected", || async {
        camera.open_connections() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(camera.open_connections(), 1);
    assert_eq!(server.stream_status("cam").await["state"], "live");
}

#[tokio::test]
async fn a_stalled_camera_is_reported_then_reconnected() {
    let camera = FakeCamera::start(Setup::default()).await;
    let server = server_pulling(&camera.url(None), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    wait_for_state(&mut viewer, "live").await;
    let before = viewer.next_frame().await.unwrap().json()["seq"]
        .as_u64()
        .unwrap();

    camera.stall();
    let stalled = wait_for_state(&mut viewer, "stalled").await;
    assert_eq!(stalled["stream"], "cam");
    camera.resume();
    // The read timeout drops the silent connection; a new one brings frames again.
    let dropped = wait_for_state(&mut viewer, "offline").await;
    let reason = dropped["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no data from the camera for 1.5 s"),
        "{reason}"
    );
    wait_for_state(&mut viewer, "live").await;
    let after = viewer.next_frame().await.unwrap();
    assert!(after.json()["seq"].as_u64().unwrap() > before);
    assert!(camera.sent(&after.jpeg()));
    assert_eq!(camera.connections(), 2);
}

#[tokio::test]
async fn a_camera_that_goes_down_is_offline_until_it_returns() {
    let camera = FakeCamera::start(Setup::default()).await;
    let server = server_pulling(&camera.url(None), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    viewer.next_frame().await.unwrap();

    camera.go_down();
    let offline = wait_for_state(&mut viewer, "offline").await;
    assert!(
        offline["reason"].as_str().unwrap().contains("retrying in"),
        "{offline}"
    );
    // Refused connections keep it offline, with the cause named.
    let refused = wait_for_state(&mut viewer, "offline").await;
    assert!(
        refused["reason"].as_str().unwrap().contains("refused"),
        "{refused}"
    );
    let status = server.stream_status("cam").await;
    assert!(
        status["width"].is_number(),
        "the last frame stays available"
    );

    camera.come_back().await;
    wait_for_state(&mut viewer, "live").await;
    let frame = viewer.next_frame().await.unwrap();
    assert!(camera.sent(&frame.jpeg()));
}

#[tokio::test]
async fn a_camera_that_ends_its_stream_is_reconnected() {
    let camera = FakeCamera::start(Setup {
        close_every: Some(5),
        ..Setup::default()
    })
    .await;
    let server = server_pulling(&camera.url(None), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    for _ in 0..12 {
        assert!(camera.sent(&viewer.next_frame().await.unwrap().jpeg()));
    }
    assert!(camera.connections() >= 3, "{}", camera.connections());
}

/// A camera demanding `auth`, pulled with `spec`: frames flow after one challenge, answered on
/// the challenged connection.
async fn assert_authenticated_once(auth: Auth, spec: impl FnOnce(&FakeCamera) -> String) {
    let camera = FakeCamera::start(Setup {
        auth,
        ..Setup::default()
    })
    .await;
    let server = server_pulling(&spec(&camera), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    assert!(camera.sent(&viewer.next_frame().await.unwrap().jpeg()));
    assert_eq!(camera.challenged(), 1);
    assert_eq!(
        camera.connections(),
        1,
        "the answer reuses the challenged connection"
    );
}

#[tokio::test]
async fn basic_auth_from_the_url() {
    assert_authenticated_once(Auth::basic("viewer", "pa ss:1"), |camera| {
        camera.url(Some(("viewer", "pa%20ss%3A1")))
    })
    .await;
}

#[tokio::test]
async fn digest_auth_from_options() {
    assert_authenticated_once(Auth::digest("admin", "s3cret"), |camera| {
        format!("{} user=admin password=s3cret", camera.url(None))
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_without_the_password() {
    let camera = FakeCamera::start(Setup {
        auth: Auth::digest("admin", "right"),
        ..Setup::default()
    })
    .await;
    let server = server_pulling(&camera.url(Some(("admin", "wrong-horse"))), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    let offline = wait_for_state(&mut viewer, "offline").await;
    let reason = offline["reason"].as_str().unwrap();
    assert!(
        reason.contains("refused the user name or password"),
        "{reason}"
    );
    let streams = reqwest::get(server.url("/streams"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!streams.contains("wrong-horse"), "{streams}");
}

#[tokio::test]
async fn a_snapshot_url_is_polled_over_one_connection() {
    let camera = FakeCamera::start(Setup {
        mode: Mode::Snapshot,
        auth: Auth::digest("admin", "s3cret"),
        ..Setup::default()
    })
    .await;
    let spec = format!("{} fps=20", camera.url(Some(("admin", "s3cret"))));
    let server = server_pulling(&spec, |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    // Each poll brings the camera's next picture. (A viewer that falls behind skips frames, so
    // only consecutive events are compared: the camera cycles through ten pictures.)
    let mut previous = viewer.next_frame().await.unwrap().jpeg();
    for _ in 0..5 {
        let jpeg = viewer.next_frame().await.unwrap().jpeg();
        assert!(camera.sent(&jpeg));
        assert_ne!(jpeg, previous, "each poll brings the camera's next picture");
        previous = jpeg;
    }
    assert_eq!(camera.connections(), 1);
    assert_eq!(
        camera.challenged(),
        1,
        "the nonce is reused with a counting nc"
    );
}

#[tokio::test]
async fn a_stream_labelled_image_jpeg_is_still_read_as_a_stream() {
    let camera = FakeCamera::start(Setup {
        mislabelled: true,
        ..Setup::default()
    })
    .await;
    let server = server_pulling(&camera.url(None), |_| {}).await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    for _ in 0..5 {
        assert!(camera.sent(&viewer.next_frame().await.unwrap().jpeg()));
    }
    assert_eq!(camera.connections(), 1);
    assert_eq!(camera.served(), 1, "one request, read as a stream");
}

#[tokio::test]
async fn a_camera_that_accepts_but_never_answers_times_out() {
    // Accepts connections and holds them without a word, like a wedged camera.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/video.mjpg", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let server = server_pulling(&url, |config| {
        config.connect_timeout = Duration::from_millis(500);
        config.read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut viewer = EventReader::open(&server.url("/events?stream=cam")).await;
    let offline = wait_for_state(&mut viewer, "offline").await;
    let reason = offline["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no answer from the camera in 1 s"),
        "{reason}"
    );
    holder.abort();
}
