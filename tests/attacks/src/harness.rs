//! The harness: a real framecast process per attack, its memory and CPU read from `/proc`, a
//! healthy viewer watching it throughout, and the row each attack ends in.
//!
//! Every attack gets a fresh server so that its memory figures are its own: the peak is the
//! kernel's own high-water mark (`VmHWM`), reset when the attack starts, so a spike between
//! two samples is not missed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The address attackers use unless an attack needs many.
pub const ATTACKER_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The address the healthy viewer connects from. Attackers use 127.0.0.1 or addresses of
/// their own, so the per-client quotas they run into are never the viewer's.
pub const VIEWER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The address for the harness's own checks (`/healthz`, `/streams`) and for well-behaved
/// clients an attack compares with.
pub const BYSTANDER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// Frame rate of the test pattern that feeds the healthy viewer's stream.
pub const VIEWER_FPS: &str = "10";
/// Share of the frames published during an attack the healthy viewer must receive.
pub const VIEWER_MIN_KEPT: f64 = 0.99;
/// Longest wait for a server to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before the "after" memory figure, so that what the attack freed has been freed.
const SETTLE: Duration = Duration::from_millis(300);
/// Shortest attack window: at the viewer's 10 fps, at least ten frames are counted.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Clock ticks per second in `/proc/PID/stat` (Linux's `USER_HZ`, 100 on every platform
/// this runs on).
const USER_HZ: u64 = 100;

/// The framecast binary under attack: `FRAMECAST_BIN`, else the workspace's release build.
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("FRAMECAST_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/framecast"),
    };
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// An address of its own for the `n`th of many attacking clients (127.1.0.1 onwards), so that
/// an attack from a crowd is not stopped early by the per-client quotas.
pub fn crowd_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// A running framecast process, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id, for `/proc`.
    pub pid: u32,
    /// Everything it has written to stdout and stderr so far.
    output: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts the binary on `127.0.0.1:0` with `args`.
    pub async fn start(args: &[String]) -> anyhow::Result<Server> {
        Self::spawn(Command::new(binary()), args, &[]).await
    }

    /// Starts the binary with `args` and environment variables `env`.
    pub async fn start_with_env(args: &[String], env: &[(&str, &str)]) -> anyhow::Result<Server> {
        Self::spawn(Command::new(binary()), args, env).await
    }

    /// Starts the binary under `ulimit -n fd_limit` (soft and hard), through bash.
    pub async fn start_with_fd_limit(args: &[String], fd_limit: u32) -> anyhow::Result<Server> {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\""))
            .arg(binary());
        Self::spawn(command, args, &[]).await
    }

    async fn spawn(
        mut command: Command,
        args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        command
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary().display()))?;
        let pid = child.id().context("the server exited at once")?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        tokio::spawn(collect(child.stderr.take().expect("piped"), output.clone()));
        let mut first = String::new();
        tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut first))
            .await
            .context("the server did not say where it listens")??;
        output.lock().unwrap().extend_from_slice(first.as_bytes());
        tokio::spawn(collect(stdout, output.clone()));
        let Some(addr) = first.trim().strip_prefix("framecast listening on http://") else {
            bail!("the server's first line was {first:?}");
        };
        let addr = addr.parse()?;
        Ok(Server {
            child,
            addr,
            pid,
            output,
        })
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the server has printed so far, stdout and stderr together.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Sends SIGTERM and waits (up to 5 s) for the process to exit, so its last words are in
    /// [`Server::output`].
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .context("the server did not exit on SIGTERM")??;
        // The output collectors finish on EOF, just after the exit.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    /// Resident memory now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        proc_status_kb(self.pid, "VmRSS:") * 1024
    }

    /// Peak resident memory since start or the last [`Server::reset_peak`] (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        proc_status_kb(self.pid, "VmHWM:") * 1024
    }

    /// Starts the peak-memory count afresh from the current resident memory.
    pub fn reset_peak(&self) {
        // "5" resets the peak resident set size (Linux 4.0 and later); without it the peak
        // is the one since start, which is still an upper bound.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// CPU time the server has used, user and system, all threads.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 1000 / USER_HZ)
    }

    /// Open file descriptors.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |dir| dir.count())
    }
}

/// Appends everything `reader` yields to `output` until EOF.
async fn collect(mut reader: impl tokio::io::AsyncRead + Unpin, output: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        output.lock().unwrap().extend_from_slice(&buf[..n]);
    }
}

/// The number of kB on the `/proc/PID/status` line starting with `key`, or 0.
fn proc_status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A reqwest client whose connections come from `ip`.
pub fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain client builds")
}

/// An SSE client reading stream `default` throughout an attack, noting every frame's `seq`.
struct HealthyViewer {
    seqs: Arc<Mutex<Vec<u64>>>,
    /// Why its stream ended, if it did.
    ended: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthyViewer {
    /// Connects, and returns once the first frame has arrived.
    async fn open(server: &Server, token: Option<&str>) -> anyhow::Result<HealthyViewer> {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::V4(VIEWER_IP))
            .build()?;
        let mut request = client.get(server.url("/events?stream=default"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        if response.status() != 200 {
            bail!("the healthy viewer got {}", response.status());
        }
        let seqs = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(None));
        let mut body = response.bytes_stream();
        let (task_seqs, task_ended) = (seqs.clone(), ended.clone());
        let task = tokio::spawn(async move {
            let mut pending = Vec::new();
            let why = loop {
                let chunk = match body.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(err)) => break format!("error: {err}"),
                    None => break "closed by the server".to_string(),
                };
                pending.extend_from_slice(&chunk);
                while let Some(end) = find(&pending, b"\n\n") {
                    let event: Vec<u8> = pending.drain(..end + 2).collect();
                    if let Some(seq) = frame_seq(&event) {
                        task_seqs.lock().unwrap().push(seq);
                    }
                }
            };
            *task_ended.lock().unwrap() = Some(why);
        });
        let viewer = HealthyViewer { seqs, ended, task };
        let deadline = Instant::now() + Duration::from_secs(5);
        while viewer.seqs.lock().unwrap().is_empty() {
            if Instant::now() > deadline {
                bail!("the healthy viewer got no frame in 5 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(viewer)
    }

    fn highest(&self) -> u64 {
        self.seqs.lock().unwrap().iter().copied().max().unwrap_or(0)
    }
}

impl Drop for HealthyViewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `seq` of a frame event, if `event` is one.
fn frame_seq(event: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(event).ok()?;
    if !text.lines().any(|line| line == "event: frame") {
        return None;
    }
    let data = text.lines().find_map(|line| line.strip_prefix("data: "))?;
    let json: Value = serde_json::from_str(data).ok()?;
    json["seq"].as_u64()
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Every stream `GET /streams` lists, asked as the bystander (with `token` if reading needs
/// one).
pub async fn streams(server: &Server, token: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let mut request = client_from(BYSTANDER_IP).get(server.url("/streams"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let json: Value = request.send().await?.error_for_status()?.json().await?;
    Ok(json["streams"].as_array().cloned().unwrap_or_default())
}

/// Frames published so far on stream `name`, from `GET /streams`, retried for up to 5 s (a
/// server under attack may refuse for a while).
async fn published(server: &Server, name: &str, token: Option<&str>) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(streams) = streams(server, token).await
            && let Some(stream) = streams.iter().find(|stream| stream["name"] == name)
        {
            return Ok(stream["published"].as_u64().unwrap_or(0));
        }
        if Instant::now() > deadline {
            bail!("GET /streams did not report stream {name} within 5 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server's memory around one attack, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident just before the attack.
    pub before: u64,
    /// Highest resident during the attack.
    pub peak: u64,
    /// Resident once the attack is over and its clients gone.
    pub after: u64,
}

/// What the healthy viewer received of what was published during the attack.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Frames published during the window.
    pub published: u64,
    /// Of those, how many the viewer received.
    pub received: u64,
    /// Why its stream ended early, if it did.
    pub ended: Option<String>,
}

impl Kept {
    /// Whether the viewer received enough.
    pub fn enough(&self) -> bool {
        self.ended.is_none()
            && (self.published == 0
                || self.received as f64 >= VIEWER_MIN_KEPT * self.published as f64)
    }
}

/// The figures taken around one attack: started before it, finished after.
pub struct Watch<'a> {
    server: &'a Server,
    token: Option<String>,
    viewer: HealthyViewer,
    first_seq: u64,
    rss_before: u64,
    started: Instant,
}

impl<'a> Watch<'a> {
    /// Opens the healthy viewer on `server` (with `token`, if reading needs one), notes where
    /// the stream stands, and resets the peak-memory count.
    pub async fn begin(server: &'a Server, token: Option<&str>) -> anyhow::Result<Watch<'a>> {
        let viewer = HealthyViewer::open(server, token).await?;
        let first_seq = published(server, "default", token).await?;
        server.reset_peak();
        Ok(Watch {
            server,
            token: token.map(str::to_owned),
            viewer,
            first_seq,
            rss_before: server.rss(),
            started: Instant::now(),
        })
    }

    /// Ends the window: what was published in it and what the viewer got, and memory.
    pub async fn finish(self) -> anyhow::Result<(Memory, Kept)> {
        let elapsed = self.started.elapsed();
        if elapsed < MIN_WINDOW {
            tokio::time::sleep(MIN_WINDOW - elapsed).await;
        }
        tokio::time::sleep(SETTLE).await;
        let peak = self.server.peak_rss();
        let after = self.server.rss();
        let last_seq = published(self.server, "default", self.token.as_deref()).await?;
        // The last frames may still be on their way.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.viewer.highest() < last_seq && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut seqs = self.viewer.seqs.lock().unwrap().clone();
        seqs.retain(|&seq| seq > self.first_seq && seq <= last_seq);
        seqs.sort_unstable();
        seqs.dedup();
        let kept = Kept {
            published: last_seq - self.first_seq,
            received: seqs.len() as u64,
            ended: self.viewer.ended.lock().unwrap().clone(),
        };
        let memory = Memory {
            before: self.rss_before,
            peak: peak.max(self.rss_before).max(after),
            after,
        };
        Ok((memory, kept))
    }
}

/// What an attack observed, and whether that is what was expected.
pub struct Outcome {
    /// What happened, in a few words and figures.
    pub observed: String,
    /// Whether it matches the expectation.
    pub passed: bool,
}

/// One attack's line in the table.
pub struct Row {
    /// Which attack.
    pub attack: String,
    /// Flags that differ from the defaults (besides `--bind` and the viewer's test pattern).
    pub flags: String,
    /// What framecast should do.
    pub expected: String,
    /// What it did.
    pub outcome: Outcome,
    /// Memory, where a server ran.
    pub memory: Option<Memory>,
    /// The healthy viewer's share, where one ran.
    pub kept: Option<Kept>,
    /// Wall time of the attack.
    pub took: Duration,
}

impl Row {
    /// Whether this row passes: the outcome was the expected one and the viewer kept enough.
    pub fn passed(&self) -> bool {
        self.outcome.passed && self.kept.as_ref().is_none_or(Kept::enough)
    }
}

/// The Markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| attack | flags (non-default) | expected | observed | RSS MB before / peak / after | healthy viewer | result |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let memory = row.memory.map_or("–".to_string(), |m| {
            format!("{} / {} / {}", mb(m.before), mb(m.peak), mb(m.after))
        });
        let kept = row.kept.as_ref().map_or("–".to_string(), |kept| {
            let share = if kept.published == 0 {
                100.0
            } else {
                100.0 * kept.received as f64 / kept.published as f64
            };
            let mut text = format!("{}/{} ({share:.1} %)", kept.received, kept.published);
            if let Some(why) = &kept.ended {
                text.push_str(&format!(", stream ended: {why}"));
            }
            text
        });
        let result = if row.passed() { "pass" } else { "**FAIL**" };
        out.push_str(&format!(
            "| {} ({:.1} s) | {} | {} | {} | {memory} | {kept} | {result} |\n",
            cell(&row.attack),
            row.took.as_secs_f64(),
            cell(if row.flags.is_empty() {
                "–"
            } else {
                &row.flags
            }),
            cell(&row.expected),
            cell(&row.outcome.observed),
            kept = cell(&kept),
        ));
    }
    out
}

/// `bytes` in MB (MiB), one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// `text` made safe for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Flags as one string for the table, e.g. `--send-timeout 3s, --upload-timeout 3s`.
pub fn shown(flags: &[String]) -> String {
    flags.join(" ").replace(" --", ", --")
}
