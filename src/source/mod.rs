//! Sources: producers that run inside the server and publish into a stream on their own.
//!
//! The built-in test pattern feeds `default` unless turned off, so that a fresh `cargo run`
//! shows a live picture at once. `--source NAME=SPEC` feeds a stream from a camera URL
//! ([`camera`]), standard input ([`stdin`]) or a file or folder ([`replay`]).

mod backoff;
mod camera;
mod on_demand;
mod replay;
mod stdin;
mod test_pattern;

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::{Config, SourceInput};
use crate::hub::{Feed, Hub};
use crate::shutdown::Shutdown;
use crate::stream_name::StreamName;

/// How often a camera's snapshot URL is polled unless `fps=` says otherwise: a live picture
/// without loading a small camera's web server much.
pub const DEFAULT_SNAPSHOT_FPS: u32 = 5;
/// Rate of a file or folder replay unless `fps=` says otherwise (MJPEG files carry no timing).
pub const DEFAULT_REPLAY_FPS: u32 = 30;

/// Starts the sources the configuration asks for; each runs until `shutdown` fires.
///
/// The test pattern feeds `default` unless turned off or a `--source` feeds that stream.
pub fn spawn_all(config: &Config, hub: &Arc<Hub>, shutdown: &Shutdown) -> anyhow::Result<()> {
    let mut named = HashSet::new();
    for spec in &config.sources {
        if !named.insert(&spec.stream) {
            anyhow::bail!("stream {:?} is given two sources", spec.stream.as_str());
        }
    }
    let default = StreamName::parse(None)?;
    if !config.no_test_pattern && !named.contains(&default) {
        let channel = hub.publisher(&default, Feed::TestPattern)?;
        tokio::spawn(test_pattern::run(
            channel,
            config.test_pattern_fps,
            shutdown.clone(),
        ));
    }
    for spec in &config.sources {
        match spec.input {
            SourceInput::Stdin => {
                let channel = hub.publisher(&spec.stream, Feed::Stdin)?;
                tokio::spawn(stdin::run(
                    channel,
                    config.max_frame_bytes,
                    shutdown.clone(),
                ));
            }
            SourceInput::Camera(ref url) => {
                let channel = hub.publisher(&spec.stream, Feed::Camera)?;
                let camera = camera::Camera {
                    url: url.clone(),
                    snapshot_fps: spec.fps.unwrap_or(DEFAULT_SNAPSHOT_FPS),
                    linger: spec.linger.unwrap_or(config.linger),
                    always_on: spec.always_on || config.always_on,
                    connect_timeout: config.connect_timeout,
                    read_timeout: config.read_timeout,
                    max_frame_bytes: config.max_frame_bytes,
                };
                tokio::spawn(camera::run(camera, channel, shutdown.clone()));
            }
            SourceInput::File(ref path) => {
                let channel = hub.publisher(&spec.stream, Feed::File)?;
                tokio::spawn(replay::run(
                    path.clone(),
                    spec.fps.unwrap_or(DEFAULT_REPLAY_FPS),
                    config.max_frame_bytes,
                    channel,
                    shutdown.clone(),
                ));
            }
        }
    }
    Ok(())
}
