use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::QueueError;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In the stream, waiting for a worker.
    Waiting,
    /// Waiting for its run-at time (a delayed job or a retry's backoff).
    Delayed,
    /// Delivered to a worker.
    Running,
    /// Done; its result is stored.
    Succeeded,
    /// Failed permanently (the handler said so); not retried.
    Failed,
    /// Dead-lettered: out of attempts.
    Dead,
    /// Cancelled before or while it ran.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of a job's life.
    pub const ALL: [Self; 7] = [
        Self::Waiting,
        Self::Delayed,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Dead,
        Self::Cancelled,
    ];

    /// The name stored in Redis and used in keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Delayed => "delayed",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// A job to enqueue: a JSON payload the queue does not look into, and how to run it.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) id: Option<String>,
    pub(crate) payload: Value,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) start: Start,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    Now,
    After(Duration),
    At(DateTime<Utc>),
}

impl NewJob {
    /// A job with this payload, a new UUID v7 id, the queue's default attempts, runnable now.
    #[must_use]
    pub fn new(payload: Value) -> Self {
        Self { id: None, payload, max_attempts: None, start: Start::Now }
    }

    /// Uses the caller's id; enqueueing a second job with it fails with
    /// [`QueueError::AlreadyExists`], which makes the id an idempotency key.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How many deliveries the job gets at most (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Runs the job no sooner than `delay` from now (Redis' clock).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.start = Start::After(delay);
        self
    }

    /// Runs the job no sooner than `at`.
    #[must_use]
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.start = Start::At(at);
        self
    }
}

/// What a handler says about its run of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done; the result is stored with the job.
    Succeeded(Value),
    /// A transient failure: the job runs again after a backoff, or is dead-lettered when it is
    /// out of attempts.
    Retry(String),
    /// A permanent failure: the job is failed and not retried.
    Failed(String),
}

/// One delivery of a job to a consumer: the job and the lease on it. Completing, renewing and
/// reporting progress check `token`, so a delivery that was superseded writes nothing.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The job's id.
    pub id: String,
    /// The fencing token of this delivery: it grows with every delivery of the job.
    pub token: u64,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The job's attempts at most.
    pub max_attempts: u32,
    /// The job's payload.
    pub payload: Value,
    /// The consumer (worker id) holding the lease.
    pub consumer: String,
}

/// Everything stored about a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobInfo {
    /// The id.
    pub id: String,
    /// The state.
    pub state: JobState,
    /// The payload.
    pub payload: Value,
    /// Deliveries so far (reset by [`Queue::retry`](crate::Queue::retry)).
    pub attempts: u32,
    /// Deliveries at most.
    pub max_attempts: u32,
    /// The fencing token of the latest delivery (0 before the first).
    pub token: u64,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// When it is or was due, for delayed jobs and retries.
    pub run_at: Option<DateTime<Utc>>,
    /// When its latest delivery started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The worker of its latest delivery.
    pub worker: Option<String>,
    /// The error of its latest failed attempt.
    pub last_error: Option<String>,
    /// The latest progress its handler reported.
    pub progress: Option<Value>,
    /// Its result, once succeeded.
    pub result: Option<Value>,
    /// A cancel was asked while it ran.
    pub cancel_requested: bool,
}

impl JobInfo {
    pub(crate) fn from_hash(id: &str, hash: HashMap<String, String>) -> Result<Option<Self>, QueueError> {
        if hash.is_empty() {
            return Ok(None);
        }
        let mut fields = Fields { id, hash };
        Ok(Some(Self {
            id: id.to_owned(),
            state: fields
                .text("state")
                .ok_or_else(|| fields.corrupt("state", "missing".into()))?
                .parse()
                .map_err(|e| fields.corrupt("state", e))?,
            attempts: fields.count("attempts")?,
            max_attempts: fields.count("max_attempts")?,
            token: fields.count("token")?,
            enqueued_at: fields
                .time("enqueued_at")?
                .ok_or_else(|| fields.corrupt("enqueued_at", "missing".into()))?,
            run_at: fields.time("run_at")?,
            started_at: fields.time("started_at")?,
            finished_at: fields.time("finished_at")?,
            cancel_requested: fields.text("cancel_requested").as_deref() == Some("1"),
            worker: fields.text("worker"),
            last_error: fields.text("last_error"),
            payload: fields.json("payload")?.unwrap_or(Value::Null),
            progress: fields.json("progress")?,
            result: fields.json("result")?,
        }))
    }
}

/// A job hash being read, field by field.
struct Fields<'a> {
    id: &'a str,
    hash: HashMap<String, String>,
}

impl Fields<'_> {
    fn corrupt(&self, field: &'static str, reason: String) -> QueueError {
        QueueError::Corrupt { id: self.id.to_owned(), field, reason }
    }

    fn text(&mut self, field: &str) -> Option<String> {
        self.hash.remove(field)
    }

    fn int(&mut self, field: &'static str) -> Result<Option<i64>, QueueError> {
        self.text(field)
            .map(|v| v.parse().map_err(|e| self.corrupt(field, format!("{e}: {v:?}"))))
            .transpose()
    }

    fn count<T: TryFrom<i64>>(&mut self, field: &'static str) -> Result<T, QueueError> {
        let value = self.int(field)?.unwrap_or(0);
        T::try_from(value).map_err(|_| self.corrupt(field, format!("{value} is out of range")))
    }

    fn time(&mut self, field: &'static str) -> Result<Option<DateTime<Utc>>, QueueError> {
        self.int(field)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| self.corrupt(field, format!("{ms} ms is out of range")))
            })
            .transpose()
    }

    fn json(&mut self, field: &'static str) -> Result<Option<Value>, QueueError> {
        self.text(field)
            .map(|v| serde_json::from_str(&v).map_err(|e| self.corrupt(field, e.to_string())))
            .transpose()
    }
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// In the stream, not yet delivered.
    pub waiting: u64,
    /// Waiting for their run-at time.
    pub delayed: u64,
    /// Delivered to a worker.
    pub running: u64,
    /// Succeeded (until cleaned up).
    pub succeeded: u64,
    /// Failed (until cleaned up).
    pub failed: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Cancelled (until cleaned up).
    pub cancelled: u64,
}

impl StateCounts {
    /// The queue's depth: jobs waiting to run, now or later.
    #[must_use]
    pub fn depth(&self) -> u64 {
        self.waiting + self.delayed
    }

    pub(crate) fn set(&mut self, state: JobState, count: u64) {
        let slot = match state {
            JobState::Waiting => &mut self.waiting,
            JobState::Delayed => &mut self.delayed,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        };
        *slot = count;
    }
}

/// A page of [`Queue::list`](crate::Queue::list), newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPage {
    /// Jobs in the state, all pages together.
    pub total: u64,
    /// This page's jobs.
    pub jobs: Vec<JobInfo>,
}

/// A dead-lettering, as recorded in the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The stream entry id.
    pub entry: String,
    /// The job.
    pub job_id: String,
    /// Its attempts.
    pub attempts: u32,
    /// Its last error.
    pub error: String,
    /// When it was dead-lettered.
    pub at: Option<DateTime<Utc>>,
}
