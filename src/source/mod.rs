//! Sources: producers that run inside the server and publish into a stream on their own.
//!
//! The built-in test pattern feeds `default` unless turned off, so that a fresh `cargo run`
//! shows a live picture at once; `--source NAME=-` feeds a stream from standard input.

mod stdin;
mod test_pattern;

use std::sync::Arc;

use crate::config::{Config, SourceInput};
use crate::error::Error;
use crate::hub::{Feed, Hub};
use crate::shutdown::Shutdown;
use crate::stream_name::StreamName;

/// Starts the sources the configuration asks for; each runs until `shutdown` fires.
pub fn spawn_all(config: &Config, hub: &Arc<Hub>, shutdown: &Shutdown) -> Result<(), Error> {
    if !config.no_test_pattern {
        let channel = hub.publisher(&StreamName::parse(None)?, Feed::TestPattern)?;
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
        }
    }
    Ok(())
}
