//! A framecast cluster behind the real HAProxy, configured by `deploy/haproxy.cfg` itself
//! (only its `bind` and `server` lines changed): viewers spread over the nodes, uploads get
//! one numbering wherever they land, frames pass through as they come, and a client is the
//! address HAProxy saw, not one it claims.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::common::{EventReader, WAIT};
use crate::nats::{Nats, Node, frames, settle, subscribers_on_each_node, upload_in_turn};

/// Where Debian's `haproxy` package puts the binary.
const HAPROXY: &str = "/usr/sbin/haproxy";
/// The configuration under test, as shipped, and the lines the test changes.
const CONFIG: &str = include_str!("../../deploy/haproxy.cfg");
const CONFIG_BIND: &str = "bind :80";
const CONFIG_SERVERS: &str = "    server cams-1 10.0.0.11:8080\n    server cams-2 10.0.0.12:8080\n";

/// HAProxy running `deploy/haproxy.cfg` in front of `nodes`; killed when dropped.
struct HaProxy {
    child: tokio::process::Child,
    url: String,
}

impl HaProxy {
    async fn start(name: &str, nodes: &[&Node]) -> HaProxy {
        assert!(
            Path::new(HAPROXY).exists(),
            "{HAPROXY} is missing: install Debian's haproxy package (tests/all.sh does)"
        );
        let dir =
            std::env::temp_dir().join(format!("framecast-haproxy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let address = node.url.strip_prefix("http://").unwrap();
                format!("    server cams-{} {address}\n", index + 1)
            })
            .collect();
        assert_eq!(CONFIG.matches(CONFIG_BIND).count(), 1);
        assert_eq!(CONFIG.matches(CONFIG_SERVERS).count(), 1);
        let config = CONFIG
            .replace(CONFIG_BIND, &format!("bind 127.0.0.1:{port}"))
            .replace(CONFIG_SERVERS, &servers);
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let checked = std::process::Command::new(HAPROXY)
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "haproxy -c: {}",
            String::from_utf8_lossy(&checked.stdout)
        );
        let child = tokio::process::Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "HAProxy did not listen in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        HaProxy { child, url }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn a_cluster_behind_haproxy_spreads_viewers_and_numbers_uploads_once() {
    let nats = Nats::start("haproxy", "1MB").await;
    let args = ["--trust-proxy", "--max-subscribers-per-ip", "8"];
    let a = Node::start(&nats, "a", &args).await;
    let b = Node::start(&nats, "b", &args).await;
    let haproxy = HaProxy::start("cluster", &[&a, &b]).await;

    // Twelve viewers, spread by leastconn: six on each node, within the quota of 8.
    let mut viewers = Vec::new();
    for _ in 0..12 {
        viewers.push(EventReader::open(&haproxy.url("/events?stream=cam")).await);
    }
    settle().await;
    let on_each = subscribers_on_each_node(&a).await;
    assert_eq!(on_each.iter().sum::<u64>(), 12, "{on_each:?}");
    assert!(on_each.iter().all(|&count| count >= 4), "{on_each:?}");

    // The client is the address HAProxy saw, whatever X-Forwarded-For it sends: more streams
    // from it are refused once both nodes' quotas (8 each) are used, though each claims another
    // address.
    let mut held = Vec::new();
    let mut refused = None;
    for index in 0..12 {
        let response = reqwest::Client::new()
            .get(haproxy.url("/events?stream=cam"))
            .header("X-Forwarded-For", format!("10.2.0.{index}"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused = Some(held.len());
            break;
        }
        held.push(response);
    }
    assert_eq!(refused, Some(4), "refused after 12 + {refused:?} streams");
    drop(held);

    // Uploads through HAProxy get one numbering, and every viewer sees every frame.
    upload_in_turn(&haproxy.url("/frames?stream=cam"), &frames(6), &mut viewers).await;
}
