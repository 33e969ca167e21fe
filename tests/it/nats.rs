//! A real `nats-server` (Debian's package) run with `deploy/nats-server.conf` itself, on
//! random loopback ports, for the cluster tests; and framecast nodes joined to it.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::common::{EventReader, WAIT, post_jpeg_to, sample_jpeg, spawn_binary};

/// Where Debian installs the server (not on every user's PATH).
const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// The configuration under test, as shipped, and the lines the tests change.
const CONFIG: &str = include_str!("../../deploy/nats-server.conf");
const CONFIG_LISTEN: &str = "listen: 10.0.0.5:4222";
const CONFIG_MAX_PAYLOAD: &str = "max_payload: 9MB";
const CONFIG_STORE: &str = "store_dir: \"/var/lib/nats\"";
/// The user and password nodes log in with, as the shipped file has them.
pub const USER: &str = "framecast";
pub const PASSWORD: &str = "REPLACE-with-a-long-random-password";

/// A running `nats-server`, killed when dropped.
pub struct Nats {
    child: Option<Child>,
    /// Its client port.
    pub port: u16,
    /// Its HTTP monitoring port (`/connz`, `/jsz`).
    pub monitor: u16,
    dir: PathBuf,
    max_payload: String,
}

impl Nats {
    /// Starts a server taking messages of up to `max_payload` (`1MB`, `8MB`, …).
    pub async fn start(name: &str, max_payload: &str) -> Nats {
        let dir =
            std::env::temp_dir().join(format!("framecast-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Nats {
            child: None,
            port: 0,
            monitor: 0,
            dir,
            max_payload: max_payload.to_owned(),
        };
        nats.run().await;
        nats
    }

    /// `nats://USER:PASSWORD@127.0.0.1:PORT`, as a node is given it.
    pub fn url(&self) -> String {
        format!("nats://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// The same without credentials.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server, as a crash would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts the server again on the same ports, without what it stored in memory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    /// Messages the framecast node called `node` has sent the server (from `/connz`).
    pub async fn messages_from(&self, node: &str) -> u64 {
        self.connection(node).await["in_msgs"].as_u64().unwrap()
    }

    /// Bytes the server has sent to the framecast node called `node` (from `/connz`).
    pub async fn bytes_sent_to(&self, node: &str) -> u64 {
        self.connection(node).await["out_bytes"].as_u64().unwrap()
    }

    /// The `/connz` entry of the framecast node called `node`.
    async fn connection(&self, node: &str) -> serde_json::Value {
        let connz: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{}/connz", self.monitor))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let name = format!("framecast {node}");
        connz["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|connection| connection["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no NATS connection named {name:?}: {connz}"))
            .clone()
    }

    /// JetStream consumers the server holds now (from `/jsz`).
    pub async fn consumers(&self) -> u64 {
        let jsz: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{}/jsz", self.monitor))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jsz["consumers"]
            .as_u64()
            .unwrap_or_else(|| panic!("no consumer count: {jsz}"))
    }

    /// Runs the server on the known ports (random ones the first time) and learns them.
    async fn run(&mut self) {
        let port = |port: u16| {
            if port == 0 {
                "-1".to_owned()
            } else {
                port.to_string()
            }
        };
        let config = self.dir.join("nats.conf");
        let edited = [
            (
                CONFIG_LISTEN,
                format!("listen: 127.0.0.1:{}", port(self.port)),
            ),
            (
                CONFIG_MAX_PAYLOAD,
                format!("max_payload: {}", self.max_payload),
            ),
            (
                CONFIG_STORE,
                format!("store_dir: {:?}", self.dir.join("js")),
            ),
        ]
        .into_iter()
        .fold(CONFIG.to_owned(), |text, (from, to)| {
            assert_eq!(
                text.matches(from).count(),
                1,
                "deploy/nats-server.conf has {from:?}"
            );
            text.replace(from, &to)
        });
        // The monitoring port, for /connz: not in the shipped file.
        let edited = format!("{edited}\nhttp: 127.0.0.1:{}\n", port(self.monitor));
        std::fs::write(&config, edited).unwrap();
        let mut child = Command::new(NATS_SERVER)
            .arg("-c")
            .arg(&config)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (tests/all.sh installs it)");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let port_after = |text: &str| -> Option<u16> {
                    line.split(text)
                        .nth(1)?
                        .rsplit(':')
                        .next()?
                        .trim()
                        .parse()
                        .ok()
                };
                if let Some(monitor) = port_after("Starting http monitor on ") {
                    self.monitor = monitor;
                }
                if let Some(port) = port_after("Listening for client connections on ") {
                    self.port = port;
                }
                if line.contains("Server is ready") {
                    return;
                }
            }
            panic!("nats-server stopped before it was ready");
        };
        tokio::time::timeout(WAIT, ready)
            .await
            .expect("nats-server ready in time");
        // Keep reading its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A framecast node (the real binary) joined to `nats` as `node`, with `args` added.
pub struct Node {
    pub child: Child,
    /// Its base URL.
    pub url: String,
}

impl Node {
    pub async fn start(nats: &Nats, node: &str, args: &[&str]) -> Node {
        let url = nats.url();
        let mut all = vec![
            "--no-test-pattern",
            "--nats",
            &url,
            "--nats-node",
            node,
            "--max-frame-bytes",
            "1000000",
        ];
        all.extend_from_slice(args);
        let (child, url) = spawn_binary(&all, std::process::Stdio::null()).await;
        Node { child, url }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Uploads `jpeg` to stream `cam`; its number.
    pub async fn push(&self, jpeg: &[u8]) -> u64 {
        let (status, body) = post_jpeg_to(&self.url("/frames?stream=cam"), jpeg).await;
        assert_eq!(status, 200, "{body}");
        body["seq"].as_u64().unwrap()
    }

    /// `GET path` as JSON.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET path` as text.
    pub async fn text(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Pause between uploads: a camera's pace, so that no viewer has reason to skip a frame.
pub const PACE: Duration = Duration::from_millis(100);

/// `count` different 320x240 JPEGs.
pub fn frames(count: u32) -> Vec<Vec<u8>> {
    (0..count).map(|seed| sample_jpeg(320, 240, seed)).collect()
}

/// Reads frame events until `last`, checking that numbers only go up and that each carries
/// the JPEG uploaded as that number; returns every event's data by number.
pub async fn read_until(
    reader: &mut EventReader,
    sent: &[Vec<u8>],
    last: u64,
) -> std::collections::BTreeMap<u64, String> {
    let mut seen = std::collections::BTreeMap::new();
    let mut previous = 0;
    while previous < last {
        let event = reader.next_frame().await.expect("the stream goes on");
        let seq = event.json()["seq"].as_u64().unwrap();
        assert!(seq > previous, "seq {seq} after {previous}");
        assert_eq!(event.id, Some(seq.to_string()));
        assert_eq!(event.jpeg(), sent[seq as usize - 1], "frame {seq}");
        previous = seq;
        seen.insert(seq, event.data);
    }
    seen
}

/// Uploads `sent` to `url` at [`PACE`], checking that they are numbered 1, 2, 3…, then reads
/// every viewer until the last, checking each frame is the one uploaded under its number.
pub async fn upload_in_turn(url: &str, sent: &[Vec<u8>], viewers: &mut [EventReader]) {
    for (index, jpeg) in sent.iter().enumerate() {
        let (status, body) = post_jpeg_to(url, jpeg).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["seq"], index as u64 + 1, "upload {index}");
        tokio::time::sleep(PACE).await;
    }
    for viewer in viewers {
        read_until(viewer, sent, sent.len() as u64).await;
    }
}

/// Subscribers of the one stream on each node, from `node`'s `/streams` census.
pub async fn subscribers_on_each_node(node: &Node) -> Vec<u64> {
    let streams = node.json("/streams").await;
    streams["cluster"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no census: {streams}"))
        .iter()
        .map(|node| node["streams"][0]["subscribers"].as_u64().unwrap_or(0))
        .collect()
}

/// A short pause that lets messages already sent arrive.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}
