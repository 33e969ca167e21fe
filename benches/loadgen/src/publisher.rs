//! The publisher: one keep-alive connection per stream sending a frame every `1/fps` seconds,
//! like a camera.
//!
//! It never sends faster than the clock: if a publish takes longer than one period, the ticks
//! it overran are skipped (a camera drops frames it cannot send), so they count as offered but
//! not accepted. A run with several streams runs one of these per stream, concurrently on the
//! same thread, with their ticks spread evenly over the period (cameras are not in step); the
//! measured window opens and closes at the same instants for all of them.
//!
//! Frames are numbered by framecast (its `seq`, from the publish reply) unless the generator
//! numbers them itself ([`Board::numbers_frames`]): for Nchan it writes the number into the
//! JSON envelope, for an MJPEG run into the JPEG ([`crate::mark`]).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

use crate::board::{Board, Output, Server};
use crate::{http, mark};

/// When the run's phases start and end, as the publisher saw them.
#[derive(Debug, Default)]
pub struct Published {
    /// Frames the clock asked for inside the window.
    pub offered: u64,
    /// Publishes inside the window the server answered with success.
    pub accepted: u64,
    /// Bytes of the JPEGs of those publishes (the request bodies).
    pub bytes_accepted: u64,
    /// Publishes inside the window answered with an error status.
    pub refused: u64,
    /// The first error status and body, if any.
    pub first_refusal: Option<String>,
    /// Round-trip time of each window publish, microseconds.
    pub round_trips_us: Vec<u32>,
    /// Last `seq` accepted.
    pub last_seq: u64,
    /// Length of the measured window.
    pub window: Duration,
}

/// What the loop needs to know about the run's timing.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// When publishing starts (every stream's warm-up counts from here).
    pub start: Instant,
    /// Frames per second.
    pub fps: f64,
    /// Publishing before the window opens.
    pub warmup: Duration,
    /// Length of the window.
    pub duration: Duration,
}

/// Publishes to stream `stream` of the board until the window closes, its ticks `phase` after
/// the schedule's. `on_window` is called as the window opens and as it closes.
pub async fn run(
    board: &Board,
    stream: usize,
    addr: SocketAddr,
    schedule: Schedule,
    phase: Duration,
    mut on_window: impl FnMut(bool),
) -> anyhow::Result<Published> {
    let mut conn = connect(addr).await?;
    let period = Duration::from_secs_f64(1.0 / schedule.fps);
    let mut ticks = tokio::time::interval_at(schedule.start + phase, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let name = &board.streams[stream];
    let window_opens = schedule.start + schedule.warmup;
    let window_closes = window_opens + schedule.duration;

    let mut out = Published {
        offered: (schedule.duration.as_secs_f64() * schedule.fps).round() as u64,
        ..Published::default()
    };
    let mut in_window = false;
    let mut next_seq = 1u64;
    let mut buf = Vec::with_capacity(4096);
    let mut body = Vec::new();
    for ordinal in 0usize.. {
        let tick = ticks.tick().await;
        if tick >= window_closes {
            break;
        }
        if !in_window && tick >= window_opens {
            in_window = true;
            board.window_start[stream].set(next_seq);
            on_window(true);
        }
        let frame_index = ordinal % board.frames.len();
        let frame = &board.frames[frame_index];
        let (path, content_type, payload): (&str, &str, &[u8]) = match (board.server, board.output)
        {
            (Server::Nchan, _) => {
                envelope(&mut body, name, next_seq, frame);
                ("/pub", "application/json", &body)
            }
            (Server::Framecast | Server::Floor, Output::Mjpeg) => {
                mark::write(&mut body, &frame.jpeg, next_seq);
                ("/frames", "image/jpeg", &body)
            }
            (Server::Framecast | Server::Floor, Output::Sse) => {
                ("/frames", "image/jpeg", &frame.jpeg)
            }
        };
        let head = format!(
            "POST {path}?stream={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            name,
            payload.len()
        );
        let payload_len = payload.len() as u64;
        let sent_at = Instant::now();
        board.note_sent(stream, next_seq, frame_index);
        let (status, reply) =
            match http::exchange(&mut conn, head.as_bytes(), payload, &mut buf).await {
                Ok(answer) => answer,
                Err(err) => {
                    // The server closed the connection (after an error reply, say): count the
                    // frame as refused and carry on with a new connection.
                    if in_window {
                        out.refused += 1;
                        out.first_refusal.get_or_insert_with(|| format!("{err:#}"));
                    }
                    if board.numbers_frames() {
                        // The server may have taken the frame before closing: its number must
                        // not be given to another.
                        next_seq += 1;
                    }
                    conn = connect(addr).await?;
                    continue;
                }
            };
        let round_trip = sent_at.elapsed();
        if (200..300).contains(&status) {
            let seq = if board.numbers_frames() {
                next_seq
            } else {
                let seq = framecast_seq(&reply)?;
                if seq != next_seq {
                    board.renumber(stream, next_seq, seq);
                }
                seq
            };
            out.last_seq = seq;
            next_seq = seq + 1;
            if in_window {
                out.accepted += 1;
                out.bytes_accepted += payload_len;
            }
        } else if in_window {
            out.refused += 1;
            out.first_refusal.get_or_insert_with(|| {
                format!("{status} {}", String::from_utf8_lossy(&reply).trim())
            });
        }
        if in_window {
            out.round_trips_us
                .push(round_trip.as_micros().min(u32::MAX as u128) as u32);
        }
    }
    out.window = window_opens.elapsed();
    on_window(false);
    Ok(out)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let conn = TcpStream::connect(addr)
        .await
        .with_context(|| format!("publisher connecting to {addr}"))?;
    conn.set_nodelay(true)?;
    Ok(conn)
}

/// The `seq` framecast gave a published frame.
fn framecast_seq(reply: &[u8]) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct Reply {
        seq: u64,
    }
    let reply: Reply = serde_json::from_slice(reply)
        .with_context(|| format!("publish reply {:?}", String::from_utf8_lossy(reply)))?;
    Ok(reply.seq)
}

/// Writes into `out` the finished event JSON that framecast would send for this frame, which is
/// what Nchan is given to publish.
fn envelope(out: &mut Vec<u8>, stream: &str, seq: u64, frame: &crate::frames::Frame) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or_default();
    out.clear();
    out.extend_from_slice(
        format!(
            "{{\"stream\":\"{stream}\",\"seq\":{seq},\"ts\":{ts},\"width\":{},\"height\":{},\
             \"size\":{},\"jpeg\":\"",
            frame.width,
            frame.height,
            frame.jpeg.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(frame.base64.as_bytes());
    out.extend_from_slice(b"\"}");
}
