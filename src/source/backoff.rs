//! `Backoff`: how long to wait before reconnecting to a source that failed.
//!
//! Doubling delays spare a camera that is rebooting; the cap keeps recovery within half a
//! minute; the jitter keeps several framecast instances from reconnecting in lockstep.

use std::time::Duration;

/// Capped exponential backoff with jitter.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

/// Delays are stretched by up to this fraction at random.
const JITTER: f64 = 0.25;

impl Backoff {
    /// Delays start at `first` and double up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        base.mul_f64(1.0 + JITTER * fastrand::f64()).min(self.cap)
    }

    /// Back to the first delay, after the source has delivered again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<f64> = (0..8).map(|_| backoff.next_delay().as_secs_f64()).collect();
        for (delay, base) in delays
            .iter()
            .zip([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])
        {
            assert!(
                *delay >= base && *delay <= (base * 1.25_f64).min(30.0),
                "{delays:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(1250));
    }
}
