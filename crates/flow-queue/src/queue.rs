use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::{Client, FromRedisValue, Script};
use serde_json::Value;
use uuid::Uuid;

use crate::job::Start;
use crate::scripts::Scripts;
use crate::{
    DeadLetter, Delivery, JobInfo, JobOutcome, JobPage, JobState, Metrics, NewJob, QueueConfig, QueueError,
    StateCounts,
};

/// The consumer group every worker reads the stream with.
const GROUP: &str = "workers";
/// Jobs a maintenance script handles per call, so one call never blocks Redis for long.
const BATCH: usize = 500;

/// A queue on Redis; cheap to clone (one shared, self-reconnecting connection).
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    conn: ConnectionManager,
    config: QueueConfig,
    scripts: Scripts,
}

/// What [`Queue::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was waiting or delayed: it is cancelled and will not run.
    Cancelled,
    /// The job is running: its worker's cancel signal fires; it ends cancelled unless its
    /// handler succeeds anyway.
    Requested,
    /// The job had finished already, in this state.
    Finished(JobState),
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease is renewed.
    Held,
    /// The lease is renewed, and a cancel of the job was asked.
    CancelRequested,
}

impl Queue {
    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379`) and creates the stream's
    /// consumer group if needed. The connection reconnects by itself after Redis restarts.
    ///
    /// # Errors
    /// An invalid config or URL, or Redis not reachable.
    pub async fn connect(url: &str, config: QueueConfig) -> Result<Self, QueueError> {
        config.validate()?;
        let client = Client::open(url)?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.response_timeout))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
        let queue = Self {
            inner: Arc::new(Inner {
                client,
                conn,
                scripts: Scripts::new(config.dead_letter_max_len),
                config,
            }),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// The config this queue was connected with.
    #[must_use]
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// Checks that Redis answers (for health checks).
    ///
    /// # Errors
    /// Redis errors.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.inner.config.prefix)
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    async fn eval<T: FromRedisValue>(&self, script: &Script, args: &[&str]) -> Result<T, QueueError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.inner.config.prefix);
        for arg in args {
            invocation.arg(*arg);
        }
        Ok(invocation.invoke_async(&mut self.conn()).await?)
    }

    /// Creates the consumer group (reading the stream from its start) unless it exists: at
    /// connect, and again if Redis lost it (a restart without persistence).
    pub(crate) async fn ensure_group(&self) -> Result<(), QueueError> {
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.key("stream"))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn())
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Enqueues a job and returns its id at once.
    ///
    /// # Errors
    /// [`QueueError::AlreadyExists`] for a caller-given id in use, [`QueueError::Invalid`] for
    /// an empty id or zero attempts, or Redis errors.
    pub async fn enqueue(&self, job: NewJob) -> Result<String, QueueError> {
        let id = job.id.unwrap_or_else(|| Uuid::now_v7().to_string());
        if id.is_empty() {
            return Err(QueueError::Invalid("the job id is empty".into()));
        }
        let max_attempts = job.max_attempts.unwrap_or(self.inner.config.default_max_attempts);
        if max_attempts == 0 {
            return Err(QueueError::Invalid(format!("job {id}: max_attempts is 0")));
        }
        let payload = serde_json::to_string(&job.payload)?;
        let (run_at, delay) = match job.start {
            Start::Now => (String::new(), String::new()),
            Start::After(delay) => (String::new(), millis(delay).to_string()),
            Start::At(at) => (at.timestamp_millis().to_string(), String::new()),
        };
        let created: i64 = self
            .eval(&self.inner.scripts.enqueue, &[&id, &payload, &max_attempts.to_string(), &run_at, &delay])
            .await?;
        if created == 0 {
            return Err(QueueError::AlreadyExists(id));
        }
        Ok(id)
    }

    /// Enqueues a cron tick unless its schedule already fired it (or a later tick): see
    /// [`Scheduler`](crate::Scheduler). Returns whether this call enqueued it.
    pub(crate) async fn fire_tick(
        &self,
        schedule_id: &str,
        tick_ms: i64,
        job_id: &str,
        payload: &Value,
        max_attempts: u32,
    ) -> Result<bool, QueueError> {
        let fired: i64 = self
            .eval(
                &self.inner.scripts.cron_fire,
                &[
                    schedule_id,
                    &tick_ms.to_string(),
                    job_id,
                    &serde_json::to_string(payload)?,
                    &max_attempts.to_string(),
                ],
            )
            .await?;
        Ok(fired == 1)
    }

    /// Starts the deliveries of stream entries just read by `consumer`: `(entry id, job id)`.
    pub(crate) async fn begin(
        &self,
        consumer: &str,
        entries: &[(String, String)],
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut args = vec![consumer];
        for (entry, id) in entries {
            args.push(entry);
            args.push(id);
        }
        let replies: Vec<Vec<String>> = self.eval(&self.inner.scripts.begin, &args).await?;
        self.deliveries(consumer, replies).await
    }

    /// Claims up to `count` deliveries whose consumer stopped renewing, scanning the pending
    /// entries from `cursor`; returns the next cursor ("0-0" after a full scan) and the new
    /// deliveries.
    pub(crate) async fn reclaim(
        &self,
        consumer: &str,
        cursor: &str,
        count: usize,
    ) -> Result<(String, Vec<Delivery>), QueueError> {
        let mut replies: Vec<Vec<String>> = self
            .eval(
                &self.inner.scripts.reclaim,
                &[consumer, &millis(self.inner.config.lease).to_string(), cursor, &count.to_string()],
            )
            .await?;
        if replies.is_empty() {
            return Err(unexpected("reclaim", &[]));
        }
        let next = replies.remove(0).pop().unwrap_or_else(|| "0-0".to_owned());
        Ok((next, self.deliveries(consumer, replies).await?))
    }

    async fn deliveries(
        &self,
        consumer: &str,
        replies: Vec<Vec<String>>,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut deliveries = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply.as_slice() {
                [kind, id, token, attempt, max_attempts, payload] if kind == "run" => {
                    let mut delivery = Delivery {
                        id: id.clone(),
                        token: parse_field(token, &reply)?,
                        attempt: parse_field(attempt, &reply)?,
                        max_attempts: parse_field(max_attempts, &reply)?,
                        payload: Value::Null,
                        consumer: consumer.to_owned(),
                    };
                    match serde_json::from_str(payload) {
                        Ok(payload) => {
                            delivery.payload = payload;
                            deliveries.push(delivery);
                        }
                        // Running it again cannot help: fail it now rather than lose it later.
                        Err(e) => {
                            let error = format!("the stored payload is not JSON: {e}");
                            tracing::error!(job = %id, %error, "job failed");
                            self.complete(&delivery, &JobOutcome::Failed(error)).await?;
                        }
                    }
                }
                [kind, id, reason] if kind == "skip" => {
                    if reason == "dead" {
                        tracing::warn!(job = %id, "job dead-lettered: its worker was lost at every attempt");
                    } else {
                        tracing::debug!(job = %id, %reason, "stream entry skipped");
                    }
                }
                _ => return Err(unexpected("begin", &reply)),
            }
        }
        Ok(deliveries)
    }

    /// Renews the lease of a delivery (resets its pending entry's idle time) and tells whether a
    /// cancel was asked. Workers call it every third of the lease.
    ///
    /// # Errors
    /// [`QueueError::LeaseLost`] when the job was delivered again since, [`QueueError::NotFound`]
    /// when it was discarded, [`QueueError::InvalidState`] when it is no longer running; Redis
    /// errors.
    pub async fn renew(&self, delivery: &Delivery) -> Result<Renewal, QueueError> {
        let reply: Vec<String> = self
            .eval(&self.inner.scripts.renew, &[&delivery.id, &delivery.token.to_string(), &delivery.consumer])
            .await?;
        match (reply.first().map(String::as_str), reply.get(1).map(String::as_str)) {
            (Some("ok"), Some("1")) => Ok(Renewal::CancelRequested),
            (Some("ok"), _) => Ok(Renewal::Held),
            _ => Err(lease_error(delivery, &reply, "renew")),
        }
    }

    /// Stores a delivery's progress (any JSON) with its job.
    ///
    /// # Errors
    /// As [`Queue::renew`].
    pub async fn report_progress(&self, delivery: &Delivery, progress: &Value) -> Result<(), QueueError> {
        let reply: Vec<String> = self
            .eval(
                &self.inner.scripts.progress,
                &[&delivery.id, &delivery.token.to_string(), &serde_json::to_string(progress)?],
            )
            .await?;
        if reply.first().is_some_and(|kind| kind == "ok") {
            Ok(())
        } else {
            Err(lease_error(delivery, &reply, "report progress"))
        }
    }

    /// Writes a delivery's outcome: acks its stream entry and moves the job to succeeded,
    /// failed, cancelled (when a cancel was asked and it did not succeed), delayed (a retry,
    /// after the backoff) or dead (a retry out of attempts). Returns the job's new state.
    /// Calling it again for the same delivery returns the state it wrote, so a call whose reply
    /// was lost can be repeated.
    ///
    /// # Errors
    /// [`QueueError::LeaseLost`] when the job was delivered again since (the outcome is not
    /// written), [`QueueError::NotFound`] when it was discarded; Redis errors (retry them).
    pub async fn complete(&self, delivery: &Delivery, outcome: &JobOutcome) -> Result<JobState, QueueError> {
        let (kind, data, delay) = match outcome {
            JobOutcome::Succeeded(result) => ("succeeded", serde_json::to_string(result)?, 0),
            JobOutcome::Retry(error) => {
                ("retry", error.clone(), millis(self.inner.config.retry_delay(delivery.attempt)))
            }
            JobOutcome::Failed(error) => ("failed", error.clone(), 0),
        };
        let reply: Vec<String> = self
            .eval(
                &self.inner.scripts.complete,
                &[&delivery.id, &delivery.token.to_string(), kind, &data, &delay.to_string()],
            )
            .await?;
        match reply.first().map(String::as_str) {
            Some("ok" | "done") => reply
                .get(1)
                .and_then(|state| state.parse().ok())
                .ok_or_else(|| unexpected("complete", &reply)),
            _ => Err(lease_error(delivery, &reply, "complete")),
        }
    }

    /// Moves delayed jobs (and retries) whose time has come into the stream; returns how many.
    /// Workers call it in a loop.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let moved: u64 = self.eval(&self.inner.scripts.promote, &[&BATCH.to_string()]).await?;
            total += moved;
            if moved < BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Cancels a job: a waiting or delayed one at once; a running one through its worker's
    /// cancel signal (cooperative: the handler decides when to stop).
    ///
    /// # Errors
    /// [`QueueError::NotFound`]; Redis errors.
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, QueueError> {
        let reply: String = self.eval(&self.inner.scripts.cancel, &[id]).await?;
        match reply.as_str() {
            "cancelled" => Ok(CancelOutcome::Cancelled),
            "requested" => Ok(CancelOutcome::Requested),
            "missing" => Err(QueueError::NotFound(id.to_owned())),
            other => other
                .strip_prefix("final:")
                .and_then(|state| state.parse().ok())
                .map(CancelOutcome::Finished)
                .ok_or_else(|| unexpected("cancel", std::slice::from_ref(&reply))),
        }
    }

    /// Runs a failed, dead or cancelled job again: back to waiting with its attempts reset to 0
    /// (it gets its full `max_attempts` again), its result, progress and times cleared; its last
    /// error is kept until overwritten, and its fencing token keeps growing.
    ///
    /// # Errors
    /// [`QueueError::NotFound`], [`QueueError::InvalidState`] for a job that is not failed, dead
    /// or cancelled; Redis errors.
    pub async fn retry(&self, id: &str) -> Result<(), QueueError> {
        let reply: String = self.eval(&self.inner.scripts.requeue, &[id]).await?;
        match reply.as_str() {
            "ok" => Ok(()),
            "missing" => Err(QueueError::NotFound(id.to_owned())),
            state => Err(QueueError::InvalidState {
                id: id.to_owned(),
                state: state.parse().map_err(|_| unexpected("retry", std::slice::from_ref(&reply)))?,
                operation: "retry",
            }),
        }
    }

    /// Deletes a job whatever its state; a worker running it loses its lease. Returns whether
    /// it existed.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn discard(&self, id: &str) -> Result<bool, QueueError> {
        let deleted: i64 = self.eval(&self.inner.scripts.discard, &[id]).await?;
        Ok(deleted == 1)
    }

    /// Deletes succeeded, failed and cancelled jobs that finished more than `older_than` ago
    /// (Redis' clock); dead jobs stay until retried or discarded. Returns how many. The host
    /// calls it periodically.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn cleanup(&self, older_than: Duration) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let removed: u64 = self
                .eval(&self.inner.scripts.cleanup, &[&millis(older_than).to_string(), &BATCH.to_string()])
                .await?;
            if removed == 0 {
                return Ok(total);
            }
            total += removed;
        }
    }

    /// A job, if it exists.
    ///
    /// # Errors
    /// [`QueueError::Corrupt`] for unreadable data; Redis errors.
    pub async fn get(&self, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let hash: HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.key(&format!("job:{id}"))).query_async(&mut self.conn()).await?;
        JobInfo::from_hash(id, hash)
    }

    /// The jobs in a state, newest first (by the time they entered it): `limit` of them from
    /// `offset`.
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub async fn list(&self, state: JobState, offset: usize, limit: usize) -> Result<JobPage, QueueError> {
        let index = self.key(&format!("state:{state}"));
        let mut conn = self.conn();
        let total: u64 = redis::cmd("ZCARD").arg(&index).query_async(&mut conn).await?;
        if limit == 0 {
            return Ok(JobPage { total, jobs: Vec::new() });
        }
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(&index)
            .arg(offset)
            .arg(offset + limit - 1)
            .query_async(&mut conn)
            .await?;
        // Redis refuses an empty pipeline.
        if ids.is_empty() {
            return Ok(JobPage { total, jobs: Vec::new() });
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(self.key(&format!("job:{id}")));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for (id, hash) in ids.iter().zip(hashes) {
            // A job deleted between the two reads is simply not listed.
            jobs.extend(JobInfo::from_hash(id, hash)?);
        }
        Ok(JobPage { total, jobs })
    }

    /// How many jobs are in each state.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn counts(&self) -> Result<StateCounts, QueueError> {
        let mut pipe = redis::pipe();
        for state in JobState::ALL {
            pipe.cmd("ZCARD").arg(self.key(&format!("state:{state}")));
        }
        let values: Vec<u64> = pipe.query_async(&mut self.conn()).await?;
        let mut counts = StateCounts::default();
        for (state, count) in JobState::ALL.into_iter().zip(values) {
            counts.set(state, count);
        }
        Ok(counts)
    }

    /// Counts per state, counters and the wait and processing time histograms.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn metrics(&self) -> Result<Metrics, QueueError> {
        let counts = self.counts().await?;
        let fields: HashMap<String, u64> =
            redis::cmd("HGETALL").arg(self.key("metrics")).query_async(&mut self.conn()).await?;
        Ok(Metrics::from_fields(counts, &fields))
    }

    /// The latest dead-letterings, newest first.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key("dead"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| DeadLetter {
                job_id: entry.get("id").unwrap_or_default(),
                attempts: entry.get("attempts").unwrap_or_default(),
                error: entry.get("error").unwrap_or_default(),
                at: entry.get("at").and_then(chrono::DateTime::from_timestamp_millis),
                entry: entry.id,
            })
            .collect())
    }

    /// A consumer named `name` (the worker id): reads and reclaims deliveries on its own
    /// connection, since a blocking read holds the connection it waits on.
    ///
    /// # Errors
    /// An invalid connection config.
    pub fn consumer(&self, name: impl Into<String>) -> Result<Consumer, QueueError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(self.inner.config.response_timeout))
            .set_max_delay(Duration::from_secs(2));
        Ok(Consumer {
            queue: self.clone(),
            name: name.into(),
            conn: ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)?,
            cursor: "0-0".to_owned(),
        })
    }

    /// Deletes consumer `name` from the group if it holds no pending entry (a worker that
    /// stopped cleanly), so the group does not collect the names of past workers.
    pub(crate) async fn forget_consumer(&self, name: &str) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let pending: Vec<redis::Value> = redis::cmd("XPENDING")
            .arg(self.key("stream"))
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(name)
            .query_async(&mut conn)
            .await?;
        if pending.is_empty() {
            let _: i64 = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(self.key("stream"))
                .arg(GROUP)
                .arg(name)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// Reads deliveries for one consumer (a worker): new entries with `XREADGROUP` and entries
/// abandoned by dead workers with `XAUTOCLAIM`. [`Worker`](crate::Worker) uses it; use it
/// directly to drive deliveries by hand.
pub struct Consumer {
    queue: Queue,
    name: String,
    conn: ConnectionManager,
    cursor: String,
}

impl Consumer {
    /// The consumer's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads up to `count` new jobs, waiting up to `block` for one (not at all for a zero
    /// `block`), and starts a delivery of each.
    ///
    /// # Errors
    /// Redis errors and timeouts; entries read when the error happened are reclaimed later.
    pub async fn fetch(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let reply = match self.read(count, block).await {
            Err(e) if is_nogroup(&e) => {
                self.queue.ensure_group().await?;
                self.read(count, block).await?
            }
            reply => reply?,
        };
        let entries: Vec<(String, String)> = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| {
                let id = entry.get("id").unwrap_or_default();
                (entry.id, id)
            })
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.queue.begin(&self.name, &entries).await
    }

    async fn read(&mut self, count: usize, block: Duration) -> Result<Option<StreamReadReply>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(GROUP).arg(&self.name).arg("COUNT").arg(count);
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(millis(block));
        }
        cmd.arg("STREAMS").arg(self.queue.key("stream")).arg(">");
        let limit = block + self.queue.config().response_timeout;
        tokio::time::timeout(limit, cmd.query_async(&mut self.conn))
            .await
            .map_err(|_| QueueError::Timeout(limit))?
            .map_err(Into::into)
    }

    /// Takes over up to `count` jobs whose worker stopped renewing its lease (idle longer than
    /// the lease) and starts a new delivery of each (a new attempt and fencing token). A job
    /// out of attempts is dead-lettered instead (it lost its worker every time: a poison job).
    /// Successive calls scan the pending entries from where the last one stopped.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn reclaim(&mut self, count: usize) -> Result<Vec<Delivery>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let (cursor, deliveries) = match self.queue.reclaim(&self.name, &self.cursor, count).await {
            Err(e) if is_nogroup(&e) => {
                self.queue.ensure_group().await?;
                self.queue.reclaim(&self.name, "0-0", count).await?
            }
            result => result?,
        };
        self.cursor = cursor;
        Ok(deliveries)
    }
}

/// The error a leased script's reply other than `ok` stands for.
fn lease_error(delivery: &Delivery, reply: &[String], operation: &'static str) -> QueueError {
    let field = |i: usize| reply.get(i).map(String::as_str);
    match (field(0), field(1)) {
        (Some("gone"), _) => QueueError::NotFound(delivery.id.clone()),
        (Some("fenced"), Some(current)) => match current.parse() {
            Ok(current) => QueueError::LeaseLost { id: delivery.id.clone(), token: delivery.token, current },
            Err(_) => unexpected(operation, reply),
        },
        (Some("done"), Some(state)) => match state.parse() {
            Ok(state) => QueueError::InvalidState { id: delivery.id.clone(), state, operation },
            Err(_) => unexpected(operation, reply),
        },
        _ => unexpected(operation, reply),
    }
}

fn parse_field<T: std::str::FromStr>(value: &str, reply: &[String]) -> Result<T, QueueError> {
    value.parse().map_err(|_| unexpected("begin", reply))
}

fn unexpected(operation: &str, reply: &[String]) -> QueueError {
    QueueError::UnexpectedReply(format!("{operation}: {reply:?}"))
}

fn is_nogroup(error: &QueueError) -> bool {
    matches!(error, QueueError::Redis(e) if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP"))
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
