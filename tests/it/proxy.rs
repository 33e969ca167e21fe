//! framecast behind the real nginx, configured by `deploy/nginx.conf` itself.
//!
//! Each test starts the framecast binary with `--trust-proxy` and Debian's nginx with a small
//! wrapper configuration (pid, logs and temporary files in a scratch folder) that includes
//! the repository's file after changing only its upstreams' address and its `listen` line. A
//! test that needs a setting changed says which, and why. Then it checks what a user would:
//! the same bytes as a direct client, in time; uploads that stream; quiet streams that stay
//! open; the client's own address at framecast.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::common::{
    self, EventReader, PartReader, WAIT, eventually, ffmpeg_test_source, multipart_part,
    post_jpeg_to, sample_jpeg, spawn_binary,
};
use crate::nats::{Nats, Node, frames, settle, subscribers_on_each_node, upload_in_turn};

/// Where Debian's `nginx` package puts the binary (not on a normal user's PATH).
const NGINX: &str = "/usr/sbin/nginx";
/// The configuration under test, as shipped.
const SITE: &str = include_str!("../../deploy/nginx.conf");
/// The upstreams' address and the `listen` line in the file, the two things every test
/// changes.
const SITE_UPSTREAM: &str = "server 127.0.0.1:8080;";
const SITE_LISTEN: &str = "listen 80;";

/// `text` with its `times` occurrences of `from` replaced by `to`. Fails if `from` is there
/// another number of times, so that an edit of the file cannot quietly leave a test running
/// something else.
fn replace_exactly(text: &str, times: usize, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        times,
        "deploy/nginx.conf should have {from:?} {times} time(s)"
    );
    text.replace(from, to)
}

/// [`replace_exactly`] once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    replace_exactly(text, 1, from, to)
}

/// A free TCP port on 127.0.0.1, for nginx, which cannot be told to pick one.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The real nginx serving `deploy/nginx.conf` in front of a framecast; stopped, master and
/// worker, when dropped.
struct Nginx {
    master: std::process::Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`, where it listens.
    url: String,
}

impl Nginx {
    /// Starts nginx in front of `upstream` (`HOST:PORT`) in a fresh folder named after `name`.
    /// `http` is added to the wrapper's `http {}` before the file is included; `edit` may
    /// change the file's text further.
    async fn start(
        name: &str,
        upstream: &str,
        http: &str,
        edit: impl Fn(String) -> String,
    ) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "nginx is not installed ({NGINX} is missing): these tests run the real nginx \
             with deploy/nginx.conf; install Debian's package (`apt-get install nginx`, as \
             tests/all.sh does)"
        );
        // Both upstreams, the kept-alive one and the one for event streams.
        let site = edit(replace_exactly(
            SITE,
            2,
            SITE_UPSTREAM,
            &format!("server {upstream};"),
        ));
        let dir =
            std::env::temp_dir().join(format!("framecast-nginx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Started as root (as CI runs), nginx runs its worker as an unprivileged user, which
        // must reach the temporary folders nginx makes in here for it.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A port taken between our check and nginx's bind is simply tried again.
        for _attempt in 0..5 {
            let port = free_port();
            let site = replace_once(&site, SITE_LISTEN, &format!("listen 127.0.0.1:{port};"));
            std::fs::write(dir.join("framecast.conf"), site).unwrap();
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, wrapper(&dir, http)).unwrap();
            let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
            let master = std::process::Command::new(NGINX)
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("nginx starts");
            let mut nginx = Nginx {
                master,
                dir: dir.clone(),
                url: format!("http://127.0.0.1:{port}"),
            };
            match nginx.ready(port).await {
                Ok(()) => return nginx,
                Err(why) if why.contains("Address already in use") => continue,
                Err(why) => panic!("nginx did not start: {why}"),
            }
        }
        panic!("nginx found no free port in five tries");
    }

    /// Waits until nginx accepts connections on `port`, or returns why it exited.
    async fn ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.master.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default();
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(format!("{status}: {stderr}{log}"));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "nginx not listening in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// What nginx logged at `info` level so far, for failure messages.
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL on the master would leave its worker serving; SIGTERM makes the master
        // stop the worker, then itself.
        let _ = std::process::Command::new("kill")
            .args(["-s", "TERM", &self.master.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.master.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.master.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The main configuration around the included file: everything nginx writes stays in `dir`.
fn wrapper(dir: &Path, http: &str) -> String {
    let dir = dir.display();
    format!(
        "worker_processes 1;
# Two connections for each viewer, one either side.
worker_rlimit_nofile 4096;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 2048; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    {http}
    include {dir}/framecast.conf;
}}
"
    )
}

/// framecast (the real binary, with `--trust-proxy`) and nginx in front of it.
struct Deployment {
    framecast: tokio::process::Child,
    /// framecast's own address, `http://127.0.0.1:PORT`.
    direct: String,
    nginx: Nginx,
}

impl Deployment {
    /// framecast with `args` besides `--trust-proxy --no-test-pattern`, behind nginx as in
    /// [`Nginx::start`].
    async fn start(
        name: &str,
        args: &[&str],
        http: &str,
        edit: impl Fn(String) -> String,
    ) -> Deployment {
        let mut all = vec!["--trust-proxy", "--no-test-pattern"];
        all.extend_from_slice(args);
        let (framecast, direct) = spawn_binary(&all, std::process::Stdio::null()).await;
        let upstream = direct.strip_prefix("http://").unwrap().to_owned();
        let nginx = Nginx::start(name, &upstream, http, edit).await;
        Deployment {
            framecast,
            direct,
            nginx,
        }
    }

    /// framecast as shipped behind nginx as shipped.
    async fn plain(name: &str) -> Deployment {
        Deployment::start(name, &[], "", |site| site).await
    }

    fn direct(&self, path: &str) -> String {
        format!("{}{path}", self.direct)
    }

    /// framecast's resident memory, in KiB.
    fn framecast_rss_kib(&self) -> f64 {
        let pid = self.framecast.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn proxied(&self, path: &str) -> String {
        self.nginx.url(path)
    }

    /// The `/streams` entry for `stream`, asked of framecast directly.
    async fn stream_status(&self, stream: &str) -> serde_json::Value {
        let all: serde_json::Value = reqwest::get(self.direct("/streams"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == stream)
            .cloned()
            .unwrap_or_default()
    }
}

/// Opens an event stream as a browser would, saying it takes gzip: the stream must come
/// uncompressed anyway.
async fn open_events(url: &str) -> EventReader {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream")
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(
        !headers.contains_key("content-encoding"),
        "an event stream must not be compressed: {headers:?}"
    );
    EventReader::from_body(response.bytes_stream().boxed())
}

/// Starts a chunked POST to `url` whose body is fed through the returned sender, as a
/// continuous MJPEG upload with `boundary`.
fn start_upload(
    url: String,
    boundary: &str,
) -> (
    mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<(u16, serde_json::Value)>,
) {
    common::start_upload(reqwest::Client::new().post(url).header(
        "content-type",
        format!("multipart/x-mixed-replace; boundary={boundary}"),
    ))
}

/// The `q` quantile (0 to 1) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// A frame event and when its reader had it whole.
struct Arrival {
    seq: u64,
    at: Instant,
    data: String,
}

/// Reads frame events from `reader` until the one with `last` seq, noting when each arrived.
fn record(mut reader: EventReader, last: u64) -> tokio::task::JoinHandle<Vec<Arrival>> {
    tokio::spawn(async move {
        let mut arrivals = Vec::new();
        loop {
            let event = reader.next_frame().await.expect("the stream goes on");
            let at = Instant::now();
            let seq: u64 = event.id.as_deref().unwrap().parse().unwrap();
            arrivals.push(Arrival {
                seq,
                at,
                data: event.data,
            });
            if seq >= last {
                return arrivals;
            }
        }
    })
}

/// Frames published in one run of [`frames_through_nginx_and_direct`], 30 a second.
const RUN_FRAMES: u64 = 60;
const RUN_INTERVAL: Duration = Duration::from_millis(33);

/// Publishes [`RUN_FRAMES`] of `jpegs` to `stream`, read by one viewer straight from framecast
/// and one through nginx. Checks that both saw the same events, byte for byte, carrying the
/// JPEGs pushed, and returns how much later each frame came through nginx, in ms, sorted.
async fn frames_through_nginx_and_direct(
    deployment: &Deployment,
    stream: &str,
    jpegs: &[Vec<u8>],
) -> Vec<f64> {
    let path = format!("/events?stream={stream}");
    let direct = open_events(&deployment.direct(&path)).await;
    let proxied = open_events(&deployment.proxied(&path)).await;
    let direct = record(direct, RUN_FRAMES);
    let proxied = record(proxied, RUN_FRAMES);

    let client = reqwest::Client::new();
    let mut ticks = tokio::time::interval(RUN_INTERVAL);
    for seq in 1..=RUN_FRAMES {
        ticks.tick().await;
        let response = client
            .post(deployment.direct(&format!("/frames?stream={stream}")))
            .header("content-type", "image/jpeg")
            .body(jpegs[(seq - 1) as usize % jpegs.len()].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let direct = tokio::time::timeout(WAIT, direct).await.unwrap().unwrap();
    let proxied = tokio::time::timeout(WAIT, proxied).await.unwrap().unwrap();

    // A reader that fell behind skips frames (by design); compare the frames both saw.
    let mut delays = Vec::new();
    for through_nginx in &proxied {
        let Some(straight) = direct.iter().find(|a| a.seq == through_nginx.seq) else {
            continue;
        };
        assert_eq!(
            through_nginx.data, straight.data,
            "frame {} differs through nginx",
            through_nginx.seq
        );
        let json: serde_json::Value = serde_json::from_str(&through_nginx.data).unwrap();
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(json["jpeg"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            jpeg,
            jpegs[(through_nginx.seq - 1) as usize % jpegs.len()],
            "frame {} is not the JPEG pushed",
            through_nginx.seq
        );
        let delay = through_nginx.at.saturating_duration_since(straight.at);
        delays.push(delay.as_secs_f64() * 1000.0);
    }
    assert!(
        delays.len() as u64 >= RUN_FRAMES * 9 / 10,
        "only {} of {RUN_FRAMES} frames reached both readers",
        delays.len()
    );
    delays.sort_by(f64::total_cmp);
    delays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_through_nginx_are_the_direct_events_byte_for_byte_a_few_ms_later() {
    // An operator who turned gzip on for everything: the stream must still not be compressed.
    let deployment = Deployment::start(
        "events",
        &[],
        "gzip on; gzip_types text/event-stream multipart/x-mixed-replace;",
        |site| site,
    )
    .await;
    let jpegs: Vec<Vec<u8>> = (0..4).map(|seed| sample_jpeg(640, 480, seed)).collect();
    let size = jpegs.iter().map(Vec::len).sum::<usize>() as f64 / jpegs.len() as f64 / 1000.0;
    // On a busy machine (two cores, shared by the test threads, nginx and framecast) one run
    // can be late for reasons that have nothing to do with nginx: the best of three counts.
    // Buffering anywhere on the way would make all three late.
    let mut runs = Vec::new();
    for run in 1..=3 {
        let delays =
            frames_through_nginx_and_direct(&deployment, &format!("cam{run}"), &jpegs).await;
        let (p50, p95, max) = (
            quantile(&delays, 0.5),
            quantile(&delays, 0.95),
            quantile(&delays, 1.0),
        );
        let figures = format!(
            "{} frames of {size:.0} KB at 30 fps; extra delay per frame p50 {p50:.2} ms, \
             p95 {p95:.2} ms, max {max:.2} ms",
            delays.len()
        );
        eprintln!("through nginx, run {run}: {figures}");
        runs.push(figures);
        if p95 < 50.0 {
            break;
        }
        assert!(
            run < 3,
            "frames through nginx arrive late (p95 over 50 ms) in every run: {runs:#?}"
        );
    }

    // Every reader is gone (dropped with its task): nginx must have closed its upstream
    // connection, or framecast would keep a viewer for nobody.
    for run in 1..=runs.len() {
        eventually("the viewers that left through nginx are gone", || async {
            deployment.stream_status(&format!("cam{run}")).await["subscribers"] == 0
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_and_snapshots_through_nginx_are_the_pushed_jpegs_exactly() {
    let deployment = Deployment::plain("mjpeg").await;
    let jpegs: Vec<Vec<u8>> = (0..4).map(|seed| sample_jpeg(640, 480, seed)).collect();
    let publish = deployment.direct("/frames?stream=cam");
    assert_eq!(post_jpeg_to(&publish, &jpegs[0]).await.0, 200);
    let mut parts = PartReader::open(&deployment.proxied("/mjpeg?stream=cam")).await;
    assert_eq!(parts.next().await, jpegs[0], "the newest frame at once");
    for jpeg in &jpegs[1..] {
        assert_eq!(post_jpeg_to(&publish, jpeg).await.0, 200);
        assert_eq!(&parts.next().await, jpeg);
    }

    // Snapshots take nginx's ordinary, buffered path.
    let client = reqwest::Client::new();
    let snapshot = deployment.proxied("/snapshot?stream=cam");
    let response = client.get(&snapshot).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"4\"");
    assert_eq!(response.headers()["x-frame-seq"], "4");
    assert_eq!(response.bytes().await.unwrap(), jpegs[3]);
    let unchanged = client
        .get(&snapshot)
        .header("if-none-match", "\"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_slow_continuous_uploads_through_nginx_arrive_frame_by_frame() {
    let deployment = Deployment::plain("uploads").await;
    let jpegs: Vec<Vec<u8>> = (0..5).map(|seed| sample_jpeg(320, 240, seed)).collect();
    let mut viewer = EventReader::open(&deployment.direct("/events?stream=up")).await;

    let (status, reply) = post_jpeg_to(&deployment.proxied("/frames?stream=up"), &jpegs[0]).await;
    assert_eq!(
        (status, &reply["seq"]),
        (200, &serde_json::json!(1)),
        "{reply}"
    );
    assert_eq!(viewer.next_frame().await.unwrap().jpeg(), jpegs[0]);

    // A chunked body that trickles in: each part in three pieces, a tenth of a second apart.
    // Each frame must reach the viewer while the upload is still open, as nginx passes the
    // body on as it comes instead of waiting for its end.
    let (upload, reply) = start_upload(deployment.proxied("/frames?stream=up"), "frame");
    upload.send(b"--frame\r\n".to_vec()).await.unwrap();
    for (index, jpeg) in jpegs[1..].iter().enumerate() {
        let part = multipart_part("frame", jpeg);
        for piece in part.chunks(part.len() / 3 + 1) {
            upload.send(piece.to_vec()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let event = viewer.next_frame().await.unwrap();
        assert_eq!(event.json()["seq"], index + 2);
        assert_eq!(&event.jpeg(), jpeg);
    }
    drop(upload);
    let (status, body) = tokio::time::timeout(WAIT, reply).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"frames": 4, "rejected": 0}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishing_through_nginx_is_seen_while_it_runs() {
    let deployment = Deployment::plain("ffmpeg").await;
    let mut viewer = EventReader::open(&deployment.direct("/events?stream=ff")).await;
    let mut ffmpeg = ffmpeg_test_source("mpjpeg", &[], &deployment.proxied("/frames?stream=ff"))
        .spawn()
        .expect("ffmpeg is installed");
    viewer.next_frame().await.unwrap();
    assert!(
        ffmpeg.try_wait().unwrap().is_none(),
        "a frame reached the viewer only after ffmpeg had finished"
    );
    let status = tokio::time::timeout(WAIT, ffmpeg.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ffmpeg failed: {status}");
    // Two seconds at 15 fps.
    let published = deployment.stream_status("ff").await["published"].clone();
    assert!(published.as_u64().unwrap() >= 25, "published {published}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_producer_without_the_token_is_cut_off_within_seconds() {
    let dir = std::env::temp_dir().join(format!("framecast-proxy-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("publish-token");
    std::fs::write(&token, "the-producers-token\n").unwrap();
    let deployment = Deployment::start(
        "token",
        &["--publish-token-file", token.to_str().unwrap()],
        "",
        |site| site,
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    // ffmpeg sends for a minute and reads no answer before it is done: only the connection
    // closing tells it, after the file's lingering_time (5 s) rather than nginx's 30 s.
    let started = Instant::now();
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "quiet", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"])
        .args(["-t", "60", "-f", "mpjpeg"])
        .arg(deployment.proxied("/frames?stream=cam"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("ffmpeg is cut off within 20 s")
        .expect("ffmpeg is installed");
    let took = started.elapsed();
    eprintln!("a refused endless upload through nginx was cut off after {took:.1?}");
    assert!(!status.success(), "ffmpeg thinks it published");
    assert!(
        took < Duration::from_secs(15),
        "cut off only after {took:?}"
    );
    assert_eq!(
        deployment.stream_status("cam").await,
        serde_json::Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_event_stream_and_a_pausing_upload_outlast_nginx_read_timeout() {
    // The file's timeouts are hours long; to see them not matter in seconds, this test
    // shortens nginx's read timeout to 2 s everywhere and framecast's keep-alive to 500 ms.
    const READ_TIMEOUT: Duration = Duration::from_secs(2);
    const QUIET: Duration = Duration::from_secs(5);
    let shorten = |site: String| {
        let site = replace_once(&site, "proxy_read_timeout 1h;", "proxy_read_timeout 2s;");
        replace_once(&site, "proxy_read_timeout 24h;", "proxy_read_timeout 2s;")
    };
    let deployment = Deployment::start(
        "quiet",
        &["--keep-alive", "500ms"],
        "proxy_read_timeout 2s;",
        shorten,
    )
    .await;
    let mut events = open_events(&deployment.proxied("/events?stream=quiet")).await;
    let mjpeg = reqwest::get(deployment.proxied("/mjpeg?stream=quiet"))
        .await
        .unwrap();
    assert_eq!(mjpeg.status(), 200);
    let opened = Instant::now();
    let mjpeg_ended = tokio::spawn(async move {
        let mut body = mjpeg.bytes_stream();
        while let Some(Ok(_)) = body.next().await {}
        opened.elapsed()
    });

    // An upload that sends a frame, then nothing for longer than the read timeout, then
    // another: nginx's read timeout starts only once the body has been sent.
    let (upload, reply) = start_upload(deployment.proxied("/frames?stream=paused"), "frame");
    upload.send(b"--frame\r\n".to_vec()).await.unwrap();
    upload
        .send(multipart_part("frame", &sample_jpeg(64, 48, 1)))
        .await
        .unwrap();

    let deadline = opened + QUIET;
    let mut comments = 0;
    while let Ok(event) = tokio::time::timeout_at(deadline, events.next()).await {
        let event = event.unwrap_or_else(|| {
            panic!(
                "the quiet event stream ended after {:.1} s: {}",
                opened.elapsed().as_secs_f64(),
                deployment.nginx.error_log()
            )
        });
        comments += usize::from(event.comment);
    }
    assert!(comments >= 4, "{comments} keep-alive comments in {QUIET:?}");
    let jpeg = sample_jpeg(64, 48, 2);
    assert_eq!(
        post_jpeg_to(&deployment.direct("/frames?stream=quiet"), &jpeg)
            .await
            .0,
        200
    );
    assert_eq!(events.next_frame().await.unwrap().jpeg(), jpeg);

    upload
        .send(multipart_part("frame", &sample_jpeg(64, 48, 3)))
        .await
        .unwrap();
    drop(upload);
    let (status, body) = tokio::time::timeout(WAIT, reply).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"frames": 2, "rejected": 0}));

    // MJPEG has no keep-alive: a quiet one lasts as long as nginx's read timeout, which is
    // why deploy/nginx.conf gives /mjpeg a day. (If framecast ever sends something on a quiet
    // MJPEG stream, this changes, and so should that comment.)
    let lasted = tokio::time::timeout(WAIT, mjpeg_ended)
        .await
        .unwrap()
        .unwrap();
    eprintln!(
        "behind a {READ_TIMEOUT:?} read timeout: an event stream quiet for {QUIET:?} stayed \
         open ({comments} keep-alives); a quiet MJPEG stream was cut after {:.1} s",
        lasted.as_secs_f64()
    );
    assert!(
        lasted >= READ_TIMEOUT - Duration::from_millis(500) && lasted < QUIET,
        "a quiet MJPEG stream lasted {lasted:?} behind a {READ_TIMEOUT:?} read timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_behind_nginx_has_its_own_quota_and_cannot_pick_its_address() {
    // Every test client is 127.0.0.1. To give nginx distinct clients, the wrapper lets it
    // take the client's address from X-Forwarded-For, as it would behind a load balancer;
    // deploy/nginx.conf then forwards that address as it forwards any.
    let deployment = Deployment::start(
        "clients",
        &["--max-subscribers-per-ip", "1"],
        "set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;",
        |site| site,
    )
    .await;
    let subscribe = |client: &'static str, forwarded: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .get(deployment.proxied("/events?stream=s"))
            .header("x-forwarded-for", client);
        if let Some(forwarded) = forwarded {
            request = request.header("forwarded", forwarded);
        }
        async move { request.send().await.unwrap() }
    };
    let first = subscribe("198.51.100.7", None).await;
    assert_eq!(first.status(), 200);
    let again = subscribe("198.51.100.7", None).await;
    assert_eq!(again.status(), 429, "the same client's second stream");
    let error: serde_json::Value = again.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("--max-subscribers-per-ip"),
        "{error}"
    );
    // A `Forwarded` header of the client's own making is dropped by nginx; framecast, which
    // would prefer it, never sees it.
    let spoofed = subscribe("198.51.100.7", Some("for=192.0.2.1")).await;
    assert_eq!(spoofed.status(), 429, "a client naming another address");
    let other = subscribe("198.51.100.8", None).await;
    assert_eq!(other.status(), 200, "another client");
}

#[tokio::test]
async fn the_public_name_passes_framecast_host_check_when_allowed() {
    let server_name = SITE
        .lines()
        .find_map(|line| line.trim().strip_prefix("server_name "))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("deploy/nginx.conf has a server_name");
    let deployment =
        Deployment::start("hosts", &["--allowed-hosts", server_name], "", |site| site).await;
    let get = |host: &str| {
        reqwest::Client::new()
            .get(deployment.proxied("/streams"))
            .header("host", host)
            .send()
    };
    assert_eq!(get(server_name).await.unwrap().status(), 200);
    // Another name reaches framecast too (this is nginx's only server here), which refuses
    // it: the name has to be in --allowed-hosts.
    assert_eq!(get("other.example").await.unwrap().status(), 403);
}

/// Idle viewers opened in the memory test: enough that a few KiB each stand out of the
/// allocator's noise (as in `wire.rs`), few enough for nginx's two descriptors each.
const IDLE_VIEWERS: usize = 400;

/// Opens an event stream through nginx on a connection of its own and waits for its first
/// bytes; returns the connection, to be held open.
async fn idle_viewer(deployment: &Deployment) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = deployment.nginx.url.strip_prefix("http://").unwrap();
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /events?stream=idle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    while !received.windows(11).any(|w| w == b"retry: 2000") {
        let mut buffer = [0; 4096];
        let n = tokio::time::timeout(WAIT, socket.read(&mut buffer))
            .await
            .expect("the stream opens in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
    }
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_viewers_through_nginx_cost_framecast_as_little_as_direct_ones() {
    // framecast serves an event stream that opens a connection straight from the socket
    // (`src/server/direct.rs`), and one on a connection that served a request before through
    // hyper, at several times the memory. Each viewer here comes after a short request (as a
    // page's own load, or a snapshot), which leaves a kept-alive connection in nginx's pool.
    let deployment = Deployment::start("idle", &["--max-subscribers-per-ip", "1000"], "", |site| {
        site
    })
    .await;
    let client = reqwest::Client::new();
    let mut open = Vec::new();
    let mut before = 0.0;
    for index in 0..20 + IDLE_VIEWERS {
        // A first few, so that the runtime and the stream exist before measuring.
        if index == 20 {
            before = deployment.framecast_rss_kib();
        }
        let healthz = client
            .get(deployment.proxied("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(healthz.status(), 200);
        open.push(idle_viewer(&deployment).await);
    }
    let per_viewer = (deployment.framecast_rss_kib() - before) / IDLE_VIEWERS as f64;
    eprintln!("per idle viewer through nginx: framecast {per_viewer:.2} KiB");
    assert!(
        per_viewer < 4.0,
        "an idle viewer through nginx costs framecast {per_viewer:.2} KiB (about 1.5 straight \
         from the socket): do event streams still get connections of their own?"
    );
}

#[tokio::test]
async fn a_cluster_behind_nginx_spreads_viewers_and_numbers_uploads_once() {
    let nats = Nats::start("nginx", "1MB").await;
    let a = Node::start(&nats, "a", &["--trust-proxy"]).await;
    let b = Node::start(&nats, "b", &["--trust-proxy"]).await;
    // Both nodes in both upstreams, as deploy/nginx.conf says for a cluster.
    let host = |node: &Node| node.url.strip_prefix("http://").unwrap().to_owned();
    let upstream = format!("{};\n    server {}", host(&a), host(&b));
    let nginx = Nginx::start("cluster", &upstream, "", |site| site).await;

    let mut viewers = Vec::new();
    for _ in 0..12 {
        viewers.push(open_events(&nginx.url("/events?stream=cam")).await);
    }
    settle().await;
    // least_conn shares the streams out between the nodes.
    let on_each = subscribers_on_each_node(&a).await;
    assert_eq!(on_each.iter().sum::<u64>(), 12, "{on_each:?}");
    assert!(on_each.iter().all(|&count| count >= 4), "{on_each:?}");

    // Uploads through nginx, wherever they land, get one numbering; every viewer, on either
    // node, sees the same frames under the same numbers.
    upload_in_turn(&nginx.url("/frames?stream=cam"), &frames(6), &mut viewers).await;
}
