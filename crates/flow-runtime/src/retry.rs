//! Retry policy as a pure function: the delay before the next attempt, or none.

use std::time::Duration;

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (RETRY_ATTEMPTS).
    pub retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { retries: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based), or `None` once retries are spent. `jitter` is a
    /// random number in [0, 1). Equal jitter (half fixed, half random) keeps delays growing from
    /// one retry to the next while spreading out callers that failed together.
    pub fn delay(&self, retry: u32, jitter: f64) -> Option<Duration> {
        if retry == 0 || retry > self.retries {
            return None;
        }
        let factor = 2u32.saturating_pow(retry - 1);
        let exp = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = exp / 2;
        Some(half + half.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { retries: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) }
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds() {
        let p = policy();
        assert_eq!(p.delay(1, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(1, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(3, 0.0), Some(Duration::from_millis(200)));
        assert_eq!(p.delay(3, 1.0), Some(Duration::from_millis(400)));
        // Worst case for growth: highest jitter on one retry, lowest on the next.
        for r in 1..4 {
            assert!(p.delay(r + 1, 0.0) >= p.delay(r, 1.0), "retry {r}");
        }
    }

    #[test]
    fn no_delay_once_retries_are_spent() {
        let p = policy();
        assert!(p.delay(4, 0.5).is_some());
        assert_eq!(p.delay(5, 0.5), None);
        assert_eq!(RetryPolicy { retries: 0, ..p }.delay(1, 0.5), None);
    }

    #[test]
    fn delay_is_capped() {
        let p = RetryPolicy { retries: 40, ..policy() };
        assert_eq!(p.delay(30, 1.0), Some(Duration::from_secs(1)));
    }
}
