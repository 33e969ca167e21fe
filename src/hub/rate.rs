//! `FrameRate`: the ingest frame rate, estimated from the most recent publish times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the ingest frame rate is measured.
const WINDOW: Duration = Duration::from_secs(2);
/// Most publish times kept (covers the window at 120 fps).
const SAMPLES: usize = 240;

/// The last [`SAMPLES`] publish times of a stream.
#[derive(Debug, Default)]
pub struct FrameRate {
    times: VecDeque<Instant>,
}

impl FrameRate {
    /// Notes a frame published at `at`.
    pub fn record(&mut self, at: Instant) {
        if self.times.len() == SAMPLES {
            self.times.pop_front();
        }
        self.times.push_back(at);
    }

    /// When the newest frame was published, `None` before the first.
    pub fn last(&self) -> Option<Instant> {
        self.times.back().copied()
    }

    /// Frames per second over the publish times within [`WINDOW`] of `now`, to one decimal.
    pub fn per_second(&self, now: Instant) -> f64 {
        let mut in_window = self
            .times
            .iter()
            .filter(|at| now.duration_since(**at) <= WINDOW);
        let Some(first) = in_window.next() else {
            return 0.0;
        };
        let (intervals, last) = in_window.fold((0usize, first), |(n, _), at| (n + 1, at));
        if intervals == 0 || last <= first {
            return 0.0;
        }
        let span = last.duration_since(*first).as_secs_f64();
        (intervals as f64 / span * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_intervals_in_the_window() {
        let start = Instant::now();
        let mut rate = FrameRate::default();
        for i in 0..31 {
            rate.record(start + Duration::from_millis(i * 1000 / 30));
        }
        let now = rate.last().unwrap();
        let fps = rate.per_second(now);
        assert!((fps - 30.0).abs() < 0.5, "{fps}");
        assert_eq!(rate.per_second(start + Duration::from_secs(10)), 0.0);
        assert_eq!(FrameRate::default().per_second(start), 0.0);
    }

    #[test]
    fn keeps_a_bounded_number_of_samples() {
        let start = Instant::now();
        let mut rate = FrameRate::default();
        for i in 0..(SAMPLES as u64 * 3) {
            rate.record(start + Duration::from_millis(i));
        }
        assert_eq!(rate.times.len(), SAMPLES);
    }
}
