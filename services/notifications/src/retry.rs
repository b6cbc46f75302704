//! When to try a failing delivery again: exponential backoff with full jitter (a random delay
//! between zero and the exponential bound, so that messages failed together by a provider's
//! outage do not come back together), capped, for a bounded number of attempts; after the
//! last, the message is dead-lettered with its reason.

use std::time::Duration;

/// A retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The bound of the first retry's delay.
    pub base: Duration,
    /// The largest bound.
    pub cap: Duration,
    /// Attempts in all, the first included; after the last, the message is dead-lettered.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 2 s, 4 s, 8 s … up to 10 min, 12 attempts: a provider may be down about an hour before a
    /// message is given up.
    fn default() -> Self {
        Self { base: Duration::from_secs(2), cap: Duration::from_secs(600), max_attempts: 12 }
    }
}

impl Backoff {
    /// The delay's upper bound after `attempts` failed attempts (1 for the first failure).
    pub fn bound(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// The delay before the next attempt after `attempts` failures, `None` when it is time to
    /// dead-letter. `unit` is a uniform random number in [0, 1).
    pub fn next_delay(&self, attempts: u32, unit: f64) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        Some(self.bound(attempts).mul_f64(unit.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap() {
        let b = Backoff::default();
        let bounds: Vec<u64> = (1..=10).map(|n| b.bound(n).as_secs()).collect();
        assert_eq!(bounds, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600]);
        assert_eq!(b.bound(1_000).as_secs(), 600, "no overflow far out");
    }

    #[test]
    fn delays_are_jittered_within_the_bound_and_end_in_a_dead_letter() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1), max_attempts: 3 };
        assert_eq!(b.next_delay(1, 0.0), Some(Duration::ZERO));
        assert_eq!(b.next_delay(2, 0.5), Some(Duration::from_millis(100)), "half of the 200 ms bound");
        assert!(b.next_delay(2, 0.999).expect("delay") < Duration::from_millis(200));
        assert_eq!(b.next_delay(3, 0.5), None, "the third failure is the last attempt");
    }
}
