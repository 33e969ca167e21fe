//! The stdin source: MJPEG or concatenated JPEGs piped in, e.g. from `ffmpeg -f mjpeg -`.
//!
//! Standard input is read on a thread of its own, not through tokio's blocking pool: a read
//! that never returns (nothing piped in) must not keep the runtime from shutting down.

use std::io::Read;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::hub::Channel;
use crate::mjpeg::{self, Framing};
use crate::shutdown::Shutdown;
use crate::split_publisher::SplitPublisher;

/// Bytes asked for per read.
const READ_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reading thread and the publisher.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Publishes the frames on standard input into `channel` until it ends or shutdown.
pub async fn run(channel: Arc<Channel>, max_frame_bytes: usize, shutdown: Shutdown) {
    let (sender, mut chunks) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::Builder::new()
        .name("framecast-stdin".into())
        .spawn(move || read_stdin(sender))
        .expect("can start the stdin thread");
    tracing::info!(stream = %channel.name(), "reading frames from standard input");

    let mut head = Vec::new();
    let mut publisher: Option<SplitPublisher> = None;
    loop {
        let chunk = tokio::select! {
            () = shutdown.wait() => return,
            chunk = chunks.recv() => chunk,
        };
        let Some(chunk) = chunk else { break };
        match publisher.as_mut() {
            Some(publisher) => publisher.push(&chunk),
            None => {
                // The first bytes tell multipart from bare JPEGs; garbage first means bare JPEGs,
                // whose splitter resynchronises on the next start-of-image marker.
                head.extend_from_slice(&chunk);
                let framing = match mjpeg::sniff(&head) {
                    Some(framing) => framing,
                    None if head.len() >= mjpeg::SNIFF_BYTES => Framing::Concatenated,
                    None => continue,
                };
                let mut started = SplitPublisher::new(framing, max_frame_bytes, channel.clone());
                started.push(&std::mem::take(&mut head));
                publisher = Some(started);
            }
        }
    }
    let mut publisher = publisher.unwrap_or_else(|| {
        let mut late = SplitPublisher::new(Framing::Concatenated, max_frame_bytes, channel.clone());
        late.push(&head);
        late
    });
    publisher.finish();
    tracing::info!(
        stream = %channel.name(),
        frames = publisher.frames,
        rejected = publisher.rejected,
        "standard input ended; the last frame stays available"
    );
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
