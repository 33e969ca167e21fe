//! `loadgen`: publishes JPEG frames to a fan-out server at a fixed rate while holding many SSE
//! (or MJPEG) subscribers in this one process, and reports what the server sustained.
//!
//! # Layout
//! - [`frames`] loads the JPEGs; [`http`], [`sse`] and [`multipart`] are the wire formats, and
//!   [`mark`] the number an MJPEG run writes into each JPEG: pure code.
//! - [`board`] is the shared record of a run; [`publisher`] and [`subscriber`] write to it.
//! - [`bench`] runs the two modes (`run` and `idle`) and prints the reports; [`procfs`] reads
//!   processes' CPU and memory, [`nats`] a NATS server's bytes per connection (`/connz`).
//!
//! Everything runs on one thread (the benchmark pins the generator to one core), so nothing is
//! locked; it reports its own CPU use so a saturated generator is never mistaken for a server
//! limit.

#![recursion_limit = "256"]

mod bench;
mod board;
mod frames;
mod http;
mod mark;
mod multipart;
mod nats;
mod procfs;
mod publisher;
mod sse;
mod subscriber;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::board::{Output, Server};

/// Load generator for framecast's fan-out benchmark.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Publish at a fixed rate to N subscribers and measure delivery, latency and server cost.
    Run(RunArgs),
    /// Open N idle subscribers and measure the server memory they cost.
    Idle(IdleArgs),
}

/// Options both modes share.
#[derive(Debug, Args)]
struct Target {
    /// Which server is listening: decides the URLs and request shapes.
    #[arg(long, value_enum)]
    server: Server,
    /// Base URL of the server, `http://IP:PORT`.
    #[arg(long)]
    url: String,
    /// Server process(es) to read CPU time and memory of (repeatable: nginx master and worker).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Stream (Nchan channel) to use; default: a fresh name per run. With `--streams K` above
    /// 1, the streams are this name followed by `-1` … `-K`.
    #[arg(long)]
    stream: Option<String>,
    /// Free text copied into the JSON line (e.g. `480p`).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// JPEG files, or directories of them, published in turn.
    #[arg(long, num_args = 1.., required = true)]
    frames: Vec<PathBuf>,
    /// Frames offered per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Subscribers that read everything (viewers: each watches every stream, see --streams).
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// What the subscribers read. `mjpeg` (framecast only: `GET /mjpeg`, one stream per
    /// connection, no `width`) writes the frame's number into each JPEG published, as a comment
    /// segment after start-of-image, and reads it back from the first bytes of each part; the
    /// rest of the part is counted by its `Content-Length`, not scanned.
    #[arg(long, value_enum, default_value_t = Output::Sse)]
    output: Output,
    /// Streams to publish to, each at --fps with the same frames (one publishing connection
    /// each, ticks spread over the period). Every subscriber watches all of them: on one
    /// connection with --multiplex, else on one connection per stream.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    streams: u16,
    /// Each subscriber carries every stream on ONE connection
    /// (`/events?stream=a&stream=b…`, framecast only).
    #[arg(long)]
    multiplex: bool,
    /// Extra query parameter for every subscriber's URL, `KEY=VALUE` (repeatable; framecast
    /// only), e.g. `width=320`. With `width`, events carry a scaled JPEG: sampled events are
    /// checked to decode to the size they announce (narrower, same aspect ratio), not byte for
    /// byte; `seq`, latency and drops are counted as usual.
    #[arg(long = "query", value_parser = board::query_param)]
    query: Vec<String>,
    /// Free text copied into the JSON line as `case` (benches/run.sh names its extra cases so).
    #[arg(long = "case", default_value = "")]
    case: String,
    /// Base URL the subscribers connect to, if not `--url`: frames are
    /// published to `--url` and watched here, e.g. on another node of a framecast cluster.
    /// `--server-pid` should then be this server's.
    #[arg(long)]
    subscribe_url: Option<String>,
    /// Another process whose CPU time over the window is reported on its own, `NAME=PID`
    /// (repeatable): say the publishing node and nats-server of a cluster run.
    #[arg(long = "watch", value_parser = parse_watch)]
    watch: Vec<Watch>,
    /// A NATS server's monitoring base URL (`http://IP:PORT`): its `/connz` is read as the
    /// window opens and as it closes, giving the bytes it received from and sent to each
    /// client connection in the window, also as copies of the JPEG bytes published in it.
    #[arg(long)]
    nats_monitor: Option<String>,
    /// Extra subscribers that never read (stalled), to show the publisher does not notice them.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// Seconds of publishing before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Check one event in this many, per subscriber, byte for byte.
    #[arg(long, default_value_t = 100)]
    sample_every: u64,
    /// Scan every byte of every event for line ends. By default, once an unsampled frame
    /// event's head gives its `size`, the rest of its base64 is counted, not scanned (if the
    /// size were wrong the next event would not parse, which is counted). SSE only: MJPEG parts
    /// are always counted by their `Content-Length`.
    #[arg(long)]
    scan_all: bool,
    /// Pass needs at least this fraction of offered frames accepted.
    #[arg(long, default_value_t = 0.99)]
    min_accept: f64,
    /// Pass needs the mean per-subscriber drop ratio below this.
    #[arg(long, default_value_t = 0.01)]
    max_drop: f64,
    /// Pass needs p99 publish→receive latency below this many milliseconds.
    #[arg(long, default_value_t = 100.0)]
    max_p99_ms: f64,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// Idle subscribers to open.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Seconds to wait after connecting (and after closing) before reading memory.
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
    /// Also GET this path (framecast: `/metrics`) `--scrapes` times, one after another, before
    /// the subscribers connect and while they are held: its latency and the server CPU each
    /// request costs, with no subscribers and with all of them.
    #[arg(long)]
    scrape: Option<String>,
    /// How many times to GET `--scrape` at each point.
    #[arg(long, default_value_t = 200)]
    scrapes: usize,
}

/// A process watched with `--watch NAME=PID`.
#[derive(Debug, Clone)]
struct Watch {
    name: String,
    pid: u32,
}

fn parse_watch(text: &str) -> Result<Watch, String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {text:?}"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    if name.is_empty() {
        return Err(format!("no name before = in {text:?}"));
    }
    Ok(Watch {
        name: name.to_string(),
        pid,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        match cli.mode {
            Mode::Run(args) => bench::run(args).await,
            Mode::Idle(args) => bench::idle(args).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
