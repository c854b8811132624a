//! Reconnect delays: exponential, optionally jittered, capped, reset on success.
//!
//! The sequence comes from `backon`'s [`ExponentialBuilder`]. Its [`ExponentialBackoff`] is a
//! plain iterator with no way to start over, so [`Backoff`] keeps the builder and builds a
//! fresh iterator on [`Backoff::reset`]. Nothing here reads a clock: callers add the delay to
//! the instant they were given.
//!
//! Top-level rather than in [`bayeux`](crate::bayeux): the session retries handshakes and
//! connects with it, and the feed's healing and the bridge's agents retry with it too.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How long to wait between failed attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first delay (default 500 ms).
    pub initial: Duration,
    /// The largest delay, jitter included (default 2 s: however long an outage lasted, the
    /// next attempt after the network comes back is at most this far away).
    pub max: Duration,
    /// Each delay is the previous one times this (default 2; values below 1 count as 1).
    pub factor: f32,
    /// Add a random amount, up to the delay itself, so that many clients do not retry in
    /// step (default true; turn off for exact delays).
    pub jitter: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(2),
            factor: 2.0,
            jitter: true,
        }
    }
}

/// A resettable delay sequence built from a [`BackoffConfig`].
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    current: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// A sequence that starts at `config.initial`.
    pub fn new(config: &BackoffConfig) -> Self {
        let max = config.max.max(config.initial);
        // A factor below 1 (or NaN) would shrink the delays; backon does not guard it.
        let factor = if config.factor.is_finite() && config.factor >= 1.0 {
            config.factor
        } else {
            1.0
        };
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(config.initial)
            .with_max_delay(max)
            .with_factor(factor)
            .without_max_times();
        if config.jitter {
            builder = builder.with_jitter();
        }
        Backoff {
            builder,
            current: builder.build(),
            max,
        }
    }

    /// The next delay. Never longer than the configured maximum.
    pub fn next_delay(&mut self) -> Duration {
        // backon's jitter adds up to 100% on top of the capped delay; cap again so `max`
        // really is the maximum. The iterator is unbounded (`without_max_times`), the
        // fallback only keeps this total.
        // backon multiplies in f32; rounding to whole milliseconds (the unit of everything
        // else in Bayeux) keeps the sequence exact: 400 ms, not 400.000006 ms.
        let d = self.current.next().unwrap_or(self.max).min(self.max);
        Duration::from_millis(((d.as_micros() + 500) / 1000) as u64).min(self.max)
    }

    /// Starts over at the initial delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff::new(&BackoffConfig {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            factor: 2.0,
            jitter: false,
        })
    }

    #[test]
    fn delays_double_up_to_the_cap_and_stay_there() {
        let mut b = exact(500, 5_000);
        let got: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn reset_starts_again_at_the_initial_delay() {
        let mut b = exact(500, 30_000);
        b.next_delay();
        b.next_delay();
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn jittered_delays_stay_between_the_base_delay_and_the_cap() {
        let mut b = Backoff::new(&BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_millis(3_000),
            factor: 2.0,
            jitter: true,
        });
        let bases = [500u128, 1000, 2000, 3000, 3000, 3000];
        for base in bases {
            let d = b.next_delay().as_millis();
            assert!(d >= base && d <= 3000, "delay {d} outside [{base}, 3000]");
        }
    }

    #[test]
    fn a_factor_below_one_does_not_shrink_delays() {
        let mut b = Backoff::new(&BackoffConfig {
            initial: Duration::from_millis(400),
            max: Duration::from_secs(1),
            factor: 0.1,
            jitter: false,
        });
        assert_eq!(b.next_delay(), Duration::from_millis(400));
        assert_eq!(b.next_delay(), Duration::from_millis(400));
    }
}
