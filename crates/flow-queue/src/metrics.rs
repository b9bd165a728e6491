use std::collections::HashMap;

use serde::Serialize;

use crate::StateCounts;

/// Upper bounds (ms) of the wait and processing time histograms' buckets; a last bucket holds
/// the rest.
pub const HISTOGRAM_BUCKETS_MS: [u64; 14] =
    [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];

/// Counters since the queue's keys were created, and current counts: enough for a dashboard and
/// for Prometheus counters, gauges and histograms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Jobs per state now.
    pub counts: StateCounts,
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Deliveries to workers (every attempt, reclaims included).
    pub deliveries: u64,
    /// Deliveries that started after a reclaim (their worker stopped renewing its lease).
    pub reclaimed: u64,
    /// Jobs that succeeded.
    pub succeeded: u64,
    /// Jobs that failed permanently.
    pub failed: u64,
    /// Automatic retries scheduled after a transient failure.
    pub retried: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
    /// Jobs run again by [`Queue::retry`](crate::Queue::retry).
    pub requeued: u64,
    /// From a job becoming runnable (enqueued, or due) to its first delivery of that run.
    pub wait: Histogram,
    /// From a delivery's start to its completion (succeeded, retried or failed).
    pub processing: Histogram,
}

/// A histogram of durations, as Prometheus wants it: cumulative bucket counts, count and sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Histogram {
    /// Observations.
    pub count: u64,
    /// Their sum in ms.
    pub sum_ms: u64,
    /// Cumulative counts per upper bound; the last bucket (`le_ms: None`) holds every
    /// observation.
    pub buckets: Vec<Bucket>,
}

/// A histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Upper bound in ms; `None` is +Inf.
    pub le_ms: Option<u64>,
    /// Observations at most `le_ms`.
    pub count: u64,
}

impl Histogram {
    /// The mean in ms, when there are observations.
    #[must_use]
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }

    fn from_fields(name: &str, fields: &HashMap<String, u64>) -> Self {
        let get = |suffix: &str| fields.get(&format!("{name}_{suffix}")).copied().unwrap_or(0);
        let mut cumulative = 0;
        let mut buckets: Vec<Bucket> = HISTOGRAM_BUCKETS_MS
            .iter()
            .map(|&le| {
                cumulative += get(&format!("le_{le}"));
                Bucket { le_ms: Some(le), count: cumulative }
            })
            .collect();
        buckets.push(Bucket { le_ms: None, count: cumulative + get("le_inf") });
        Self { count: get("count"), sum_ms: get("ms_sum"), buckets }
    }
}

impl Metrics {
    pub(crate) fn from_fields(counts: StateCounts, fields: &HashMap<String, u64>) -> Self {
        let get = |name: &str| fields.get(name).copied().unwrap_or(0);
        Self {
            counts,
            enqueued: get("enqueued"),
            deliveries: get("deliveries"),
            reclaimed: get("reclaimed"),
            succeeded: get("succeeded"),
            failed: get("failed"),
            retried: get("retried"),
            dead: get("dead"),
            cancelled: get("cancelled"),
            requeued: get("requeued"),
            wait: Histogram::from_fields("wait", fields),
            processing: Histogram::from_fields("processing", fields),
        }
    }
}
