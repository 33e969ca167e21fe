//! The replay source: an MJPEG file, or a folder of JPEG files, played at a fixed rate, looping.
//!
//! Good for demos and for developing a page without a camera at hand. Frames are read as they
//! are played, so a long recording costs one read buffer, not its size in memory. A folder is
//! listed again at the start of each loop, so files added to it join the replay.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::mjpeg::{Piece, Splitter};
use crate::publish::{Publisher, publish_piece};
use crate::shutdown::Shutdown;
use crate::status::State;

/// Bytes read from a file at a time.
const READ_BYTES: usize = 64 * 1024;
/// Pause before trying again when a pass found nothing to play.
const NOTHING_TO_PLAY_PAUSE: Duration = Duration::from_secs(1);

/// A replay's settings.
#[derive(Debug, Clone)]
pub struct Replay {
    /// An MJPEG (or concatenated-JPEG) file, or a folder of JPEG files.
    pub path: PathBuf,
    /// Frames per second.
    pub fps: u32,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
}

impl Replay {
    /// Fails, saying why, if the file or folder cannot be read now, so that a replay that could
    /// never play is refused at startup rather than reported later as offline.
    pub fn check_readable(&self) -> Result<(), String> {
        let path = &self.path;
        let readable = if path.is_dir() {
            std::fs::read_dir(path).map(drop)
        } else {
            std::fs::File::open(path).map(drop)
        };
        readable.map_err(|err| format!("cannot read {}: {err}", path.display()))
    }

    /// Plays the file or folder into `stream` at its rate, looping, until shutdown.
    pub async fn run(self, publisher: Publisher, shutdown: Shutdown) {
        let stream = publisher.stream();
        let Replay {
            path,
            fps,
            max_frame_bytes,
        } = self;
        tracing::info!(stream = %stream.name(), path = %path.display(), fps, "replaying");
        let mut frames = if path.is_dir() {
            Frames::Folder(FolderFrames {
                folder: path,
                max_frame_bytes,
                queue: VecDeque::new(),
            })
        } else {
            Frames::File(Box::new(FileFrames {
                path,
                file: None,
                splitter: Splitter::sniffing(max_frame_bytes),
                max_frame_bytes,
                chunk: vec![0; READ_BYTES],
                ready: VecDeque::new(),
            }))
        };
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = ticks.tick() => {}
            }
            if let Err(problem) = frames.publish_next(&publisher).await {
                stream.set_status(State::Offline, Some(&problem));
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(NOTHING_TO_PLAY_PAUSE) => {}
                }
            }
        }
    }
}

/// Where the next frame comes from.
enum Frames {
    File(Box<FileFrames>),
    Folder(FolderFrames),
}

/// An MJPEG or concatenated-JPEG file, read a chunk at a time.
struct FileFrames {
    path: PathBuf,
    /// Open during a pass; `None` between passes.
    file: Option<tokio::fs::File>,
    /// Fresh for each pass: its first bytes tell the framing.
    splitter: Splitter,
    max_frame_bytes: usize,
    /// The read buffer, reused for every read.
    chunk: Vec<u8>,
    /// Pieces split off but not played yet.
    ready: VecDeque<Piece>,
}

/// A folder of `.jpg` files, played in name order.
struct FolderFrames {
    folder: PathBuf,
    max_frame_bytes: usize,
    /// The files still to play in this pass.
    queue: VecDeque<PathBuf>,
}

impl Frames {
    /// Publishes the next valid frame, starting over at the end; fails if a whole pass held
    /// none.
    async fn publish_next(&mut self, publisher: &Publisher) -> Result<(), String> {
        // Set when a pass starts; a second start without a frame means there is none to play.
        let mut started_over = false;
        loop {
            let piece = match self {
                Frames::File(file) => file.next_piece(&mut started_over).await?,
                Frames::Folder(folder) => folder.next_piece(&mut started_over).await?,
            };
            if publish_piece(publisher, piece).await.is_ok() {
                return Ok(());
            }
        }
    }
}

impl FileFrames {
    /// The next piece of the file, reopening it at its end.
    async fn next_piece(&mut self, started_over: &mut bool) -> Result<Piece, String> {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                return Ok(piece);
            }
            let Some(file) = &mut self.file else {
                if std::mem::replace(started_over, true) {
                    return Err(format!("no valid JPEG in {}", self.path.display()));
                }
                let opened = tokio::fs::File::open(&self.path).await;
                self.file = Some(
                    opened.map_err(|err| format!("cannot open {}: {err}", self.path.display()))?,
                );
                self.splitter = Splitter::sniffing(self.max_frame_bytes);
                continue;
            };
            let read = file
                .read(&mut self.chunk)
                .await
                .map_err(|err| format!("cannot read {}: {err}", self.path.display()))?;
            let splitter = &mut self.splitter;
            if read == 0 {
                self.file = None;
                self.ready.extend(std::iter::from_fn(|| splitter.finish()));
            } else {
                splitter.push(&self.chunk[..read]);
                self.ready
                    .extend(std::iter::from_fn(|| splitter.next_piece()));
            }
        }
    }
}

impl FolderFrames {
    /// The next file's bytes, listing the folder again at the start of each pass.
    async fn next_piece(&mut self, started_over: &mut bool) -> Result<Piece, String> {
        let next = loop {
            if let Some(next) = self.queue.pop_front() {
                break next;
            }
            if std::mem::replace(started_over, true) {
                return Err(format!("no valid JPEG in {}", self.folder.display()));
            }
            self.queue = list_jpegs(&self.folder).await?;
        };
        Ok(match tokio::fs::read(&next).await {
            Ok(bytes) if bytes.len() <= self.max_frame_bytes => Piece::Frame(bytes.into()),
            Ok(_) => Piece::Rejected(format!("{} is too large", next.display())),
            Err(err) => Piece::Rejected(format!("{}: {err}", next.display())),
        })
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
