//! The attacks, one function each, grouped by what they go after:
//!
//! - `publish`: the upload side (cross-site publishing, slow and oversized uploads).
//! - `viewers`: the event-stream side (stalled and noisy viewers, floods, slowloris).
//! - `protocol`: the HTTP framing (pipelining, smuggling) and the `Host` check.
//! - `access`: tokens and secrets.
//!
//! Each function starts its own server, runs the attack inside a [`Watch`], and returns a
//! [`Report`]: the flags it used, what it expected, and what it observed.

mod access;
mod protocol;
mod publish;
mod viewers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::Mode;
use crate::harness::{self, BYSTANDER_IP, Kept, Memory, Outcome, Row, Server, Watch};

/// One attack in the suite.
#[derive(Debug)]
pub struct Attack {
    /// Its number in the brief, with a letter for variants (`6a`).
    pub id: &'static str,
    /// What it does, in a few words.
    pub name: &'static str,
}

/// Every attack, in the order they run.
pub const ALL: [Attack; 18] = [
    attack("1", "Cross-site publish"),
    attack("2", "Streams used up by viewers"),
    attack("3", "Stalled viewers"),
    attack("4", "fd exhaustion"),
    attack("5", "One client takes every viewer slot"),
    attack("6a", "Slow upload, 1 byte/s"),
    attack("6b", "Uploads parked near 8 MiB"),
    attack("7", "Noisy viewer writes 1 MB into its SSE connection"),
    attack("8", "Slowloris on request heads"),
    attack("9", "Slowloris on a chunked body"),
    attack("10a", "Two GET /events pipelined"),
    attack(
        "10b",
        "GET /events with Content-Length and Transfer-Encoding",
    ),
    attack("10c", "GET /events whose body is another request"),
    attack("11", "Token matrix"),
    attack("12", "DNS rebinding"),
    attack("13", "Secrets in --source"),
    attack("14a", "Oversized frame, Content-Length 9 MiB"),
    attack("14b", "Oversized frame, chunked"),
];

const fn attack(id: &'static str, name: &'static str) -> Attack {
    Attack { id, name }
}

/// What one attack function hands back.
pub struct Report {
    /// How its server was started, beyond what every server gets: flags that differ from the
    /// defaults, as the table shows them.
    pub flags: String,
    /// What framecast should do.
    pub expected: String,
    /// What it did.
    pub outcome: Outcome,
    /// Memory and the healthy viewer's share, when a server ran throughout.
    pub watched: Option<(Memory, Kept)>,
}

/// Runs `attack` and makes its row; an attack that could not be carried out is a failed row.
pub async fn run(attack: &Attack, mode: Mode) -> Row {
    let started = Instant::now();
    let result = match attack.id {
        "1" => publish::cross_site_publish(mode).await,
        "2" => viewers::made_up_streams(mode).await,
        "3" => viewers::stalled_viewers(mode).await,
        "4" => viewers::fd_exhaustion(mode).await,
        "5" => viewers::one_client_every_slot(mode).await,
        "6a" => publish::slow_upload(mode).await,
        "6b" => publish::parked_uploads(mode).await,
        "7" => viewers::noisy_viewer(mode).await,
        "8" => viewers::slowloris_heads(mode).await,
        "9" => publish::trickled_chunks(mode).await,
        "10a" => protocol::pipelined(mode).await,
        "10b" => protocol::length_and_chunked(mode).await,
        "10c" => protocol::request_in_body(mode).await,
        "11" => access::token_matrix(mode).await,
        "12" => protocol::dns_rebinding(mode).await,
        "13" => access::secrets(mode).await,
        "14a" => publish::oversized_with_length(mode).await,
        "14b" => publish::oversized_chunked(mode).await,
        other => Err(anyhow::anyhow!("no attack {other}")),
    };
    let attack_name = format!("{}. {}", attack.id, attack.name);
    match result {
        Ok(report) => Row {
            attack: attack_name,
            flags: report.flags,
            expected: report.expected,
            outcome: report.outcome,
            memory: report.watched.as_ref().map(|(memory, _)| *memory),
            kept: report.watched.map(|(_, kept)| kept),
            took: started.elapsed(),
        },
        Err(err) => Row {
            attack: attack_name,
            flags: String::new(),
            expected: "the attack runs".into(),
            outcome: Outcome {
                observed: format!("could not run the attack: {err:#}"),
                passed: false,
            },
            memory: None,
            kept: None,
            took: started.elapsed(),
        },
    }
}

/// 1 MiB.
const MIB: u64 = 1024 * 1024;

/// Counts of answers, shown as `64 × 200, 36 × 503`.
#[derive(Default)]
pub struct Tally(BTreeMap<String, usize>);

impl Tally {
    /// Counts one more `what`.
    pub fn add(&mut self, what: impl ToString) {
        *self.0.entry(what.to_string()).or_default() += 1;
    }

    /// How many `what` were counted.
    pub fn count(&self, what: &str) -> usize {
        self.0.get(what).copied().unwrap_or(0)
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// `flags` as owned strings.
fn owned(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|flag| flag.to_string()).collect()
}

/// The flags every server gets (the healthy viewer's test pattern), then `flags`.
fn server_args(flags: &[String]) -> Vec<String> {
    let mut args = owned(&["--test-pattern-fps", harness::VIEWER_FPS]);
    args.extend_from_slice(flags);
    args
}

/// Starts a server with `flags` (and the test pattern for the healthy viewer).
async fn start(flags: &[String]) -> anyhow::Result<Server> {
    Server::start(&server_args(flags)).await
}

/// Runs `attack` against `server` between the start and end of a [`Watch`].
async fn watched(
    server: &Server,
    token: Option<&str>,
    attack: impl AsyncFnOnce(&Server) -> anyhow::Result<Outcome>,
) -> anyhow::Result<(Outcome, Memory, Kept)> {
    let watch = Watch::begin(server, token).await?;
    let outcome = attack(server).await?;
    let (memory, kept) = watch.finish().await?;
    Ok((outcome, memory, kept))
}

/// Starts a server with `flags`, runs `attack` on it under watch, and reports it.
async fn on_fresh_server(
    flags: Vec<String>,
    expected: String,
    attack: impl AsyncFnOnce(&Server) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Report> {
    let server = start(&flags).await?;
    let (outcome, memory, kept) = watched(&server, None, attack).await?;
    Ok(Report {
        flags: harness::shown(&flags),
        expected,
        outcome,
        watched: Some((memory, kept)),
    })
}

/// The subscriber count `GET /streams` gives stream `name`, or `None` if it is not listed.
async fn subscribers(server: &Server, name: &str) -> anyhow::Result<Option<u64>> {
    Ok(harness::streams(server, None)
        .await?
        .iter()
        .find(|stream| stream["name"] == name)
        .map(|stream| stream["subscribers"].as_u64().unwrap_or(0)))
}

/// `GET /healthz` as the bystander: its status (0 if none came within 1 s) and how long it took.
async fn healthz(server: &Server) -> (u16, Duration) {
    let started = Instant::now();
    let status = harness::client_from(BYSTANDER_IP)
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16());
    (status, started.elapsed())
}

/// A camera-like JPEG: smooth gradients with noise, as `tests/it/common.rs` makes them.
fn sample_jpeg(width: u16, height: u16, seed: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for y in 0..height as u32 {
        for x in 0..width as u32 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            rgb.push((x + seed * 7) as u8 ^ (state & 0x1f) as u8);
            rgb.push((y + seed * 3) as u8 ^ (state >> 8 & 0x1f) as u8);
            rgb.push((x ^ y) as u8 ^ (state >> 16 & 0x1f) as u8);
        }
    }
    encode(&rgb, width, height, 85)
}

/// A JPEG of about 1 MiB: pure noise at high quality barely compresses, so a modest picture
/// makes a big frame.
fn big_jpeg() -> Vec<u8> {
    let (width, height) = (BIG_WIDTH, BIG_HEIGHT);
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut state: u32 = 0x9E37_79B9;
    for _ in 0..width as usize * height as usize * 3 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        rgb.push(state as u8);
    }
    encode(&rgb, width, height, 90)
}

/// Size of [`big_jpeg`]'s picture, chosen to make about 1 MiB.
const BIG_WIDTH: u16 = 880;
const BIG_HEIGHT: u16 = 660;

fn encode(rgb: &[u8], width: u16, height: u16, quality: u8) -> Vec<u8> {
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, quality)
        .encode(rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("an RGB buffer of the right size encodes");
    jpeg
}

/// `bytes` in MiB with one decimal, for observations.
fn mib(bytes: u64) -> String {
    harness::mb(bytes)
}

/// "yes" or "no".
fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// "min–max" of `values`, one decimal, or "–" if there are none.
fn range(values: impl Iterator<Item = f64>) -> String {
    let values: Vec<f64> = values.collect();
    if values.is_empty() {
        return "–".into();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if (max - min).abs() < 0.05 {
        format!("{min:.1}")
    } else {
        format!("{min:.1}–{max:.1}")
    }
}
