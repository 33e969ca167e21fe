//! The replay source: an MJPEG file, or a folder of JPEG files, played at a fixed rate, looping.
//!
//! Good for demos and for developing a page without a camera at hand. Frames are read as they
//! are played, so a long recording costs one read buffer, not its size in memory. A folder is
//! listed again at the start of each loop, so files added to it join the replay.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::frame::Frame;
use crate::hub::Channel;
use crate::mjpeg::{self, Framing, Piece, Splitter};
use crate::shutdown::Shutdown;
use crate::source_state::SourceState;

/// Bytes read from a file at a time.
const READ_BYTES: usize = 64 * 1024;
/// Pause before trying again when a pass found nothing to play.
const NOTHING_TO_PLAY_PAUSE: Duration = Duration::from_secs(1);

/// Plays `path` into `channel` at `fps`, looping, until shutdown.
pub async fn run(
    path: PathBuf,
    fps: u32,
    max_frame_bytes: usize,
    channel: Arc<Channel>,
    shutdown: Shutdown,
) {
    tracing::info!(stream = %channel.name(), path = %path.display(), fps, "replaying");
    let mut frames = if path.is_dir() {
        Frames::Folder {
            folder: path,
            queue: VecDeque::new(),
        }
    } else {
        Frames::File {
            path,
            file: None,
            splitter: None,
            ready: VecDeque::new(),
        }
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticks.tick() => {}
        }
        match frames.next(max_frame_bytes, &channel).await {
            Ok(frame) => {
                channel.publish(&frame);
            }
            Err(problem) => {
                channel.set_state(SourceState::Offline, Some(&problem));
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(NOTHING_TO_PLAY_PAUSE) => {}
                }
            }
        }
    }
}

/// Where the next frame comes from.
#[expect(
    clippy::large_enum_variant,
    reason = "one per replay source, made once and never moved"
)]
enum Frames {
    /// An MJPEG or concatenated-JPEG file, read a chunk at a time.
    File {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        /// Made from the first bytes of each pass, which tell the framing.
        splitter: Option<Splitter>,
        /// Pieces split off but not played yet.
        ready: VecDeque<Piece>,
    },
    /// A folder of `.jpg` files, played in name order.
    Folder {
        folder: PathBuf,
        /// The files still to play in this pass.
        queue: VecDeque<PathBuf>,
    },
}

impl Frames {
    /// The next valid frame, starting over at the end; fails if a whole pass held none.
    async fn next(&mut self, max_frame_bytes: usize, channel: &Channel) -> Result<Frame, String> {
        let mut started_over = false;
        loop {
            let candidate = match self {
                Frames::File {
                    path,
                    file,
                    splitter,
                    ready,
                } => {
                    if let Some(piece) = ready.pop_front() {
                        piece
                    } else {
                        let Some(open) = file else {
                            if std::mem::replace(&mut started_over, true) {
                                return Err(format!("no valid JPEG in {}", path.display()));
                            }
                            *file =
                                Some(tokio::fs::File::open(&*path).await.map_err(|err| {
                                    format!("cannot open {}: {err}", path.display())
                                })?);
                            *splitter = None;
                            continue;
                        };
                        let mut chunk = vec![0; READ_BYTES];
                        let read = open
                            .read(&mut chunk)
                            .await
                            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                        let splitter = splitter.get_or_insert_with(|| {
                            let framing =
                                mjpeg::sniff(&chunk[..read]).unwrap_or(Framing::Concatenated);
                            Splitter::new(framing, max_frame_bytes)
                        });
                        if read == 0 {
                            *file = None;
                            ready.extend(std::iter::from_fn(|| splitter.finish()));
                        } else {
                            splitter.push(&chunk[..read]);
                            ready.extend(std::iter::from_fn(|| splitter.next_piece()));
                        }
                        continue;
                    }
                }
                Frames::Folder { folder, queue } => {
                    let Some(next) = queue.pop_front() else {
                        if std::mem::replace(&mut started_over, true) {
                            return Err(format!("no valid JPEG in {}", folder.display()));
                        }
                        *queue = list_jpegs(folder).await?;
                        continue;
                    };
                    match tokio::fs::read(&next).await {
                        Ok(bytes) if bytes.len() <= max_frame_bytes => Piece::Frame(bytes.into()),
                        Ok(_) => Piece::Rejected(format!("{} is too large", next.display())),
                        Err(err) => Piece::Rejected(format!("{}: {err}", next.display())),
                    }
                }
            };
            let rejected = match candidate {
                Piece::Frame(jpeg) => match Frame::from_jpeg(jpeg) {
                    Ok(frame) => return Ok(frame),
                    Err(err) => err.to_string(),
                },
                Piece::Rejected(reason) => reason,
            };
            tracing::debug!(stream = %channel.name(), %rejected, "replay frame rejected");
            channel.record_rejected();
        }
    }
}

/// The `.jpg` and `.jpeg` files in `folder`, sorted by name.
async fn list_jpegs(folder: &Path) -> Result<VecDeque<PathBuf>, String> {
    let cannot = |err: std::io::Error| format!("cannot list {}: {err}", folder.display());
    let mut entries = tokio::fs::read_dir(folder).await.map_err(cannot)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(cannot)? {
        let path = entry.path();
        let is_jpeg = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg"));
        if is_jpeg {
            files.push(path);
        }
    }
    files.sort();
    Ok(files.into())
}
