//! Pacing a provider: a token bucket refilled at the provider's rate (messages per second), with
//! a burst of one second's worth. Each replica paces its own sends, so a deployment's rate is
//! the configured rate times its replicas (set it per replica: docs/notifications.md).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket.
pub struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` tokens a second, starting full.
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, at) = &mut *state;
                let now = Instant::now();
                *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
                *at = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - *tokens) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let bucket = TokenBucket::new(10);
        let start = Instant::now();
        for _ in 0..10 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1), "a second's worth goes at once");
        for _ in 0..20 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1_990) && elapsed < Duration::from_millis(2_100), "{elapsed:?}: 20 more at 10/s");
    }
}
