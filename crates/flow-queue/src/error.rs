use std::time::Duration;

use crate::JobState;

/// Everything the queue can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis refused a command or could not be reached; the call may be retried.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time; the call may be retried.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// No job has this id (never enqueued, discarded or cleaned up).
    #[error("job {0} not found")]
    NotFound(String),
    /// A job with the caller-given id exists already.
    #[error("job {0} already exists")]
    AlreadyExists(String),
    /// The caller's delivery is no longer the job's current one (it was reclaimed after its lease
    /// ran out): the caller must abandon the job and write nothing.
    #[error("lease of job {id} lost: delivery token {token} was superseded by token {current}")]
    LeaseLost {
        /// The job.
        id: String,
        /// The caller's fencing token.
        token: u64,
        /// The job's current fencing token.
        current: u64,
    },
    /// The job is not in a state that allows the operation.
    #[error("job {id} is {state}: cannot {operation}")]
    InvalidState {
        /// The job.
        id: String,
        /// Its state.
        state: JobState,
        /// What was asked.
        operation: &'static str,
    },
    /// A job's stored data could not be read back.
    #[error("job {id}: corrupt field {field}: {reason}")]
    Corrupt {
        /// The job.
        id: String,
        /// The field.
        field: &'static str,
        /// Why it could not be read.
        reason: String,
    },
    /// A payload or result could not be encoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A cron schedule is invalid.
    #[error("schedule {id}: {reason}")]
    Schedule {
        /// The schedule.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Redis answered something this crate did not expect (a key written by something else?).
    #[error("unexpected reply to {0}")]
    UnexpectedReply(String),
    /// A configuration value or argument is invalid.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl QueueError {
    /// True for the errors that mean "this delivery is over, write nothing": the lease was lost,
    /// the job was discarded, or its completion is already written.
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. } | Self::NotFound(_) | Self::InvalidState { .. })
    }
}
