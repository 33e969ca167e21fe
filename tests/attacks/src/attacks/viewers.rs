//! Attacks on `GET /events` and the connections behind it: viewers that never read, that write,
//! that come in crowds, or that never finish their request.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    MIB, Report, Tally, big_jpeg, healthz, mib, on_fresh_server, owned, range, sample_jpeg,
    server_args, subscribers, watched,
};
use crate::Mode;
use crate::harness::{ATTACKER_IP, BYSTANDER_IP, Outcome, Server, client_from, crowd_ip};
use crate::wire::{Answer, connect_from, events_request, exchange, read_answer};

/// The address the producer of attack 3's big frames publishes from.
const PRODUCER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// The request-head timeout framecast enforces (fixed, not a flag).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// 2. Viewers ask for made-up stream names, by GET (held open) and HEAD, hoping to use up the
///    streams a producer needs.
pub async fn made_up_streams(_mode: Mode) -> anyhow::Result<Report> {
    let names = 100;
    let expected = format!(
        "{names} made-up names by HEAD, then {names} by GET (held open); then a producer's POST \
         to a new stream: 200"
    );
    on_fresh_server(vec![], expected, async |server| {
        // HEADs first: each asks for a name and leaves at once; then GETs that stay.
        let client = client_from(ATTACKER_IP);
        let mut heads = Tally::default();
        for n in 0..names {
            let url = server.url(&format!("/events?stream=ghost{n}"));
            match client.head(url).send().await {
                Ok(response) => heads.add(response.status().as_u16()),
                Err(_) => heads.add("error"),
            }
        }
        let mut held = Vec::new();
        let mut gets = Tally::default();
        for n in 0..names {
            let request = events_request(&format!("madeup{n}"), "127.0.0.1");
            let (answer, _, socket) =
                exchange(ATTACKER_IP, server.addr, &request, Duration::from_secs(2)).await?;
            if answer == Answer::Status(200) {
                held.push(socket);
            }
            gets.add(answer);
        }
        let post = client_from(BYSTANDER_IP)
            .post(server.url("/frames?stream=real"))
            .header("content-type", "image/jpeg")
            .body(sample_jpeg(64, 48, 2))
            .send()
            .await?
            .status()
            .as_u16();
        drop(held);
        Ok(Outcome {
            observed: format!("HEADs: {heads}; GETs then: {gets}; producer's POST: {post}"),
            passed: post == 200,
        })
    })
    .await
}

/// 3. Many viewers with a tiny receive buffer subscribe to a stream of ~1 MiB frames and never
///    read, so every write to them stops making progress.
pub async fn stalled_viewers(mode: Mode) -> anyhow::Result<Report> {
    let count = mode.pick(200, 1000);
    let (flags, send_timeout) = mode.pick(
        (owned(&["--send-timeout", "3s"]), Duration::from_secs(3)),
        (vec![], Duration::from_secs(30)),
    );
    let rss_bound = 32 * MIB + count as u64 * 64 * 1024;
    let jpeg = big_jpeg();
    let jpeg_kib = jpeg.len() / 1024;
    let expected = format!(
        "all {count} dropped within the send timeout ({} s) + 5 s of connecting; RSS growth ≤ \
         32 MiB + 64 KiB a viewer ({} MiB); the producer's frames all taken",
        send_timeout.as_secs(),
        rss_bound / MIB
    );
    on_fresh_server(flags, expected, async |server| {
        let before = server.rss();
        let stop = Arc::new(AtomicBool::new(false));
        let producer = tokio::spawn(produce(
            server.url("/frames?stream=big"),
            jpeg,
            stop.clone(),
        ));
        while subscribers(server, "big").await?.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let started = Instant::now();
        let mut sockets = Vec::new();
        for n in 0..count {
            let mut socket = connect_from(crowd_ip(n), server.addr, Some(4096)).await?;
            socket
                .write_all(&events_request("big", "127.0.0.1"))
                .await?;
            sockets.push(socket);
        }
        let connected = started.elapsed();
        let mut most = 0;
        let mut tcp_peak = 0;
        let limit = connected + send_timeout + Duration::from_secs(5);
        let give_up = limit + Duration::from_secs(10);
        let left = loop {
            let now = subscribers(server, "big").await?.unwrap_or(0);
            most = most.max(now);
            tcp_peak = tcp_peak.max(kernel_tcp_bytes());
            if (now == 0 && most > 0) || started.elapsed() > give_up {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let gone_at = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (taken, refused) = producer.await?;
        drop(sockets);
        let growth = server.peak_rss().saturating_sub(before);
        let dropped = if left == 0 {
            format!(
                "all dropped {:.1} s after the first connected",
                gone_at.as_secs_f64()
            )
        } else {
            format!(
                "{left} still subscribed after {:.1} s",
                gone_at.as_secs_f64()
            )
        };
        Ok(Outcome {
            observed: format!(
                "{most} of {count} subscribed (all connected by {:.1} s); {dropped}; peak RSS \
                 +{} MiB; kernel TCP buffers (machine-wide) peaked at {} MiB; producer: {taken} \
                 frames of {jpeg_kib} KiB taken, {refused} refused",
                connected.as_secs_f64(),
                mib(growth),
                mib(tcp_peak),
            ),
            passed: most == count as u64
                && left == 0
                && gone_at <= limit
                && growth <= rss_bound
                && refused == 0,
        })
    })
    .await
}

/// POSTs `jpeg` to `url` four times a second until `stop`; returns how many were taken and
/// how many refused.
async fn produce(url: String, jpeg: Vec<u8>, stop: Arc<AtomicBool>) -> (usize, usize) {
    let client = client_from(PRODUCER_IP);
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let (mut taken, mut refused) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let sent = client
            .post(&url)
            .header("content-type", "image/jpeg")
            .body(jpeg.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => taken += 1,
            _ => refused += 1,
        }
    }
    (taken, refused)
}

/// Bytes the kernel holds in TCP buffers, machine-wide (`/proc/net/sockstat`, `TCP: … mem N`
/// in pages).
fn kernel_tcp_bytes() -> u64 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = sockstat
        .lines()
        .find(|line| line.starts_with("TCP:"))
        .and_then(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|field| *field == "mem")?;
            fields.get(at + 1)?.parse().ok()
        })
        .unwrap_or(0);
    pages * 4096
}

/// 4. A server whose open-file limit is 256 gets 300 subscribers at once.
pub async fn fd_exhaustion(_mode: Mode) -> anyhow::Result<Report> {
    let (count, fd_limit) = (300, 256);
    let server = Server::start_with_fd_limit(&server_args(&[]), fd_limit).await?;
    let expected = format!(
        "{count} subscribers at once: past --max-connections (lowered to fit {fd_limit} fds) \
         503 or closed at once, none left hanging; /healthz 200 within 1 s while full; a new \
         subscriber 200 once they leave"
    );
    let (outcome, memory, kept) = watched(&server, None, async |server| {
        let addr = server.addr;
        let tasks: Vec<_> = (0..count)
            .map(|_| tokio::spawn(subscribe(addr, ATTACKER_IP, "flood")))
            .collect();
        let mut tally = Tally::default();
        let mut held = Vec::new();
        for task in tasks {
            let (answer, socket) = task.await?;
            if answer == Answer::Status(200) {
                held.extend(socket);
            }
            tally.add(answer);
        }
        let fds = server.open_fds();
        let (health, health_took) = healthz(server).await;
        drop(held);
        let mut again = Answer::Silent;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            again = subscribe(addr, BYSTANDER_IP, "flood").await.0;
            if again == Answer::Status(200) {
                break;
            }
        }
        let hanging = tally.count(&Answer::Silent.to_string());
        Ok(Outcome {
            observed: format!(
                "{tally} ({fds} fds open when full); /healthz while full: {health} in {} ms; \
                 after they left, a new subscriber: {again}",
                health_took.as_millis()
            ),
            passed: hanging == 0
                && tally.count("503") > 0
                && health == 200
                && health_took < Duration::from_secs(1)
                && again == Answer::Status(200),
        })
    })
    .await?;
    Ok(Report {
        flags: format!("started under `ulimit -n {fd_limit}`"),
        expected,
        outcome,
        watched: Some((memory, kept)),
    })
}

/// Subscribes to `stream` from `from`: the answer within 3 s, and the connection if it stayed
/// open.
async fn subscribe(addr: SocketAddr, from: Ipv4Addr, stream: &str) -> (Answer, Option<TcpStream>) {
    let connecting = tokio::time::timeout(Duration::from_secs(3), connect_from(from, addr, None));
    let mut socket = match connecting.await {
        Ok(Ok(socket)) => socket,
        Ok(Err(_)) => return (Answer::Closed, None),
        Err(_) => return (Answer::Silent, None),
    };
    if socket
        .write_all(&events_request(stream, "127.0.0.1"))
        .await
        .is_err()
    {
        return (Answer::Closed, None);
    }
    let (answer, _) = read_answer(&mut socket, Duration::from_secs(3)).await;
    (answer, Some(socket))
}

/// 5. One client opens more event streams than one client may.
pub async fn one_client_every_slot(_mode: Mode) -> anyhow::Result<Report> {
    let (count, cap) = (300, 256);
    let expected = format!(
        "{count} from one address: the first {cap} get 200, the other {} get 429; another \
         client still gets 200",
        count - cap
    );
    on_fresh_server(vec![], expected, async |server| {
        let mut tally = Tally::default();
        let mut held = Vec::new();
        for _ in 0..count {
            let (answer, socket) = subscribe(server.addr, ATTACKER_IP, "crowd").await;
            if answer == Answer::Status(200) {
                held.extend(socket);
            }
            tally.add(answer);
        }
        let (other, _socket) = subscribe(server.addr, BYSTANDER_IP, "crowd").await;
        drop(held);
        Ok(Outcome {
            observed: format!("{tally}; another client: {other}"),
            passed: tally.count("200") == cap
                && tally.count("429") == count - cap
                && other == Answer::Status(200),
        })
    })
    .await
}

/// 7. A viewer writes into its own event stream: 1 KiB every 20 ms (slow enough to see where
///    the server cuts it off), then, on a new stream, 1 MiB as fast as it can (how much of
///    that the kernel's buffers absorb before the reset arrives is a race, so only the close
///    and the server's CPU are judged).
pub async fn noisy_viewer(_mode: Mode) -> anyhow::Result<Report> {
    let total = 1024 * 1024;
    let expected = "paced: closed once past 4 KiB (≤ 8 KiB written); blast: closed; server CPU \
                    meanwhile ≤ its idle rate + 50 ms";
    on_fresh_server(vec![], expected.into(), async |server| {
        let idle_from = server.cpu_time();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_per_second = server.cpu_time().saturating_sub(idle_from);

        let cpu_from = server.cpu_time();
        let started = Instant::now();
        let paced = write_into_stream(server, total, Duration::from_millis(20)).await?;
        let blast = write_into_stream(server, total, Duration::ZERO).await?;
        let cpu = server.cpu_time().saturating_sub(cpu_from);
        let idle = idle_per_second.mul_f64(started.elapsed().as_secs_f64());
        Ok(Outcome {
            observed: format!(
                "paced: {paced}; blast: {blast}; server CPU {} ms over {} ms (idle rate: {} ms)",
                cpu.as_millis(),
                started.elapsed().as_millis(),
                idle.as_millis()
            ),
            passed: paced.closed
                && paced.written <= 8 * 1024
                && blast.closed
                && cpu <= idle + Duration::from_millis(50),
        })
    })
    .await
}

/// How far a viewer writing into its own stream got.
struct Noise {
    /// Bytes written before the close was seen, or all of them.
    written: usize,
    /// Whether the server closed the connection.
    closed: bool,
    /// How long it took.
    took: Duration,
}

impl std::fmt::Display for Noise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ending = if self.closed { "closed" } else { "still open" };
        write!(
            f,
            "{ending} after {} KiB written, {} ms",
            self.written / 1024,
            self.took.as_millis()
        )
    }
}

/// Subscribes to `default`, then writes up to `total` bytes into the connection in 1 KiB
/// pieces, `pause` apart, until the server closes it.
async fn write_into_stream(
    server: &Server,
    total: usize,
    pause: Duration,
) -> anyhow::Result<Noise> {
    let mut socket = connect_from(ATTACKER_IP, server.addr, None).await?;
    socket
        .write_all(&events_request("default", "127.0.0.1"))
        .await?;
    let (answer, _) = read_answer(&mut socket, Duration::from_secs(2)).await;
    anyhow::ensure!(answer == Answer::Status(200), "subscribing got {answer}");
    let (mut read, mut write) = socket.into_split();
    let closed = Arc::new(AtomicBool::new(false));
    let seen = closed.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0; 64 * 1024];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
        seen.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let piece = [b'x'; 1024];
    let mut written = 0;
    while written < total && !closed.load(Ordering::Relaxed) {
        if write.write_all(&piece).await.is_err() {
            break;
        }
        written += piece.len();
        if pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    Ok(Noise {
        written,
        closed: closed.load(Ordering::Relaxed),
        took: started.elapsed(),
    })
}

/// 8. Many connections each send their request head one byte a second.
pub async fn slowloris_heads(mode: Mode) -> anyhow::Result<Report> {
    let count = mode.pick(200, 1000);
    let expected = format!(
        "all {count} closed at the {} s head timeout (by {} s); /healthz 200 within 1 s meanwhile",
        HEAD_TIMEOUT.as_secs(),
        HEAD_TIMEOUT.as_secs() + 2
    );
    on_fresh_server(vec![], expected, async |server| {
        let addr = server.addr;
        let tasks: Vec<_> = (0..count)
            .map(|n| tokio::spawn(drip(addr, crowd_ip(n))))
            .collect();
        tokio::time::sleep(HEAD_TIMEOUT / 2).await;
        let (health, health_took) = healthz(server).await;
        let mut closed_after = Vec::new();
        let mut answers = Tally::default();
        let mut open = 0;
        for task in tasks {
            let (status, closed) = task.await?;
            match closed {
                Some(after) => closed_after.push(after.as_secs_f64()),
                None => open += 1,
            }
            answers.add(status.map_or("no response".to_string(), |code| code.to_string()));
        }
        let latest = closed_after.iter().copied().fold(0.0, f64::max);
        Ok(Outcome {
            observed: format!(
                "{} closed after {} s, {open} still open at 20 s; answers: {answers}; /healthz \
                 at {} s: {health} in {} ms",
                closed_after.len(),
                range(closed_after.iter().copied()),
                (HEAD_TIMEOUT / 2).as_secs(),
                health_took.as_millis()
            ),
            passed: open == 0
                && latest <= (HEAD_TIMEOUT + Duration::from_secs(2)).as_secs_f64()
                && health == 200
                && health_took < Duration::from_secs(1),
        })
    })
    .await
}

/// One slowloris connection: a request head sent one byte a second, forever. Returns the
/// status of any answer and when the server closed the connection (`None`: open at 20 s).
async fn drip(addr: SocketAddr, from: Ipv4Addr) -> (Option<u16>, Option<Duration>) {
    let Ok(socket) = connect_from(from, addr, None).await else {
        return (None, Some(Duration::ZERO));
    };
    let started = Instant::now();
    let (mut read, mut write) = socket.into_split();
    let writer = tokio::spawn(async move {
        let head = b"GET /events?stream=default HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (received, closed) = crate::wire::read_for(&mut read, Duration::from_secs(20)).await;
    writer.abort();
    let status = crate::wire::status_of(&received);
    (status, closed.then(|| started.elapsed()))
}
