//! Hard limits: what one client can use up, it cannot keep from producers or other viewers.

use crate::common::{EventReader, TestServer, eventually, sample_jpeg};

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
