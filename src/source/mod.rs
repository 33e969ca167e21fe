//! Sources: producers that run inside the server and publish into a stream on their own.
//!
//! The built-in test pattern feeds `default` unless turned off, so that a fresh `cargo run`
//! shows a live picture at once. `--source NAME=SPEC` feeds a stream from a camera URL
//! (`camera.rs`), standard input (`stdin.rs`) or a file or folder (`replay.rs`).
//!
//! Every source has one shape: a [`Source`] is built from the configuration by [`plan`] (which
//! finds configuration mistakes before anything starts), and runs with
//! `run(stream, shutdown)` until `shutdown` fires, publishing through [`crate::publish`] and
//! reporting its state with [`Stream::set_status`].

mod backoff;
mod camera;
mod on_demand;
mod replay;
mod stdin;
mod test_pattern;

use std::collections::HashSet;

use crate::config::{Config, SourceInput};
use crate::hub::SourceKind;
use crate::publish::Publisher;
use crate::shutdown::Shutdown;
use crate::stream_name::StreamName;

/// How often a camera's snapshot URL is polled unless `fps=` says otherwise: a live picture
/// without loading a small camera's web server much.
pub const DEFAULT_SNAPSHOT_FPS: u32 = 5;
/// Rate of a file or folder replay unless `fps=` says otherwise (MJPEG files carry no timing).
pub const DEFAULT_REPLAY_FPS: u32 = 30;

/// A built-in producer, configured and ready to run into its stream.
#[derive(Debug, Clone)]
pub enum Source {
    /// The moving test pattern.
    TestPattern(test_pattern::TestPattern),
    /// Frames piped into standard input.
    Stdin(stdin::Stdin),
    /// A camera pulled over HTTP.
    Camera(camera::Camera),
    /// A file or folder played in a loop.
    Replay(replay::Replay),
}

impl Source {
    /// What kind of source this is, as `GET /streams` shows it.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::TestPattern(_) => SourceKind::TestPattern,
            Source::Stdin(_) => SourceKind::Stdin,
            Source::Camera(_) => SourceKind::Camera,
            Source::Replay(_) => SourceKind::File,
        }
    }

    /// Publishes through `publisher` until `shutdown` fires (or, for stdin, the input ends).
    pub async fn run(self, publisher: Publisher, shutdown: Shutdown) {
        match self {
            Source::TestPattern(source) => source.run(publisher, shutdown).await,
            Source::Stdin(source) => source.run(publisher, shutdown).await,
            Source::Camera(source) => source.run(publisher, shutdown).await,
            Source::Replay(source) => source.run(publisher, shutdown).await,
        }
    }
}

/// The sources the configuration asks for, each with the stream it feeds.
///
/// Refuses two sources for one stream. The test pattern feeds `default` unless turned off or a
/// `--source` feeds that stream.
pub fn plan(config: &Config) -> anyhow::Result<Vec<(StreamName, Source)>> {
    let sources = config.sources().map_err(anyhow::Error::msg)?;
    let mut named = HashSet::new();
    for spec in &sources {
        if !named.insert(&spec.stream) {
            anyhow::bail!("stream {:?} is given two sources", spec.stream.as_str());
        }
    }
    let mut planned = Vec::new();
    let default = StreamName::parse(None)?;
    if !config.no_test_pattern && !named.contains(&default) {
        let source = test_pattern::TestPattern {
            fps: config.test_pattern_fps,
        };
        planned.push((default, Source::TestPattern(source)));
    }
    for spec in &sources {
        let source = match spec.input {
            SourceInput::Stdin => Source::Stdin(stdin::Stdin {
                max_frame_bytes: config.max_frame_bytes,
            }),
            SourceInput::Camera(ref url) => Source::Camera(camera::Camera {
                url: url.clone(),
                snapshot_fps: spec.fps.unwrap_or(DEFAULT_SNAPSHOT_FPS),
                linger: spec.linger.unwrap_or(config.linger),
                always_on: spec.always_on || config.always_on,
                connect_timeout: config.connect_timeout,
                read_timeout: config.read_timeout,
                max_frame_bytes: config.max_frame_bytes,
            }),
            SourceInput::File(ref path) => {
                let replay = replay::Replay {
                    path: path.clone(),
                    fps: spec.fps.unwrap_or(DEFAULT_REPLAY_FPS),
                    max_frame_bytes: config.max_frame_bytes,
                };
                replay
                    .check_readable()
                    .map_err(|err| anyhow::anyhow!("stream {:?}: {err}", spec.stream.as_str()))?;
                Source::Replay(replay)
            }
        };
        planned.push((spec.stream.clone(), source));
    }
    Ok(planned)
}
