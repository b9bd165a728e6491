//! Circuit breakers keyed by external target: a pure state machine (time is passed in) and a
//! registry shared by every execution of an engine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub threshold: u32,
    /// How long it stays open before letting one trial through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { threshold: 5, cooldown: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is allowed; `trial_since` is when it was let through.
    HalfOpen {
        trial_since: Option<Instant>,
    },
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOpen {
    pub retry_after: Duration,
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, state: BreakerState::Closed { failures: 0 } }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Asks to make a call at `now`.
    pub fn allow(&mut self, now: Instant) -> Result<(), BreakerOpen> {
        match self.state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if now < until => Err(BreakerOpen { retry_after: until - now }),
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen { trial_since: Some(now) };
                Ok(())
            }
            // A trial that never reported back (its caller was cancelled) expires after a cool-down.
            BreakerState::HalfOpen { trial_since: Some(since) }
                if now.saturating_duration_since(since) < self.config.cooldown =>
            {
                Err(BreakerOpen { retry_after: self.config.cooldown - (now - since) })
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::HalfOpen { trial_since: Some(now) };
                Ok(())
            }
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.config.threshold => {
                BreakerState::Closed { failures: failures + 1 }
            }
            BreakerState::Closed { .. } | BreakerState::HalfOpen { .. } => {
                BreakerState::Open { until: now + self.config.cooldown }
            }
            open @ BreakerState::Open { .. } => open,
        };
    }
}

/// Breakers by target key (for example a database host), shared across executions.
#[derive(Debug, Default)]
pub struct Breakers {
    config: BreakerConfig,
    by_target: Mutex<HashMap<String, CircuitBreaker>>,
}

impl Breakers {
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, by_target: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, target: &str, f: impl FnOnce(&mut CircuitBreaker) -> T) -> T {
        let mut map = self.by_target.lock().unwrap_or_else(|p| p.into_inner());
        let breaker = map.entry(target.to_owned()).or_insert_with(|| CircuitBreaker::new(self.config));
        let before = std::mem::discriminant(&breaker.state);
        let out = f(breaker);
        // Only a change of kind (closed, open, half open) is a transition worth a metric.
        if std::mem::discriminant(&breaker.state) != before {
            crate::metrics::breaker_changed(target, breaker.state);
        }
        out
    }

    pub fn allow(&self, target: &str) -> Result<(), BreakerOpen> {
        self.with(target, |b| b.allow(Instant::now()))
    }

    pub fn on_success(&self, target: &str) {
        self.with(target, CircuitBreaker::on_success);
    }

    pub fn on_failure(&self, target: &str) {
        self.with(target, |b| b.on_failure(Instant::now()));
    }

    pub fn state(&self, target: &str) -> BreakerState {
        self.with(target, |b| b.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig { threshold: 3, cooldown: Duration::from_secs(10) })
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..2 {
            assert!(b.allow(t0).is_ok());
            b.on_failure(t0);
        }
        assert!(b.allow(t0).is_ok(), "two failures stay below the threshold");
        b.on_failure(t0);
        let refused = b.allow(t0 + Duration::from_secs(1)).expect_err("open");
        assert_eq!(refused.retry_after, Duration::from_secs(9));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = breaker();
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        b.on_failure(t0);
        assert!(b.allow(t0).is_ok());
    }

    #[test]
    fn half_opens_after_cooldown_and_lets_one_trial_through() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let later = t0 + Duration::from_secs(11);
        assert!(b.allow(later).is_ok(), "trial after cool-down");
        assert!(matches!(b.state(), BreakerState::HalfOpen { .. }));
        assert!(b.allow(later).is_err(), "only one trial at a time");
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn failed_trial_opens_again() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let later = t0 + Duration::from_secs(11);
        assert!(b.allow(later).is_ok());
        b.on_failure(later);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(b.allow(later + Duration::from_secs(1)).is_err());
    }
}
