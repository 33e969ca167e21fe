//! Attacks on `POST /frames`: publishing from another site, uploads that take their time, and
//! frames bigger than the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{MIB, Report, Tally, big_jpeg, mib, on_fresh_server, owned, range, sample_jpeg, yes};
use crate::Mode;
use crate::harness::{BYSTANDER_IP, Outcome, Server, client_from, crowd_ip, streams};
use crate::wire::{Answer, connect_from, read_answer};

/// Pause between the 64 KiB chunks of attack 14b (at most 32 MB/s).
const PACE: Duration = Duration::from_millis(2);
/// framecast's default `--max-frame-bytes`.
const MAX_FRAME_BYTES: u64 = 8 * MIB;

/// 1. A web page on another site POSTs a JPEG the way `fetch` does without a Content-Type,
///    a CORS "simple request" the browser sends without asking first.
pub async fn cross_site_publish(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "403, no stream created (the same upload without browser headers: 200)";
    on_fresh_server(vec![], expected.into(), async |server| {
        let client = client_from(BYSTANDER_IP);
        let jpeg = sample_jpeg(64, 48, 1);
        let status = client
            .post(server.url("/frames?stream=xsite"))
            .header("origin", "http://evil.example")
            .header("sec-fetch-site", "cross-site")
            .body(jpeg.clone())
            .send()
            .await?
            .status()
            .as_u16();
        let listed = streams(server, None)
            .await?
            .iter()
            .any(|stream| stream["name"] == "xsite");
        let control = client
            .post(server.url("/frames?stream=control"))
            .body(jpeg)
            .send()
            .await?
            .status()
            .as_u16();
        Ok(Outcome {
            observed: format!(
                "{status}; stream created: {}; without browser headers: {control}",
                yes(listed)
            ),
            passed: status == 403 && !listed && control == 200,
        })
    })
    .await
}

/// 6a. A single-JPEG upload whose body comes at one byte a second.
pub async fn slow_upload(mode: Mode) -> anyhow::Result<Report> {
    let (flags, timeout) = upload_timeout(mode);
    let expected = format!("408 at the upload timeout ({} s)", timeout.as_secs());
    on_fresh_server(flags, expected, async |server| {
        let head = "POST /frames?stream=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n";
        trickled(server, head, b"\xff", timeout).await
    })
    .await
}

/// 9. A chunked upload whose chunks come one byte a second: the ingest idle timer is reset by
///    every chunk, so only the upload timeout can end it.
pub async fn trickled_chunks(mode: Mode) -> anyhow::Result<Report> {
    let (flags, timeout) = upload_timeout(mode);
    let expected = format!(
        "408 at the upload timeout ({} s), though a chunk comes every second",
        timeout.as_secs()
    );
    on_fresh_server(flags, expected, async |server| {
        let head = "POST /frames?stream=trickle HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n";
        trickled(server, head, b"1\r\nX\r\n", timeout).await
    })
    .await
}

/// The upload timeout of the short and long forms, and the flags that set it.
fn upload_timeout(mode: Mode) -> (Vec<String>, Duration) {
    mode.pick(
        (owned(&["--upload-timeout", "3s"]), Duration::from_secs(3)),
        (vec![], Duration::from_secs(60)),
    )
}

/// Sends `head`, then `piece` every second, and checks for 408 at `timeout`.
async fn trickled(
    server: &Server,
    head: &str,
    piece: &'static [u8],
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let socket = connect_from(BYSTANDER_IP, server.addr, None).await?;
    let (mut read, mut write) = socket.into_split();
    let started = Instant::now();
    write.write_all(head.as_bytes()).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        loop {
            if write.write_all(piece).await.is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (answer, _) = read_answer(&mut read, timeout + Duration::from_secs(10)).await;
    let took = started.elapsed();
    writer.abort();
    let on_time =
        took + Duration::from_millis(500) >= timeout && took <= timeout + Duration::from_secs(2);
    Ok(Outcome {
        observed: format!(
            "{} after {:.1} s ({} pieces of the body sent)",
            answer,
            took.as_secs_f64(),
            sent.load(Ordering::Relaxed)
        ),
        passed: answer == Answer::Status(408) && on_time,
    })
}

/// 6b. Many clients each send most of a maximum-size frame and then keep their upload alive
///     with a byte now and then, to make the server hold all of it.
pub async fn parked_uploads(mode: Mode) -> anyhow::Result<Report> {
    let count = mode.pick(20, 80);
    let budget = mode.pick(64 * MIB, 256 * MIB);
    let timeout = Duration::from_secs(mode.pick(6, 60));
    let flags = mode.pick(
        owned(&[
            "--max-upload-buffer-bytes",
            &budget.to_string(),
            "--upload-timeout",
            "6s",
        ]),
        vec![],
    );
    let part = (7.9 * MIB as f64) as u64;
    let expected = format!(
        "{count} uploads from as many addresses send 7.9 MiB each, then a byte a second: \
         they hold ≤ {} MiB in all (others 503), RSS growth ≤ {} MiB (2 × that); the parked \
         ones 408 at the upload timeout ({} s); then a 1 MiB frame is taken (200)",
        budget / MIB,
        2 * budget / MIB,
        timeout.as_secs()
    );
    on_fresh_server(flags, expected, async |server| {
        let before = server.rss();
        let body = Arc::new(vec![0x55; part as usize]);
        let started = Instant::now();
        let uploads: Vec<Arc<Upload>> = (0..count).map(|_| Arc::new(Upload::default())).collect();
        let tasks: Vec<_> = uploads
            .iter()
            .enumerate()
            .map(|(n, upload)| {
                let (addr, body, upload) = (server.addr, body.clone(), upload.clone());
                tokio::spawn(park(addr, n, body, upload, started, timeout))
            })
            .collect();

        for task in tasks {
            task.await?;
        }
        let peak = server.peak_rss();
        let ends: Vec<(Answer, Duration, u64)> = uploads
            .iter()
            .map(|upload| {
                let end = upload.answer.lock().unwrap().clone();
                end.unwrap_or((Answer::Silent, Duration::ZERO, 0))
            })
            .collect();
        let timed_out: Vec<_> = ends
            .iter()
            .filter(|(answer, _, _)| *answer == Answer::Status(408))
            .collect();
        let refused: Vec<_> = ends
            .iter()
            .filter(|(answer, _, _)| *answer == Answer::Status(503))
            .collect();
        let mut others = Tally::default();
        for (answer, _, _) in &ends {
            if !matches!(answer, Answer::Status(408 | 503)) {
                others.add(answer);
            }
        }
        let response = client_from(BYSTANDER_IP)
            .post(server.url("/frames?stream=after"))
            .header("content-type", "image/jpeg")
            .body(big_jpeg())
            .send()
            .await?;
        let after = response.status().as_u16();
        let after_said = if after == 200 {
            String::new()
        } else {
            format!(" {}", response.text().await?)
        };

        // Uploads that lasted until the timeout were all held at once, each with what it sent.
        let held: u64 = timed_out.iter().map(|(_, _, sent)| *sent).sum();
        let parked = timed_out
            .iter()
            .filter(|(_, _, sent)| *sent >= part)
            .count();
        let growth = peak.saturating_sub(before);
        let observed = format!(
            "{} held until 408 at {} s ({parked} with all 7.9 MiB sent), {} MiB together; {} \
             refused with 503 after {} MiB sent; other answers: {}; peak RSS +{} MiB; then the \
             1 MiB frame: {after}{after_said}",
            timed_out.len(),
            range(timed_out.iter().map(|(_, at, _)| at.as_secs_f64())),
            mib(held),
            refused.len(),
            range(refused.iter().map(|(_, _, sent)| *sent as f64 / MIB as f64)),
            if others.is_empty() {
                "none".into()
            } else {
                others.to_string()
            },
            mib(growth),
        );
        let overflow_expected = count as u64 * part > budget;
        Ok(Outcome {
            observed,
            passed: held <= budget
                && parked == timed_out.len()
                && (!overflow_expected || !refused.is_empty())
                && others.is_empty()
                && growth <= 2 * budget
                && after == 200,
        })
    })
    .await
}

/// How far one parked upload has got.
#[derive(Default)]
struct Upload {
    /// Bytes of the 7.9 MiB part sent.
    sent: AtomicU64,
    /// The answer, when it came, and how much had been sent then.
    answer: std::sync::Mutex<Option<(Answer, Duration, u64)>>,
}

/// The `n`th parked upload, from an address of its own to stream `parked`: sends `body` as
/// most of an 8 MiB frame, then a byte a second,
/// until answered (or `timeout` and 10 s more have passed).
async fn park(
    addr: std::net::SocketAddr,
    n: usize,
    body: Arc<Vec<u8>>,
    upload: Arc<Upload>,
    started: Instant,
    timeout: Duration,
) {
    let socket = match connect_from(crowd_ip(n), addr, None).await {
        Ok(socket) => socket,
        Err(_) => {
            *upload.answer.lock().unwrap() = Some((Answer::Closed, started.elapsed(), 0));
            return;
        }
    };
    let (mut read, mut write) = socket.into_split();
    let head = format!(
        "POST /frames?stream=parked HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {}\r\n\r\n",
        MAX_FRAME_BYTES - 1
    );
    let progress = upload.clone();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        for piece in body.chunks(256 * 1024) {
            write.write_all(piece).await?;
            progress
                .sent
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            write.write_all(b"\x55").await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let (answer, _) = read_answer(&mut read, timeout + Duration::from_secs(10)).await;
    let sent = upload.sent.load(Ordering::Relaxed);
    *upload.answer.lock().unwrap() = Some((answer, started.elapsed(), sent));
    writer.abort();
}

/// 14a. A 9 MiB frame announced by Content-Length.
pub async fn oversized_with_length(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "413 at once (< 1 s), before any body byte is sent";
    on_fresh_server(vec![], expected.into(), async |server| {
        let mut socket = connect_from(BYSTANDER_IP, server.addr, None).await?;
        let head = format!(
            "POST /frames?stream=huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n\
             Content-Length: {}\r\n\r\n",
            9 * MIB
        );
        let started = Instant::now();
        socket.write_all(head.as_bytes()).await?;
        let (answer, _) = read_answer(&mut socket, Duration::from_secs(5)).await;
        let took = started.elapsed();
        Ok(Outcome {
            observed: format!("{} after {} ms, no body sent", answer, took.as_millis()),
            passed: answer == Answer::Status(413) && took < Duration::from_secs(1),
        })
    })
    .await
}

/// 14b. A frame without a length, sent chunked, that goes on for 64 MiB: 64 KiB every
///     [`PACE`], slower than loopback and the server read, so that what has been sent when the
///     413 comes is close to what the server read.
pub async fn oversized_chunked(_mode: Mode) -> anyhow::Result<Report> {
    let total = 64 * MIB;
    let expected = format!(
        "413 once the body passes 8 MiB, and nothing read past it: RSS growth ≤ 16 MiB, the \
         rest of a {} MiB body is not taken",
        total / MIB
    );
    on_fresh_server(vec![], expected, async |server| {
        let before = server.rss();
        let socket = connect_from(BYSTANDER_IP, server.addr, None).await?;
        let (mut read, mut write) = socket.into_split();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let writer = tokio::spawn(async move {
            let head = "POST /frames?stream=huge HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                        Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n";
            write.write_all(head.as_bytes()).await?;
            let data = vec![0xAB; 64 * 1024];
            let chunk = [format!("{:X}\r\n", data.len()).as_bytes(), &data, b"\r\n"].concat();
            while counter.load(Ordering::Relaxed) < total {
                write.write_all(&chunk).await?;
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(PACE).await;
            }
            write.write_all(b"0\r\n\r\n").await?;
            Ok::<(), std::io::Error>(())
        });
        let (answer, _) = read_answer(&mut read, Duration::from_secs(10)).await;
        let at_answer = sent.load(Ordering::Relaxed);
        // Whatever the sender manages after the answer went into kernel buffers or was read.
        let ended = tokio::time::timeout(Duration::from_secs(2), writer).await;
        let finally = sent.load(Ordering::Relaxed);
        let sender = match ended {
            Ok(Ok(Ok(()))) => "sent all of it".to_string(),
            Ok(Ok(Err(err))) => format!("was cut off ({})", err.kind()),
            Ok(Err(_)) => "failed".to_string(),
            Err(_) => "stalled (the server stopped reading)".to_string(),
        };
        let growth = server.peak_rss().saturating_sub(before);
        Ok(Outcome {
            observed: format!(
                "{} after {} MiB sent; then the sender {sender} at {} MiB of {}; peak RSS +{} MiB",
                answer,
                mib(at_answer),
                mib(finally),
                total / MIB,
                mib(growth)
            ),
            passed: answer == Answer::Status(413)
                && growth <= 2 * MAX_FRAME_BYTES
                && finally < total,
        })
    })
    .await
}
