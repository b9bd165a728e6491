//! The job queue of the server and its workers, on Redis Streams.
//!
//! Jobs are opaque JSON payloads with metadata: this crate knows nothing of flows, HTTP or the
//! engine. A host enqueues jobs through a [`Queue`]; worker processes run them with a
//! [`Worker`] and a handler; servers fire recurring jobs with a [`Scheduler`]. Any number of
//! processes may share one queue.
//!
//! ```no_run
//! # async fn example() -> Result<(), flow_queue::QueueError> {
//! use flow_queue::{JobOutcome, NewJob, Queue, QueueConfig, Worker, WorkerConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! let queue = Queue::connect("redis://127.0.0.1:6379", QueueConfig::default()).await?;
//! let id = queue.enqueue(NewJob::new(serde_json::json!({"flow": "daily.json"}))).await?;
//! let shutdown = CancellationToken::new();
//! let worker = Worker::new(queue.clone(), WorkerConfig::default())?;
//! worker
//!     .run(|job| async move { JobOutcome::Succeeded(job.payload().clone()) }, shutdown)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # A job's life
//!
//! ```text
//! (enqueue)  ─► waiting              or delayed, with a delay or run-at time
//! delayed    ─► waiting              when due (promoted by the workers)
//! waiting    ─► running              delivered to a worker: attempt + 1, new fencing token
//! running    ─► running              reclaimed by another worker after the lease: the same
//! running    ─► succeeded | failed   the handler's outcome
//! running    ─► delayed              a retry, after a backoff
//! running    ─► dead                 a retry, or a reclaim, with no attempt left
//! waiting, delayed ─► cancelled      Queue::cancel
//! running    ─► cancelled            Queue::cancel, then the handler returns anything but success
//! failed, dead, cancelled ─► waiting Queue::retry: attempts reset to 0
//! ```
//!
//! Every state change is one Lua script, so a job's hash, its stream entry, the delayed set,
//! the per-state indexes and the counters never disagree, whatever crashes when.
//!
//! # Delivery: at least once
//!
//! A worker reads new stream entries with `XREADGROUP` (its consumer name is the worker id) and
//! starts each delivery in a script that counts an attempt, issues a new **fencing token**
//! (a per-job counter that only grows) and marks the job running. The entry stays in the
//! group's pending list until the worker writes the outcome ([`Queue::complete`]), which acks
//! and deletes it in the same script. While the handler runs, the worker renews its **lease**
//! every third of [`QueueConfig::lease`] (`XCLAIM ... JUSTID`, resetting the entry's idle
//! time). A worker that dies (SIGKILL, power loss) stops renewing; once its entry is idle
//! longer than the lease, another worker's periodic reclaim (`XAUTOCLAIM` inside a script)
//! takes the entry over and starts a new delivery with a new attempt and token.
//!
//! So a job runs **at least once**: to completion exactly once when nothing fails, and more
//! than once when a worker dies (or is cut off from Redis longer than the lease) after starting
//! it. Handlers must therefore be idempotent, or tolerate a re-run. What is guaranteed is that
//! only the job's current delivery writes anything: completing, renewing and reporting progress
//! check in the script that the caller's token is the job's current one, so a worker whose job
//! was reclaimed gets [`QueueError::LeaseLost`], writes nothing, and its handler's cancel
//! signal fires ([`CancelReason::LeaseLost`]). Handlers can pass [`Delivery::token`] on to the
//! systems they write to, so that those refuse a stale run too. A completion that could not be
//! written because Redis was down is retried until it is written or refused that way; writing
//! the same completion twice is harmless.
//!
//! # Attempts, retries, dead letters
//!
//! Every delivery counts an attempt, reclaimed ones included. A handler's
//! [`JobOutcome::Retry`] schedules the job again after `retry_base * 2^(attempt-1)` (capped at
//! `retry_cap`, with half of it random jitter) through the delayed set, unless it was the last
//! attempt: the job then goes to **dead** and an entry is added to the dead-letter stream.
//! [`JobOutcome::Failed`] is permanent: **failed**, never retried. A **poison job** that kills
//! its worker at every delivery never reports anything; when a reclaim finds it out of attempts
//! it is dead-lettered instead of delivered again. [`Queue::retry`] runs a failed, dead or
//! cancelled job again with its attempts **reset to 0**.
//!
//! # Delayed jobs
//!
//! A job enqueued with a delay or run-at time (and every retry) waits in a sorted set scored
//! by its due time in ms (Redis' clock). Each worker moves due jobs into the stream every
//! [`WorkerConfig::promote_interval`] in one script, so no job is promoted twice. A job never
//! runs before its time; it may run up to about that interval late.
//!
//! # Cancel
//!
//! [`Queue::cancel`] cancels a waiting or delayed job at once (its entry is deleted from the
//! stream and delayed set). For a running job it sets a flag and publishes the id on the cancel
//! channel; the worker running it fires the handler's cancel signal
//! ([`JobContext::cancel_token`]) at once, or at its next lease renewal if it missed the
//! message. Cancelling is cooperative: the job ends **cancelled** when its handler returns a
//! retry or a failure, but **succeeded** if it succeeded anyway.
//!
//! # Cron schedules and missed ticks
//!
//! [`Scheduler::tick`] enqueues, for each [`Schedule`], the latest tick at or before `now`
//! that is later than the schedule's last fired tick, as job `cron:<schedule>:<tick ms>`. A
//! script compares and sets the schedule's last tick and enqueues in one step, so each tick is
//! enqueued exactly once however many schedulers run concurrently. Policy:
//!
//! - A schedule seen for the first time starts from `now`: no past ticks fire.
//! - **Missed ticks** (every scheduler was down, or the expression fired more often than
//!   `tick` was called) are not replayed: the first call afterwards fires **one catch-up run**
//!   (the latest due tick; [`Fired::missed`] says how many were skipped) and the schedule then
//!   continues on its normal times.
//!
//! # Redis keys
//!
//! All under [`QueueConfig::prefix`] (default `flow:queue:`, so e.g. `flow:queue:stream`):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `{prefix}stream` | stream | one entry (`id` = job id) per runnable job; consumer group `workers`; entries are deleted once acked |
//! | `{prefix}job:<id>` | hash | `id`, `state`, `payload`, `attempts`, `max_attempts`, `token`, `entry` (current stream entry), `enqueued_at`, `ready_at`, `run_at`, `started_at`, `finished_at` (ms), `worker`, `last_error`, `progress`, `result`, `cancel_requested` |
//! | `{prefix}delayed` | sorted set | job ids by due time (ms) |
//! | `{prefix}state:<state>` | sorted set | job ids per state, by when they entered it: counts and listings |
//! | `{prefix}dead` | stream | dead-letterings (`id`, `attempts`, `error`, `at`), capped at [`QueueConfig::dead_letter_max_len`] |
//! | `{prefix}metrics` | hash | counters (`enqueued`, `deliveries`, `reclaimed`, `succeeded`, `failed`, `retried`, `dead`, `cancelled`, `requeued`) and the `wait_*`/`processing_*` histograms (`_count`, `_ms_sum`, `_le_<ms>`) |
//! | `{prefix}cron:<schedule>` | hash | `last_tick` (ms) |
//! | `{prefix}cancel` | pub/sub channel | ids of running jobs to cancel |
//!
//! The scripts derive keys from the prefix, so the queue needs a standalone Redis 6.2 or later
//! (`XAUTOCLAIM`; tested on 7.0), not a cluster. Job timestamps come from Redis' clock (`TIME`),
//! so every process agrees; cron ticks are computed from the `now` their caller passes.
//!
//! # Housekeeping and metrics
//!
//! Succeeded, failed and cancelled jobs stay queryable until [`Queue::cleanup`] deletes those
//! finished longer ago than its argument (the host calls it periodically); dead jobs stay until
//! retried or discarded. The stream needs no trimming: handled entries are deleted as they are
//! acked. [`Queue::metrics`] gives counts per state (depth = waiting + delayed), counters and
//! histograms of the wait (runnable to started) and processing (started to outcome) times.
//! A worker that stops cleanly removes its consumer from the group; one that was killed leaves
//! its (empty) consumer name behind.
//!
//! # Redis outages
//!
//! Connections reconnect by themselves. A worker logs and retries failed reads with a backoff,
//! keeps running handlers, and retries writing their outcomes until Redis is back. Jobs survive
//! a restart as far as Redis keeps its data: all of it with `appendonly yes` and `appendfsync
//! always`, all but the last second with `everysec`. Jobs whose leases ran out meanwhile may
//! run again (at least once).

mod config;
mod cron;
mod error;
mod job;
mod metrics;
mod queue;
mod scripts;
mod worker;

pub use config::QueueConfig;
pub use cron::{Fired, Schedule, Scheduler};
pub use error::QueueError;
pub use job::{DeadLetter, Delivery, JobInfo, JobOutcome, JobPage, JobState, NewJob, StateCounts};
pub use metrics::{Bucket, HISTOGRAM_BUCKETS_MS, Histogram, Metrics};
pub use queue::{CancelOutcome, Consumer, Queue, Renewal};
pub use worker::{CancelReason, JobContext, Worker, WorkerConfig};
