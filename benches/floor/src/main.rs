//! `floor`: about the least work a server can do to fan JPEG frames out as framecast's SSE
//! events, the reference framecast is measured against in `benches/run.sh`.
//!
//! One thread, one edge-triggered epoll set (through `mio`), no HTTP framework. Each frame
//! published with `POST /frames` is encoded once into the exact bytes framecast puts on the
//! wire for it (its SSE event as one HTTP chunk), and that one buffer is written to every
//! `GET /events` subscriber with non-blocking writes. A subscriber keeps only a reference to
//! the buffer it is writing and how far into it it got; one still writing an older frame when
//! a new one arrives finishes it, then jumps to the newest (latest-frame-wins, as framecast).
//! Sockets get framecast's settings (`TCP_NODELAY`, a 256 KiB `SO_SNDBUF`).
//!
//! Left out on purpose, because the benchmark does not exercise them: framecast's
//! `event: status` and keep-alive comments, other routes, CORS, limits on streams and
//! subscribers, idle timeouts, graceful shutdown (the benchmark kills it). It speaks just the
//! HTTP/1.1 the load generator speaks: `GET /events?stream=NAME`, and
//! `POST /frames?stream=NAME` with a `Content-Length` JPEG body on a keep-alive connection,
//! answered with `{"stream":…,"seq":…,"width":…,"height":…}` like framecast.
//!
//! # Layout
//! - [`event`]: a frame's wire bytes, built once per frame; pure code.
//! - [`request`]: the requests the floor understands; pure code.
//! - [`server`]: the event loop.

mod event;
mod request;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// The fan-out floor for framecast's benchmark: one thread, raw epoll, one shared buffer per
/// frame written to every subscriber.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Kernel send buffer per connection in bytes, 0 to leave it to the kernel (framecast's
    /// `--send-buffer-bytes` default).
    #[arg(long, default_value_t = 256 * 1024)]
    send_buffer_bytes: usize,
    /// `retry:` sent at the start of every event stream, ms (framecast's default).
    #[arg(long, default_value_t = 2000)]
    retry_ms: u32,
    /// Largest JPEG accepted, bytes (framecast's default).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_frame_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = server::Config {
        send_buffer_bytes: cli.send_buffer_bytes,
        retry_ms: cli.retry_ms,
        max_frame_bytes: cli.max_frame_bytes,
    };
    let server = match server::Server::bind(cli.bind, config) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("floor: cannot listen on {}: {err}", cli.bind);
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        // One line on stdout, like framecast's, for scripts that started us on port 0.
        Ok(addr) => println!("floor listening on http://{addr}"),
        Err(err) => {
            eprintln!("floor: no local address: {err}");
            return ExitCode::FAILURE;
        }
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("floor: {err}");
            ExitCode::FAILURE
        }
    }
}
