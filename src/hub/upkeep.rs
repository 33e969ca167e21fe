//! Upkeep: the periodic pass over every stream that marks quiet streams `stalled` and removes
//! pushed streams nobody has used for a while.
//!
//! Sources report their other states themselves, and a new frame makes a stream live again, so
//! stalling is the one state the hub decides on its own: a source that simply stops sending
//! cannot say so.

use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use super::stream::{SourceKind, Stream};
use crate::shutdown::Shutdown;
use crate::status::State;

/// Shortest pause between passes, however short `--stall-after` is.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(50);
/// Longest pause between passes: a stall is noticed within this of `--stall-after`.
const MAX_PASS_INTERVAL: Duration = Duration::from_secs(1);

impl Hub {
    /// Until shutdown: marks live streams `stalled` when no frame has come for `stall_after`,
    /// and removes pushed streams idle for the idle stream lifetime.
    pub async fn upkeep(&self, stall_after: Duration, shutdown: Shutdown) {
        let interval = (stall_after / 4).clamp(MIN_PASS_INTERVAL, MAX_PASS_INTERVAL);
        let mut passes = tokio::time::interval(interval);
        passes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = passes.tick() => {}
            }
            for stream in self.all() {
                mark_stalled_if_quiet(&stream, stall_after);
            }
            self.remove_idle_streams();
        }
    }

    /// Removes pushed streams that nobody holds (no upload, no subscriber): at once if only
    /// viewers ever asked for them, else once they have had no frame for the idle stream
    /// lifetime.
    fn remove_idle_streams(&self) {
        self.lock().retain(|name, stream| {
            // New holders are only made under this lock, so a count of one (the map's) stays so.
            let unused = stream.source() == SourceKind::Push && Arc::strong_count(stream) == 1;
            let keep =
                !unused || (stream.is_claimed() && stream.quiet_for() < self.idle_stream_lifetime);
            if !keep {
                tracing::debug!(stream = %name, "idle stream removed");
            }
            keep
        });
    }
}

/// Marks a live stream `stalled` if its newest frame is `stall_after` old.
fn mark_stalled_if_quiet(stream: &Stream, stall_after: Duration) {
    if stream.state() != State::Live {
        return;
    }
    if stream
        .last_frame_age()
        .is_some_and(|quiet| quiet >= stall_after)
    {
        let reason = format!("no frame for {} s", stall_after.as_secs_f64());
        stream.set_status(State::Stalled, Some(&reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{HubError, IDLE_STREAM_LIFETIME, Output};
    use crate::stream_name::StreamName;

    #[test]
    fn idle_pushed_streams_are_removed_once_nobody_holds_them() {
        let hub = Hub::with_limits(8, 8, 8, Duration::ZERO);
        let name = |text: &str| StreamName::parse(Some(text)).unwrap();
        let watched = hub
            .subscribe(&name("watched"), None, Output::Events)
            .unwrap();
        let pushing = hub.publisher(&name("pushing"), SourceKind::Push).unwrap();
        hub.subscribe(&name("left"), None, Output::Events).unwrap();
        hub.publisher(&name("camera"), SourceKind::Camera).unwrap();
        hub.remove_idle_streams();
        let names: Vec<String> = hub.summary().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["camera", "pushing", "watched"]);
        drop((watched, pushing));
        hub.remove_idle_streams();
        let names: Vec<String> = hub.summary().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["camera"], "source streams stay");
    }

    #[test]
    fn viewers_cannot_take_a_producers_place() {
        let hub = Hub::with_limits(2, 2, 8, IDLE_STREAM_LIFETIME);
        let name = |text: &str| StreamName::parse(Some(text)).unwrap();
        let _a = hub
            .subscribe(&name("made-up-a"), None, Output::Events)
            .unwrap();
        let b = hub
            .subscribe(&name("made-up-b"), None, Output::Events)
            .unwrap();
        assert!(matches!(
            hub.subscribe(&name("made-up-c"), None, Output::Events),
            Err(HubError::TooManyWaitingStreams(2))
        ));
        // Producers still get their names, up to their own limit.
        hub.publisher(&name("cam1"), SourceKind::Push).unwrap();
        hub.publisher(&name("made-up-a"), SourceKind::Push).unwrap();
        assert!(matches!(
            hub.publisher(&name("cam2"), SourceKind::Push),
            Err(HubError::TooManyStreams(2))
        ));
        // A waiting stream its viewers left goes at the next pass, however young.
        drop(b);
        hub.remove_idle_streams();
        let names: Vec<String> = hub.summary().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["cam1", "made-up-a"]);
        hub.subscribe(&name("made-up-c"), None, Output::Events)
            .unwrap();
    }
}
