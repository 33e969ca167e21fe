//! The two modes: `run` (publish and fan out, then report) and `idle` (memory per idle
//! subscriber). Each prints one JSON line on stdout and a readable summary on stderr.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::board::Board;
use crate::procfs::{self, Processes};
use crate::publisher::{self, Schedule};
use crate::{IdleArgs, RunArgs, Target, frames, http, subscriber};

/// Connections being set up at once: stays under the servers' listen backlogs.
const CONNECT_AT_ONCE: usize = 128;
/// How long to wait for all subscribers to connect, on top of a millisecond per subscriber.
const CONNECT_GRACE: Duration = Duration::from_secs(10);
/// After the last publish, how long subscribers get to receive it.
const DRAIN: Duration = Duration::from_secs(2);
/// How often server memory (and the kernel's TCP memory) is sampled during a run.
const RSS_EVERY: Duration = Duration::from_millis(250);
/// A generator busier than this share of its core may itself be the limit.
const SATURATED_CPU: f64 = 0.9;

/// What the server and this process had used when the window opened and closed.
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    server_cpu: f64,
    own_cpu: f64,
}

/// `loadgen run`: returns false when an integrity check failed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let fd_limit = procfs::raise_fd_limit();
    let needed = (args.subscribers + args.stalled + 16) as u64;
    if fd_limit < needed {
        bail!("{needed} sockets need more than the open-file limit of {fd_limit}");
    }
    let target = &args.target;
    let addr = http::parse_base_url(&target.url)?;
    let frames = frames::load(&args.frames)?;
    let frame_bytes = frames.iter().map(|f| f.jpeg.len()).sum::<usize>() / frames.len();
    let stream = target.stream.clone().unwrap_or_else(fresh_name);
    let mut board = Board::new(
        target.server,
        stream.clone(),
        frames,
        args.subscribers,
        args.sample_every,
    );
    board.scan_all = args.scan_all;
    let board = Rc::new(board);

    let request: Rc<[u8]> = target.server.subscribe_request(&stream).into();
    let connect_started = Instant::now();
    let handles = open_subscribers(&board, args.subscribers, addr, &request);
    let mut stalled = Vec::with_capacity(args.stalled);
    for _ in 0..args.stalled {
        stalled.push(subscriber::stall(addr, request.clone()).await?);
    }
    wait_for_connections(&board, args.subscribers).await;
    let connect_time = connect_started.elapsed();

    let server = Processes::new(target.server_pids.clone());
    let me = Processes::new(vec![0]);
    let rss_peak = Rc::new(Cell::new(server.rss_kib()));
    let tcp_peak = Rc::new(Cell::new(procfs::tcp_mem_pages()));
    let sampler = tokio::task::spawn_local(sample_memory(
        server.clone(),
        rss_peak.clone(),
        tcp_peak.clone(),
    ));

    let (mut opened, mut closed) = (Marks::default(), Marks::default());
    let schedule = Schedule {
        fps: args.fps,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let published = publisher::run(&board, addr, schedule, |opening| {
        let marks = Marks {
            server_cpu: server.cpu_seconds(),
            own_cpu: me.cpu_seconds(),
        };
        board.counting_bytes.set(opening);
        if opening {
            opened = marks;
        } else {
            closed = marks;
        }
    })
    .await?;
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until && !all_caught_up(&board, published.last_seq) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sampler.abort();
    drop(stalled);
    for handle in &handles {
        handle.abort();
    }

    // Tally.
    let window = published.window.as_secs_f64();
    let clients = board.clients.borrow();
    let connected = clients.iter().filter(|c| c.ready).count();
    let expected = published.accepted.max(1) as f64;
    let mut drops: Vec<f64> = clients
        .iter()
        .map(|c| {
            if c.ready {
                (1.0 - c.events as f64 / expected).max(0.0)
            } else {
                1.0
            }
        })
        .collect();
    drops.sort_by(f64::total_cmp);
    let events: u64 = clients.iter().map(|c| c.events).sum();
    let disorder: u64 = clients.iter().map(|c| c.disorder).sum();
    let unparsed: u64 = clients.iter().map(|c| c.unparsed).sum();
    let first_error = clients.iter().find_map(|c| c.error.clone());
    let mut latencies = board.latencies_us.take();
    latencies.sort_unstable();
    let mut round_trips = published.round_trips_us.clone();
    round_trips.sort_unstable();

    let accept_ratio = published.accepted as f64 / published.offered.max(1) as f64;
    let drop_mean = mean(&drops);
    let (p50, p99, max) = (
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&latencies, 1.0),
    );
    let bytes = board.bytes.get();
    let server_cpu = closed.server_cpu - opened.server_cpu;
    let own_cpu = closed.own_cpu - opened.own_cpu;
    let event_bytes = if events > 0 {
        bytes as f64 / events as f64
    } else {
        0.0
    };
    let checked = board.checked.get();
    let mismatched = board.mismatched.get();
    let subscribers = args.subscribers;

    let mut integrity = Vec::new();
    if mismatched > 0 {
        integrity.push(format!(
            "{mismatched} sampled events differ from what was sent"
        ));
    }
    if subscribers > 0 && events == 0 {
        integrity.push("no events delivered".to_string());
    }
    if subscribers > 0 && events >= 2 * args.sample_every && checked == 0 {
        integrity.push("no event was sampled for checking".to_string());
    }
    if disorder > 0 {
        integrity.push(format!("{disorder} events arrived out of order or twice"));
    }
    if unparsed > 0 {
        integrity.push(format!("{unparsed} frame events had no readable seq"));
    }
    let passed = integrity.is_empty()
        && connected == subscribers
        && accept_ratio >= args.min_accept
        && drop_mean < args.max_drop
        && (subscribers == 0 || p99 < args.max_p99_ms);
    let own_share = own_cpu / window;
    let (tcp_pressure, _) = procfs::tcp_mem_limits();

    let line = json!({
        "mode": "run",
        "server": target.server.name(),
        "label": target.label,
        "stream": stream,
        "fps": args.fps,
        "subscribers": subscribers,
        "stalled": args.stalled,
        "scan_all": args.scan_all,
        "connected": connected,
        "connect_s": round(connect_time.as_secs_f64(), 3),
        "window_s": round(window, 3),
        "frame_bytes": frame_bytes,
        "event_bytes": round(event_bytes, 0),
        "offered": published.offered,
        "accepted": published.accepted,
        "refused": published.refused,
        "first_refusal": published.first_refusal,
        "accept_ratio": round(accept_ratio, 4),
        "ingest_fps": round(published.accepted as f64 / window, 2),
        "publish_rtt_ms": {
            "p50": percentile_ms(&round_trips, 0.5),
            "p99": percentile_ms(&round_trips, 0.99),
            "max": percentile_ms(&round_trips, 1.0),
        },
        "events_per_s": round(events as f64 / window, 1),
        "bytes_per_s": round(bytes as f64 / window, 0),
        "payload_bytes_per_s": round(board.payload_bytes.get() as f64 / window, 0),
        "drop_ratio": {
            "mean": round(drop_mean, 5),
            "p99": round(percentile(&drops, 0.99), 5),
            "max": round(percentile(&drops, 1.0), 5),
        },
        "latency_ms": { "p50": p50, "p99": p99, "max": max },
        "latency_samples": latencies.len(),
        "unmatched": board.unmatched.get(),
        "checked": checked,
        "mismatched": mismatched,
        "first_mismatch": board.first_mismatch.borrow().clone(),
        "first_client_error": first_error,
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_share": round(server_cpu / window, 4),
        "server_rss_peak_kib": rss_peak.get(),
        "server_hwm_kib": server.hwm_kib(),
        "tcp_mem_peak_pages": tcp_peak.get(),
        "tcp_mem_pressure_pages": tcp_pressure,
        "loadgen_cpu_s": round(own_cpu, 3),
        "loadgen_cpu_share": round(own_share, 4),
        "loadgen_saturated": own_share > SATURATED_CPU,
        "integrity": integrity,
        "pass": passed,
    });
    println!("{line}");

    eprintln!(
        "{} {}: {} subscribers ({} connected, {} stalled), {} fps for {:.1} s",
        target.server.name(),
        target.label,
        subscribers,
        connected,
        args.stalled,
        args.fps,
        window
    );
    eprintln!(
        "  ingest    {}/{} offered frames accepted ({:.1} %); publish round trip p50 {:.2} ms, p99 {:.2} ms",
        published.accepted,
        published.offered,
        accept_ratio * 100.0,
        percentile_ms(&round_trips, 0.5),
        percentile_ms(&round_trips, 0.99),
    );
    eprintln!(
        "  delivered {:.0} events/s, {:.1} MB/s of event data, {:.1} MB/s on the wire (event ≈ {:.1} KB, frame ≈ {:.1} KB)",
        events as f64 / window,
        board.payload_bytes.get() as f64 / window / 1e6,
        bytes as f64 / window / 1e6,
        event_bytes / 1e3,
        frame_bytes as f64 / 1e3
    );
    eprintln!(
        "  drops     mean {:.2} %, p99 {:.2} %, worst {:.2} % per subscriber",
        drop_mean * 100.0,
        percentile(&drops, 0.99) * 100.0,
        percentile(&drops, 1.0) * 100.0
    );
    eprintln!(
        "  latency   p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (publish start → event received)"
    );
    eprintln!("  checked   {checked} sampled events byte for byte, {mismatched} mismatched");
    if !server.is_empty() {
        eprintln!(
            "  server    {:.2} CPU s in {:.1} s ({:.0} % of a core), RSS peak {:.1} MiB",
            server_cpu,
            window,
            server_cpu / window * 100.0,
            rss_peak.get() as f64 / 1024.0
        );
    }
    if tcp_peak.get() >= tcp_pressure && tcp_pressure > 0 {
        eprintln!(
            "  kernel    TCP memory reached {} pages, past the pressure threshold ({tcp_pressure}): \
             every socket on the machine was being throttled",
            tcp_peak.get()
        );
    }
    eprintln!(
        "  loadgen   {:.0} % of a core{}",
        own_share * 100.0,
        if own_share > SATURATED_CPU {
            " — SATURATED: the generator may be the limit"
        } else {
            ""
        }
    );
    for problem in &integrity {
        eprintln!("  INTEGRITY {problem}");
    }
    eprintln!("  {}", if passed { "PASS" } else { "FAIL" });
    Ok(integrity.is_empty())
}

/// `loadgen idle`: returns false when not every subscriber connected.
pub async fn idle(args: IdleArgs) -> anyhow::Result<bool> {
    let fd_limit = procfs::raise_fd_limit();
    let n = args.subscribers;
    if fd_limit < (n + 16) as u64 {
        bail!("{n} sockets need more than the open-file limit of {fd_limit}");
    }
    let Target {
        server: kind,
        url,
        server_pids,
        stream,
        label,
    } = &args.target;
    let addr = http::parse_base_url(url)?;
    let stream = stream.clone().unwrap_or_else(fresh_name);
    let board = Rc::new(Board::new(*kind, stream.clone(), Vec::new(), n, u64::MAX));
    let server = Processes::new(server_pids.clone());
    let me = Processes::new(vec![0]);
    let settle = Duration::from_secs_f64(args.settle);

    let before = server.rss_kib();
    let own_before = me.rss_kib();
    let started = Instant::now();
    let request: Rc<[u8]> = kind.subscribe_request(&stream).into();
    let handles = open_subscribers(&board, n, addr, &request);
    wait_for_connections(&board, n).await;
    let connect_time = started.elapsed();
    tokio::time::sleep(settle).await;
    let connected = board.clients.borrow().iter().filter(|c| c.ready).count();
    let still_open = n - board.failed.get();
    let held = server.rss_kib();
    let own_held = me.rss_kib();
    for handle in &handles {
        handle.abort();
    }
    tokio::time::sleep(settle).await;
    let after_close = server.rss_kib();
    let first_error = board.clients.borrow().iter().find_map(|c| c.error.clone());

    let per_kib = held.saturating_sub(before) as f64 / connected.max(1) as f64;
    let own_per_kib = own_held.saturating_sub(own_before) as f64 / connected.max(1) as f64;
    let line = json!({
        "mode": "idle",
        "server": kind.name(),
        "label": label,
        "subscribers": n,
        "connected": connected,
        "still_open": still_open,
        "connect_s": round(connect_time.as_secs_f64(), 3),
        "settle_s": args.settle,
        "server_rss_before_kib": before,
        "server_rss_held_kib": held,
        "server_rss_after_close_kib": after_close,
        "server_kib_per_subscriber": round(per_kib, 2),
        "loadgen_kib_per_subscriber": round(own_per_kib, 2),
        "first_client_error": first_error,
    });
    println!("{line}");
    eprintln!(
        "{} idle: {connected}/{n} subscribers connected in {:.1} s, {still_open} still open after {:.0} s",
        kind.name(),
        connect_time.as_secs_f64(),
        args.settle
    );
    eprintln!(
        "  server RSS {:.1} MiB → {:.1} MiB held → {:.1} MiB after closing: {per_kib:.2} KiB per idle subscriber",
        before as f64 / 1024.0,
        held as f64 / 1024.0,
        after_close as f64 / 1024.0
    );
    eprintln!("  loadgen {own_per_kib:.2} KiB per subscriber");
    Ok(connected == n && still_open == n)
}

fn open_subscribers(
    board: &Rc<Board>,
    n: usize,
    addr: SocketAddr,
    request: &Rc<[u8]>,
) -> Vec<JoinHandle<()>> {
    let connecting = Arc::new(Semaphore::new(CONNECT_AT_ONCE));
    (0..n)
        .map(|index| {
            tokio::task::spawn_local(subscriber::run(
                board.clone(),
                index,
                addr,
                request.clone(),
                connecting.clone(),
            ))
        })
        .collect()
}

/// Waits until every subscriber has its response head or has failed.
async fn wait_for_connections(board: &Board, n: usize) {
    let deadline = Instant::now() + CONNECT_GRACE + Duration::from_millis(n as u64);
    while board.ready.get() + board.failed.get() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the first bytes after the head (`retry:`) arrive before the clock starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn all_caught_up(board: &Board, last_seq: u64) -> bool {
    board
        .clients
        .borrow()
        .iter()
        .all(|c| !c.ready || c.error.is_some() || c.last_seq >= last_seq)
}

async fn sample_memory(server: Processes, rss_peak: Rc<Cell<u64>>, tcp_peak: Rc<Cell<u64>>) {
    loop {
        rss_peak.set(rss_peak.get().max(server.rss_kib()));
        tcp_peak.set(tcp_peak.get().max(procfs::tcp_mem_pages()));
        tokio::time::sleep(RSS_EVERY).await;
    }
}

fn fresh_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or_default();
    format!("bench-{}-{}", std::process::id(), nanos % 1_000_000)
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The `q` quantile of sorted microsecond values, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    round(sorted[rank - 1] as f64 / 1000.0, 3)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
