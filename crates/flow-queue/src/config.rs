use std::time::Duration;

use crate::QueueError;

/// How a [`Queue`](crate::Queue) stores and schedules jobs. Every process sharing a queue
/// should use the same values.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Prefix of every key (default `flow:queue:`); tests give each run its own.
    pub prefix: String,
    /// How long a delivery stays with its worker without a renewal before another worker may
    /// reclaim it (default 30 s; the host reads `FLOW_JOB_LEASE_MS`). Workers renew every third
    /// of it.
    pub lease: Duration,
    /// Attempts a job gets when its enqueuer does not say (default 3).
    pub default_max_attempts: u32,
    /// First retry delay; it doubles per attempt (default 1 s).
    pub retry_base: Duration,
    /// Longest retry delay (default 5 min).
    pub retry_cap: Duration,
    /// Entries the dead-letter stream keeps, approximately (default 10 000).
    pub dead_letter_max_len: u64,
    /// How long a command may take before the call fails with a timeout (default 5 s).
    pub response_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            prefix: "flow:queue:".to_owned(),
            lease: Duration::from_secs(30),
            default_max_attempts: 3,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            dead_letter_max_len: 10_000,
            response_timeout: Duration::from_secs(5),
        }
    }
}

impl QueueConfig {
    pub(crate) fn validate(&self) -> Result<(), QueueError> {
        if self.prefix.is_empty() {
            return Err(QueueError::Invalid("the key prefix is empty".into()));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(QueueError::Invalid(format!("lease {:?} is shorter than 100 ms", self.lease)));
        }
        if self.default_max_attempts == 0 {
            return Err(QueueError::Invalid("default_max_attempts is 0".into()));
        }
        if self.retry_cap < self.retry_base {
            return Err(QueueError::Invalid("retry_cap is shorter than retry_base".into()));
        }
        Ok(())
    }

    /// The delay before retrying after failed attempt `attempt` (1-based): `retry_base * 2^(attempt-1)`,
    /// capped at `retry_cap`, of which a random half is kept ("equal jitter") so that jobs that
    /// failed together do not all come back together.
    #[must_use]
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self.retry_base.saturating_mul(1 << exponent).min(self.retry_cap);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_with_jitter_up_to_the_cap() {
        let config = QueueConfig {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_millis(1000),
            ..QueueConfig::default()
        };
        for _ in 0..100 {
            let first = config.retry_delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = config.retry_delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = config.retry_delay(40);
            assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_millis(1000));
        }
    }
}
