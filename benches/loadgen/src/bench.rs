//! The two modes: `run` (publish and fan out, then report) and `idle` (memory per idle
//! subscriber). Each prints one JSON line on stdout and a readable summary on stderr.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::board::{self, Board, Expect, Layout, Output, Server};
use crate::procfs::{self, Processes};
use crate::publisher::{self, Published, Schedule};
use crate::{IdleArgs, RunArgs, Target, frames, http, nats, subscriber};

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

/// What the server, this process and the watched ones had used when the window opened and
/// closed.
#[derive(Debug, Default, Clone)]
struct Marks {
    server_cpu: f64,
    own_cpu: f64,
    /// Per `--watch` process, in order.
    watched: Vec<f64>,
}

/// `loadgen run`: returns false when an integrity check failed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let target = &args.target;
    let layout = Layout {
        viewers: args.subscribers,
        streams: usize::from(args.streams),
        multiplex: args.multiplex,
    };
    if target.server != Server::Framecast && (args.multiplex || !args.query.is_empty()) {
        bail!("--multiplex and --query need --server framecast");
    }
    if args.output == Output::Mjpeg {
        if target.server != Server::Framecast {
            bail!("--output mjpeg needs --server framecast");
        }
        if args.multiplex {
            bail!("--output mjpeg carries one stream per connection: leave out --multiplex");
        }
        if board::asked_width(&args.query).is_some() {
            // A scaled frame is re-encoded, and the mark that numbers it is lost.
            bail!("--output mjpeg cannot check scaled frames: leave out --query width=");
        }
    }
    let connections = layout.connections();
    // Runs that use the newer options read framecast's counters and report more; the others'
    // JSON lines stay as they were.
    let extended = layout.streams > 1
        || !args.query.is_empty()
        || !args.case.is_empty()
        || args.subscribe_url.is_some()
        || !args.watch.is_empty()
        || args.nats_monitor.is_some();
    let fd_limit = procfs::raise_fd_limit();
    let needed = (connections + args.stalled + layout.streams + 16) as u64;
    if fd_limit < needed {
        bail!("{needed} sockets need more than the open-file limit of {fd_limit}");
    }
    let addr = http::parse_base_url(&target.url)?;
    // Where the subscribers connect: the same server, or another (a node of a cluster).
    let watch_addr = match &args.subscribe_url {
        Some(url) => http::parse_base_url(url)?,
        None => addr,
    };
    let nats_monitor = args
        .nats_monitor
        .as_deref()
        .map(http::parse_base_url)
        .transpose()?;
    let frames = frames::load(&args.frames)?;
    let frame_bytes = frames.iter().map(|f| f.jpeg.len()).sum::<usize>() / frames.len();
    let stream = target.stream.clone().unwrap_or_else(fresh_name);
    let streams = board::stream_names(&stream, layout.streams);
    let mut board = Board::new(
        target.server,
        streams.clone(),
        frames,
        layout,
        args.sample_every,
    );
    board.scan_all = args.scan_all;
    board.output = args.output;
    let width = board::asked_width(&args.query);
    if width.is_some() {
        board.expect = Expect::Scaled;
    }
    let board = Rc::new(board);

    // One request for all streams (multiplexed), or one per stream: connection `c` sends
    // `requests[c % requests.len()]`, as `Layout::carried` expects.
    let requests: Vec<Rc<[u8]>> = if layout.multiplex {
        vec![
            target
                .server
                .subscribe_request(args.output, &streams, &args.query)
                .into(),
        ]
    } else {
        streams
            .iter()
            .map(|name| {
                let one = std::slice::from_ref(name);
                target
                    .server
                    .subscribe_request(args.output, one, &args.query)
                    .into()
            })
            .collect()
    };
    let connect_started = Instant::now();
    let handles = open_subscribers(&board, connections, watch_addr, &requests);
    let mut stalled = Vec::with_capacity(args.stalled);
    for _ in 0..args.stalled {
        stalled.push(subscriber::stall(watch_addr, requests[0].clone()).await?);
    }
    wait_for_connections(&board, connections).await;
    let connect_time = connect_started.elapsed();

    let server = Processes::new(target.server_pids.clone());
    let me = Processes::new(vec![0]);
    let watched: Vec<Processes> = args
        .watch
        .iter()
        .map(|w| Processes::new(vec![w.pid]))
        .collect();
    let rss_peak = Rc::new(Cell::new(server.rss_kib()));
    let tcp_peak = Rc::new(Cell::new(procfs::tcp_mem_pages()));
    let sampler = tokio::task::spawn_local(sample_memory(
        server.clone(),
        rss_peak.clone(),
        tcp_peak.clone(),
    ));

    let (mut opened, mut closed) = (Marks::default(), Marks::default());
    let schedule = Schedule {
        // A moment for every publisher to connect before the first tick.
        start: tokio::time::Instant::now() + Duration::from_millis(20),
        fps: args.fps,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    // The NATS server's byte counts as the window opens and as it closes.
    let connz = nats_monitor.map(|monitor| {
        let opens = schedule.start + schedule.warmup;
        let closes = opens + schedule.duration;
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(opens).await;
            let before = nats::snapshot(monitor).await?;
            tokio::time::sleep_until(closes).await;
            let after = nats::snapshot(monitor).await?;
            anyhow::Ok((before, after))
        })
    });
    // Streams after the first publish in their own tasks, their ticks spread over the period.
    let period = Duration::from_secs_f64(1.0 / args.fps);
    let others: Vec<JoinHandle<anyhow::Result<Published>>> = (1..layout.streams)
        .map(|stream| {
            let board = board.clone();
            let phase = period.mul_f64(stream as f64 / layout.streams as f64);
            tokio::task::spawn_local(async move {
                publisher::run(&board, stream, addr, schedule, phase, |_| {}).await
            })
        })
        .collect();
    let first = publisher::run(&board, 0, addr, schedule, Duration::ZERO, |opening| {
        let marks = Marks {
            server_cpu: server.cpu_seconds(),
            own_cpu: me.cpu_seconds(),
            watched: watched.iter().map(Processes::cpu_seconds).collect(),
        };
        board.counting_bytes.set(opening);
        if opening {
            opened = marks;
        } else {
            closed = marks;
        }
    })
    .await?;
    let mut per_stream = vec![first];
    for other in others {
        per_stream.push(other.await??);
    }
    let last_seqs: Vec<u64> = per_stream.iter().map(|p| p.last_seq).collect();
    let published = combine(&per_stream);
    let nats_window = match connz {
        Some(task) => match task.await? {
            Ok((before, after)) => {
                Some(nats::window_json(&before, &after, published.bytes_accepted))
            }
            Err(err) => {
                eprintln!("loadgen: reading the NATS server's /connz: {err:#}");
                None
            }
        },
        None => None,
    };
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until && !all_caught_up(&board, &last_seqs) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sampler.abort();
    // framecast's own count of the frames it published and scaled, read while the
    // subscribers (who keep the variants alive) are still connected.
    let counters = if extended && target.server == Server::Framecast {
        match server_counters(addr, &streams).await {
            Ok(counters) => Some(counters),
            Err(err) => {
                eprintln!("loadgen: reading /streams: {err:#}");
                None
            }
        }
    } else {
        None
    };
    drop(stalled);
    for handle in &handles {
        handle.abort();
    }

    // Tally.
    let window = published.window.as_secs_f64();
    let clients = board.clients.borrow();
    let connected = clients.iter().filter(|c| c.ready).count();
    // One drop ratio per connection and stream carried (per subscriber, with one stream).
    let mut drops: Vec<f64> = clients
        .iter()
        .flat_map(|c| {
            c.tallies.iter().enumerate().map(|(i, tally)| {
                let expected = per_stream[c.first_stream + i].accepted.max(1) as f64;
                if c.ready {
                    (1.0 - tally.events as f64 / expected).max(0.0)
                } else {
                    1.0
                }
            })
        })
        .collect();
    drops.sort_by(f64::total_cmp);
    let events: u64 = clients.iter().map(|c| c.events()).sum();
    let disorder: u64 = clients.iter().map(|c| c.disorder()).sum();
    let unparsed: u64 = clients.iter().map(|c| c.unparsed).sum();
    let foreign: u64 = clients.iter().map(|c| c.foreign).sum();
    let malformed = clients.iter().filter(|c| c.malformed).count();
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
        let why = match args.output {
            Output::Sse => "no readable seq",
            Output::Mjpeg => "no mark with a seq at the start of the JPEG",
        };
        integrity.push(format!("{unparsed} frame events had {why}"));
    }
    if foreign > 0 {
        integrity.push(format!(
            "{foreign} frame events of a stream their connection did not ask for"
        ));
    }
    if malformed > 0 {
        integrity.push(format!(
            "{malformed} responses broke their multipart framing ({})",
            clients
                .iter()
                .filter(|c| c.malformed)
                .find_map(|c| c.error.as_deref())
                .unwrap_or("?")
        ));
    }
    let passed = integrity.is_empty()
        && connected == connections
        && accept_ratio >= args.min_accept
        && drop_mean < args.max_drop
        && (subscribers == 0 || p99 < args.max_p99_ms);
    let own_share = own_cpu / window;
    let (tcp_pressure, _) = procfs::tcp_mem_limits();
    let per = |total: f64, count: u64| {
        if count > 0 { total / count as f64 } else { 0.0 }
    };
    let cpu_ms_per_frame = per(server_cpu * 1e3, published.accepted);
    let cpu_us_per_event = per(server_cpu * 1e6, events);
    // The --watch processes' CPU over the window.
    let processes: Vec<Value> = args
        .watch
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let at = |marks: &Marks| marks.watched.get(i).copied().unwrap_or(0.0);
            let cpu = (at(&closed) - at(&opened)).max(0.0);
            json!({
                "name": w.name,
                "pid": w.pid,
                "cpu_s": round(cpu, 3),
                "cpu_share": round(cpu / window, 4),
                "cpu_ms_per_frame": round(per(cpu * 1e3, published.accepted), 4),
            })
        })
        .collect();

    let mut line = json!({
        "mode": "run",
        "server": target.server.name(),
        "output": args.output.name(),
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
    if extended {
        let object = line.as_object_mut().expect("a JSON object");
        let mut add = |key: &str, value: serde_json::Value| {
            object.insert(key.to_string(), value);
        };
        add("case", json!(args.case));
        add("streams", json!(layout.streams));
        add("multiplex", json!(layout.multiplex));
        add("connections", json!(connections));
        add("query", json!(args.query.join("&")));
        add("width", json!(width));
        add(
            "event_dims",
            json!(board.event_dims.get().map(|(w, h)| format!("{w}x{h}"))),
        );
        add("events", json!(events));
        add("foreign", json!(foreign));
        add("server_cpu_ms_per_frame", json!(round(cpu_ms_per_frame, 4)));
        add("server_cpu_us_per_event", json!(round(cpu_us_per_event, 3)));
        add(
            "server_counters",
            counters
                .as_ref()
                .map_or(serde_json::Value::Null, Counters::to_json),
        );
        add("subscribe_url", json!(args.subscribe_url));
        add("processes", json!(processes));
        add("nats", nats_window.clone().unwrap_or(Value::Null));
    }
    println!("{line}");

    let shown = match args.output {
        Output::Sse => target.server.name().to_string(),
        Output::Mjpeg => format!("{} (MJPEG)", target.server.name()),
    };
    if layout.streams > 1 {
        eprintln!(
            "{} {}: {} subscribers × {} streams on {} connections ({} connected, {} stalled), \
             {} fps per stream for {:.1} s",
            shown,
            target.label,
            subscribers,
            layout.streams,
            connections,
            connected,
            args.stalled,
            args.fps,
            window
        );
    } else {
        eprintln!(
            "{} {}: {} subscribers ({} connected, {} stalled), {} fps for {:.1} s",
            shown, target.label, subscribers, connected, args.stalled, args.fps, window
        );
    }
    if !args.query.is_empty() {
        eprintln!("  query     &{}", args.query.join("&"));
    }
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
        "  drops     mean {:.2} %, p99 {:.2} %, worst {:.2} % per {}",
        drop_mean * 100.0,
        percentile(&drops, 0.99) * 100.0,
        percentile(&drops, 1.0) * 100.0,
        if layout.streams > 1 {
            "connection and stream"
        } else {
            "subscriber"
        }
    );
    eprintln!(
        "  latency   p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (publish start → event received)"
    );
    match board.expect {
        Expect::Exact => {
            eprintln!("  checked   {checked} sampled events byte for byte, {mismatched} mismatched")
        }
        Expect::Scaled => eprintln!(
            "  checked   {checked} sampled scaled events decoded ({}), {mismatched} mismatched",
            board
                .event_dims
                .get()
                .map_or("none".to_string(), |(w, h)| format!("{w}x{h}"))
        ),
    }
    if !server.is_empty() {
        eprintln!(
            "  server    {:.2} CPU s in {:.1} s ({:.0} % of a core), RSS peak {:.1} MiB",
            server_cpu,
            window,
            server_cpu / window * 100.0,
            rss_peak.get() as f64 / 1024.0
        );
        if extended {
            eprintln!(
                "            {cpu_ms_per_frame:.3} ms per frame published, \
                 {cpu_us_per_event:.1} µs per frame event delivered"
            );
        }
    }
    for process in &processes {
        eprintln!(
            "  {:9} {:.2} CPU s in {:.1} s ({:.0} % of a core), {:.3} ms per frame published",
            process["name"].as_str().unwrap_or("?"),
            process["cpu_s"].as_f64().unwrap_or(0.0),
            window,
            process["cpu_share"].as_f64().unwrap_or(0.0) * 100.0,
            process["cpu_ms_per_frame"].as_f64().unwrap_or(0.0),
        );
    }
    if let Some(nats) = &nats_window {
        for connection in nats["connections"].as_array().into_iter().flatten() {
            eprintln!(
                "  NATS      {:24} got {:.3} copies of the frames published, sent {:.3}",
                connection["name"].as_str().unwrap_or("?"),
                connection["copies_to_client"].as_f64().unwrap_or(0.0),
                connection["copies_from_client"].as_f64().unwrap_or(0.0),
            );
        }
    }
    if let Some(counters) = &counters {
        for variant in &counters.variants {
            eprintln!(
                "  variant   width {}: {} frames scaled, {} failed, of {} published (whole run)",
                variant.width, variant.scaled, variant.failed, counters.published
            );
        }
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
    let board = Rc::new(Board::new(
        *kind,
        vec![stream.clone()],
        Vec::new(),
        Layout::single(n),
        u64::MAX,
    ));
    let server = Processes::new(server_pids.clone());
    let me = Processes::new(vec![0]);
    let settle = Duration::from_secs_f64(args.settle);

    let scrape_empty = match &args.scrape {
        Some(path) => Some(scrape(addr, path, args.scrapes, &server).await?),
        None => None,
    };
    let before = server.rss_kib();
    let own_before = me.rss_kib();
    let started = Instant::now();
    let request: Rc<[u8]> = kind
        .subscribe_request(Output::Sse, std::slice::from_ref(&stream), &[])
        .into();
    let handles = open_subscribers(&board, n, addr, &[request]);
    wait_for_connections(&board, n).await;
    let connect_time = started.elapsed();
    tokio::time::sleep(settle).await;
    let connected = board.clients.borrow().iter().filter(|c| c.ready).count();
    let still_open = n - board.failed.get();
    let held = server.rss_kib();
    let own_held = me.rss_kib();
    let scrape_held = match &args.scrape {
        Some(path) => Some(scrape(addr, path, args.scrapes, &server).await?),
        None => None,
    };
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
        "scrape_path": args.scrape,
        "scrape_empty": scrape_empty,
        "scrape_held": scrape_held,
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
    let path = args.scrape.as_deref().unwrap_or("");
    for (held, scraped) in [(0, &scrape_empty), (connected, &scrape_held)] {
        if let Some(scraped) = scraped {
            eprintln!("  GET {path} with {held} subscribers: {scraped}");
        }
    }
    Ok(connected == n && still_open == n)
}

/// `count` GETs of `path`, one after another, each on its own connection (as a scraper that
/// does not keep connections alive would): latency percentiles, server CPU per request, and the
/// body's size.
async fn scrape(
    addr: SocketAddr,
    path: &str,
    count: usize,
    server: &Processes,
) -> anyhow::Result<Value> {
    let mut latencies = Vec::with_capacity(count);
    let mut bytes = 0;
    let cpu_before = server.cpu_seconds();
    for _ in 0..count.max(1) {
        let started = Instant::now();
        let (status, body) = http::get(addr, path).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        if status != 200 {
            bail!("GET {path} answered {status}");
        }
        bytes = body.len();
    }
    let cpu_ms = (server.cpu_seconds() - cpu_before) * 1000.0 / latencies.len() as f64;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(json!({
        "requests": latencies.len(),
        "p50_ms": round(at(0.5), 3),
        "p99_ms": round(at(0.99), 3),
        "server_cpu_ms": round(cpu_ms, 3),
        "bytes": bytes,
    }))
}

/// Opens `n` connections; connection `index` sends `requests[index % requests.len()]`.
fn open_subscribers(
    board: &Rc<Board>,
    n: usize,
    addr: SocketAddr,
    requests: &[Rc<[u8]>],
) -> Vec<JoinHandle<()>> {
    let connecting = Arc::new(Semaphore::new(CONNECT_AT_ONCE));
    (0..n)
        .map(|index| {
            tokio::task::spawn_local(subscriber::run(
                board.clone(),
                index,
                addr,
                requests[index % requests.len()].clone(),
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

fn all_caught_up(board: &Board, last_seqs: &[u64]) -> bool {
    board
        .clients
        .borrow()
        .iter()
        .all(|c| !c.ready || c.error.is_some() || c.caught_up(last_seqs))
}

/// The streams' publishing, summed: offered, accepted and refused frames, round trips.
fn combine(per_stream: &[Published]) -> Published {
    let first = &per_stream[0];
    Published {
        offered: per_stream.iter().map(|p| p.offered).sum(),
        accepted: per_stream.iter().map(|p| p.accepted).sum(),
        bytes_accepted: per_stream.iter().map(|p| p.bytes_accepted).sum(),
        refused: per_stream.iter().map(|p| p.refused).sum(),
        first_refusal: per_stream.iter().find_map(|p| p.first_refusal.clone()),
        round_trips_us: per_stream
            .iter()
            .flat_map(|p| p.round_trips_us.iter().copied())
            .collect(),
        last_seq: first.last_seq,
        window: first.window,
    }
}

/// One scaled width as `GET /streams` counts it, summed over the run's streams.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VariantCount {
    width: u64,
    scaled: u64,
    failed: u64,
}

/// framecast's own counters for the run's streams (`GET /streams`), summed over them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Counters {
    /// Frames the server published, warm-up and window alike.
    published: u64,
    /// Per width being watched, frames scaled and frames that failed to scale.
    variants: Vec<VariantCount>,
}

impl Counters {
    /// Reads the counters of `streams` from a `GET /streams` answer.
    fn from_streams_json(body: &[u8], streams: &[String]) -> anyhow::Result<Counters> {
        let all: serde_json::Value = serde_json::from_slice(body)?;
        let Some(list) = all["streams"].as_array() else {
            bail!("no \"streams\" list in {}", String::from_utf8_lossy(body));
        };
        let mut counters = Counters::default();
        for entry in list {
            let named = entry["name"].as_str();
            if !named.is_some_and(|name| streams.iter().any(|s| s == name)) {
                continue;
            }
            counters.published += entry["published"].as_u64().unwrap_or(0);
            let variants = entry["variants"].as_array().map(Vec::as_slice);
            for variant in variants.unwrap_or_default() {
                let width = variant["width"].as_u64().unwrap_or(0);
                let at = match counters.variants.iter().position(|v| v.width == width) {
                    Some(at) => at,
                    None => {
                        counters.variants.push(VariantCount {
                            width,
                            scaled: 0,
                            failed: 0,
                        });
                        counters.variants.len() - 1
                    }
                };
                let count = &mut counters.variants[at];
                count.scaled += variant["scaled"].as_u64().unwrap_or(0);
                count.failed += variant["failed"].as_u64().unwrap_or(0);
            }
        }
        counters.variants.sort_by_key(|v| v.width);
        Ok(counters)
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "published": self.published,
            "variants": self.variants.iter().map(|v| json!({
                "width": v.width,
                "scaled": v.scaled,
                "failed": v.failed,
            })).collect::<Vec<_>>(),
        })
    }
}

/// framecast's counters for `streams`, from `GET /streams`.
async fn server_counters(addr: SocketAddr, streams: &[String]) -> anyhow::Result<Counters> {
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), http::get(addr, "/streams"))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))??;
    if status != 200 {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    Counters::from_streams_json(&body, streams)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_the_runs_streams_by_width() {
        let body = br#"{"streams":[
            {"name":"b-1","published":40,"variants":[{"width":320,"scaled":39,"failed":0}]},
            {"name":"b-2","published":41,"variants":[{"width":160,"scaled":2,"failed":1},
                                                      {"width":320,"scaled":41,"failed":0}]},
            {"name":"other","published":7,"variants":[{"width":320,"scaled":7,"failed":0}]},
            {"name":"b-3","published":5}
        ],"viewers":3}"#;
        let streams = board::stream_names("b", 3);
        let counters = Counters::from_streams_json(body, &streams).unwrap();
        assert_eq!(counters.published, 86);
        assert_eq!(
            counters.variants,
            [
                VariantCount {
                    width: 160,
                    scaled: 2,
                    failed: 1
                },
                VariantCount {
                    width: 320,
                    scaled: 80,
                    failed: 0
                },
            ]
        );
        assert!(Counters::from_streams_json(b"{}", &streams).is_err());
    }

    #[test]
    fn publishing_of_several_streams_adds_up() {
        let one = |accepted, last_seq| Published {
            offered: 10,
            accepted,
            bytes_accepted: accepted * 100,
            refused: 10 - accepted,
            first_refusal: (accepted < 10).then(|| "429".to_string()),
            round_trips_us: vec![1; accepted as usize],
            last_seq,
            window: Duration::from_secs(1),
        };
        let all = combine(&[one(10, 12), one(8, 11)]);
        assert_eq!((all.offered, all.accepted, all.refused), (20, 18, 2));
        assert_eq!(all.bytes_accepted, 1800);
        assert_eq!(all.first_refusal.as_deref(), Some("429"));
        assert_eq!(all.round_trips_us.len(), 18);
        assert_eq!(all.last_seq, 12);
    }
}
