use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Consumer, Delivery, JobOutcome, Queue, QueueError, Renewal};

/// How a [`Worker`] runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's id: its consumer name in the group, stored with the jobs it runs (default
    /// `worker-<uuid v7>`). Unique per process.
    pub id: String,
    /// Jobs run at once (MAX_CONCURRENT_EXECUTIONS of the host; default 4).
    pub concurrency: usize,
    /// How long one read waits for new jobs (default 1 s); also how late a shutdown is noticed
    /// while idle.
    pub block: Duration,
    /// How often delayed jobs and retries whose time came are moved into the stream (default
    /// 250 ms): their lateness at most.
    pub promote_interval: Duration,
    /// How often jobs of dead workers are looked for (default: a quarter of the lease).
    pub reclaim_interval: Option<Duration>,
    /// How long a shutdown waits for running jobs before aborting them (default 30 s); aborted
    /// jobs are reclaimed by other workers once their lease runs out.
    pub shutdown_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: format!("worker-{}", Uuid::now_v7()),
            concurrency: 4,
            block: Duration::from_secs(1),
            promote_interval: Duration::from_millis(250),
            reclaim_interval: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a running job's cancel signal fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Someone called [`Queue::cancel`].
    Requested,
    /// The lease was lost (the job was reclaimed or discarded): whatever the handler returns is
    /// not written, so it should stop at once.
    LeaseLost,
}

#[derive(Default)]
struct Signal {
    token: CancellationToken,
    reason: OnceLock<CancelReason>,
    lease_lost: AtomicBool,
}

impl Signal {
    fn fire(&self, reason: CancelReason) {
        if reason == CancelReason::LeaseLost {
            self.lease_lost.store(true, Ordering::SeqCst);
        }
        // The first reason stays: a cancelled job whose lease is lost later is still cancelled.
        let _ = self.reason.set(reason);
        self.token.cancel();
    }
}

/// What a handler gets for one delivery of a job.
pub struct JobContext {
    delivery: Delivery,
    queue: Queue,
    signal: Arc<Signal>,
}

impl JobContext {
    /// The job's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.delivery.id
    }

    /// The job's payload.
    #[must_use]
    pub fn payload(&self) -> &Value {
        &self.delivery.payload
    }

    /// Which attempt this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.delivery.attempt
    }

    /// The job's attempts at most.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.delivery.max_attempts
    }

    /// The delivery (id, fencing token, attempt, payload, worker).
    #[must_use]
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Stores progress with the job, if this delivery still holds the lease.
    ///
    /// # Errors
    /// [`QueueError::LeaseLost`] (and the cancel signal fires) when the job was reclaimed;
    /// Redis errors.
    pub async fn progress(&self, progress: &Value) -> Result<(), QueueError> {
        let result = self.queue.report_progress(&self.delivery, progress).await;
        if result.as_ref().is_err_and(QueueError::is_lease_lost) {
            self.signal.fire(CancelReason::LeaseLost);
        }
        result
    }

    /// Fires when the job should stop: a cancel was asked, or the lease was lost.
    #[must_use]
    pub fn cancel_token(&self) -> CancellationToken {
        self.signal.token.clone()
    }

    /// Why the cancel signal fired, once it did.
    #[must_use]
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.signal.reason.get().copied()
    }
}

type Running = Arc<Mutex<HashMap<String, Arc<Signal>>>>;

fn lock(running: &Running) -> MutexGuard<'_, HashMap<String, Arc<Signal>>> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs jobs from a queue with a handler, up to `concurrency` at once; see the crate docs.
pub struct Worker {
    queue: Queue,
    config: WorkerConfig,
}

impl Worker {
    /// A worker on `queue`.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] for a zero concurrency or an empty id.
    pub fn new(queue: Queue, config: WorkerConfig) -> Result<Self, QueueError> {
        if config.concurrency == 0 {
            return Err(QueueError::Invalid("worker concurrency is 0".into()));
        }
        if config.id.is_empty() {
            return Err(QueueError::Invalid("the worker id is empty".into()));
        }
        Ok(Self { queue, config })
    }

    /// The worker's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Runs jobs until `shutdown` fires, then stops reading, waits up to the shutdown timeout
    /// for running jobs and returns. Redis errors (an outage, a restart) are logged and retried
    /// with a backoff; the worker never stops on its own.
    ///
    /// The handler gets a [`JobContext`] per delivery and returns its [`JobOutcome`]; a handler
    /// that panics counts as [`JobOutcome::Retry`].
    ///
    /// # Errors
    /// An invalid connection config.
    pub async fn run<H, F>(self, handler: H, shutdown: CancellationToken) -> Result<(), QueueError>
    where
        H: Fn(JobContext) -> F + Send + Sync + 'static,
        F: Future<Output = JobOutcome> + Send + 'static,
    {
        let Self { queue, config } = self;
        let mut consumer = queue.consumer(config.id.clone())?;
        let handler = Arc::new(handler);
        let running = Running::default();
        let background = CancellationToken::new();
        let _stop_background = background.clone().drop_guard();
        tokio::spawn(promote_loop(queue.clone(), config.promote_interval, background.clone()));
        tokio::spawn(cancel_listener(queue.clone(), running.clone(), background.clone()));
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut poller = Poller {
            reclaim_every: config.reclaim_interval.unwrap_or(queue.config().lease / 4),
            next_reclaim: Instant::now(),
            block: config.block,
        };
        let mut jobs = JoinSet::new();
        let mut failures = 0;
        tracing::info!(worker = %config.id, concurrency = config.concurrency, "worker started");
        loop {
            while jobs.try_join_next().is_some() {}
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            match poller.poll(&mut consumer, permits.len()).await {
                Ok(deliveries) => {
                    failures = 0;
                    // There are never more deliveries than permits: every read asks for at most
                    // as many jobs as there are free slots.
                    for (delivery, permit) in deliveries.into_iter().zip(permits) {
                        jobs.spawn(run_job(
                            queue.clone(),
                            delivery,
                            handler.clone(),
                            running.clone(),
                            permit,
                        ));
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(worker = %config.id, %error, "could not read jobs; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff(failures)) => {}
                    }
                }
            }
        }
        tracing::info!(worker = %config.id, running = jobs.len(), "worker stopping");
        let all_done = async { while jobs.join_next().await.is_some() {} };
        if tokio::time::timeout(config.shutdown_timeout, all_done).await.is_err() {
            tracing::warn!(worker = %config.id, aborted = jobs.len(),
                "shutdown timeout: aborting running jobs; other workers reclaim them after their lease");
            jobs.shutdown().await;
        }
        if let Err(error) = queue.forget_consumer(&config.id).await {
            tracing::debug!(worker = %config.id, %error, "could not remove the consumer");
        }
        tracing::info!(worker = %config.id, "worker stopped");
        Ok(())
    }
}

struct Poller {
    reclaim_every: Duration,
    next_reclaim: Instant,
    block: Duration,
}

impl Poller {
    /// Up to `slots` deliveries: reclaimed ones first when a reclaim is due, then new ones.
    async fn poll(&mut self, consumer: &mut Consumer, slots: usize) -> Result<Vec<Delivery>, QueueError> {
        let mut deliveries = Vec::new();
        if Instant::now() >= self.next_reclaim {
            self.next_reclaim = Instant::now() + self.reclaim_every;
            deliveries = consumer.reclaim(slots).await?;
            for delivery in &deliveries {
                tracing::info!(job = %delivery.id, attempt = delivery.attempt,
                    worker = %consumer.name(), "reclaimed a job whose worker stopped renewing its lease");
            }
        }
        // With reclaimed work in hand, take only what is there without waiting.
        let block = if deliveries.is_empty() { self.block } else { Duration::ZERO };
        match consumer.fetch(slots.saturating_sub(deliveries.len()), block).await {
            Ok(fetched) => deliveries.extend(fetched),
            // The reclaimed deliveries are ours now: run them rather than let them expire.
            Err(error) if !deliveries.is_empty() => {
                tracing::warn!(%error, "could not read new jobs");
            }
            Err(error) => return Err(error),
        }
        Ok(deliveries)
    }
}

/// Aborts the handler's task when the job's task is aborted (a shutdown timeout).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Unregisters a running job's cancel signal however its task ends (unless a newer delivery of
/// the job to this worker replaced it).
struct Registered {
    running: Running,
    id: String,
    signal: Arc<Signal>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        if running.get(&self.id).is_some_and(|signal| Arc::ptr_eq(signal, &self.signal)) {
            running.remove(&self.id);
        }
    }
}

async fn run_job<H, F>(
    queue: Queue,
    delivery: Delivery,
    handler: Arc<H>,
    running: Running,
    _slot: OwnedSemaphorePermit,
) where
    H: Fn(JobContext) -> F + Send + Sync + 'static,
    F: Future<Output = JobOutcome> + Send + 'static,
{
    let signal = Arc::new(Signal::default());
    lock(&running).insert(delivery.id.clone(), signal.clone());
    let _registered = Registered { running, id: delivery.id.clone(), signal: signal.clone() };
    tracing::debug!(job = %delivery.id, attempt = delivery.attempt, token = delivery.token, "job started");
    let context = JobContext { delivery: delivery.clone(), queue: queue.clone(), signal: signal.clone() };
    // Its own task, so a panic in the handler is caught as a JoinError.
    let mut task = AbortOnDrop(tokio::spawn(handler(context)));
    let every = queue.config().lease / 3;
    let mut renewals = tokio::time::interval_at(Instant::now() + every, every);
    renewals.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let joined = loop {
        let renewing = !signal.lease_lost.load(Ordering::SeqCst);
        tokio::select! {
            joined = &mut task.0 => break joined,
            _ = renewals.tick(), if renewing => match queue.renew(&delivery).await {
                Ok(Renewal::Held) => {}
                Ok(Renewal::CancelRequested) => signal.fire(CancelReason::Requested),
                Err(error) if error.is_lease_lost() => {
                    tracing::warn!(job = %delivery.id, %error, "lease lost: abandoning the job");
                    signal.fire(CancelReason::LeaseLost);
                }
                Err(error) => tracing::warn!(job = %delivery.id, %error, "could not renew the lease"),
            },
        }
    };
    if signal.lease_lost.load(Ordering::SeqCst) {
        tracing::info!(job = %delivery.id, token = delivery.token, "outcome dropped: the lease was lost");
        return;
    }
    let outcome = joined.unwrap_or_else(|error| JobOutcome::Retry(format!("the handler panicked: {error}")));
    write_outcome(&queue, &delivery, &outcome).await;
}

/// Writes an outcome, retrying through Redis outages until it is written or refused.
async fn write_outcome(queue: &Queue, delivery: &Delivery, outcome: &JobOutcome) {
    let mut failures = 0;
    loop {
        match queue.complete(delivery, outcome).await {
            Ok(state) => {
                tracing::debug!(job = %delivery.id, %state, "job completed");
                return;
            }
            Err(error) if error.is_lease_lost() => {
                tracing::warn!(job = %delivery.id, %error, "outcome refused");
                return;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(job = %delivery.id, %error, "could not write the outcome; retrying");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

async fn promote_loop(queue: Queue, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = queue.promote_due().await {
            tracing::debug!(%error, "could not promote delayed jobs");
        }
    }
}

/// Fires the cancel signal of running jobs named on the cancel channel. Messages missed while
/// disconnected are caught by the next lease renewal, which also reports cancel requests.
async fn cancel_listener(queue: Queue, running: Running, stop: CancellationToken) {
    let channel = queue.key("cancel");
    loop {
        let listen = async {
            let mut pubsub = queue.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let id: String = message.get_payload()?;
                if let Some(signal) = lock(&running).get(&id) {
                    signal.fire(CancelReason::Requested);
                }
            }
            Ok::<(), redis::RedisError>(())
        };
        tokio::select! {
            () = stop.cancelled() => return,
            result = listen => if let Err(error) = result {
                tracing::debug!(%error, "cancel channel lost; resubscribing");
            },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// 100 ms, doubling per consecutive failure, at most 2 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.saturating_sub(1).min(5))
        .min(Duration::from_secs(2))
}
