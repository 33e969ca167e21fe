//! The stdin source: MJPEG or concatenated JPEGs piped in, e.g. from `ffmpeg -f mjpeg -`.
//!
//! Standard input is read on a thread of its own, not through tokio's blocking pool: a read
//! that never returns (nothing piped in) must not keep the runtime from shutting down.

use std::io::Read;

use tokio::sync::mpsc;

use crate::publish::{Publisher, SplitPublisher};
use crate::shutdown::Shutdown;
use crate::status::State;

/// Bytes asked for per read.
const READ_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reading thread and the publisher.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The stdin source's settings.
#[derive(Debug, Clone)]
pub struct Stdin {
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
}

impl Stdin {
    /// Publishes the frames on standard input into `stream` until it ends or shutdown.
    pub async fn run(self, publisher: Publisher, shutdown: Shutdown) {
        let stream = publisher.stream().clone();
        let (sender, mut chunks) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        std::thread::Builder::new()
            .name("framecast-stdin".into())
            .spawn(move || read_stdin(sender))
            .expect("can start the stdin thread");
        tracing::info!(stream = %stream.name(), "reading frames from standard input");

        stream.set_status(State::Connecting, Some("waiting for standard input"));
        let mut publisher = SplitPublisher::sniffing(self.max_frame_bytes, publisher);
        loop {
            let chunk = tokio::select! {
                () = shutdown.wait() => return,
                chunk = chunks.recv() => chunk,
            };
            let Some(chunk) = chunk else { break };
            publisher.push(&chunk).await;
        }
        publisher.finish().await;
        tracing::info!(
            stream = %stream.name(),
            frames = publisher.frames,
            rejected = publisher.rejected,
            "standard input ended; the last frame stays available"
        );
        stream.set_status(State::Offline, Some("standard input ended"));
    }
}

/// Reads stdin to its end, handing chunks to the async side; stops if that side is gone.
fn read_stdin(sender: mpsc::Sender<Vec<u8>>) {
    let mut stdin = std::io::stdin().lock();
    let mut buffer = vec![0u8; READ_BYTES];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!(%err, "reading standard input failed");
                return;
            }
        }
    }
}
