//! Helpers: each test gets its own key prefix on the shared Redis, and guards that stop what it
//! started (workers, child processes, keys) even when it fails.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flow_queue::{JobContext, JobOutcome, JobState, Queue, QueueConfig, Worker, WorkerConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shared Redis: `REDIS_URL`, or the machine's.
pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A slow, shared 2-core machine: deadlines are generous, never assertions about speed.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// A queue config with a prefix of its own and quick retries.
pub(crate) fn config() -> QueueConfig {
    QueueConfig {
        prefix: format!("flow:queue:test:{}:", uuid::Uuid::now_v7()),
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(200),
        ..QueueConfig::default()
    }
}

/// A connected queue whose keys are deleted when the returned guard drops.
pub(crate) async fn queue(config: QueueConfig) -> (Queue, KeysGuard) {
    queue_at(&redis_url(), config).await
}

pub(crate) async fn queue_at(url: &str, config: QueueConfig) -> (Queue, KeysGuard) {
    init_logs();
    let guard = KeysGuard { url: url.to_owned(), prefix: config.prefix.clone() };
    let queue = Queue::connect(url, config).await.expect("connect to Redis");
    (queue, guard)
}

/// The crate's logs, shown with a failing test's output (`RUST_LOG` overrides the filter).
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("flow_queue=debug"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Deletes the test's keys (by its prefix) when dropped.
pub(crate) struct KeysGuard {
    url: String,
    prefix: String,
}

impl Drop for KeysGuard {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Worker settings that notice things quickly.
pub(crate) fn worker_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: id.to_owned(),
        concurrency: 4,
        block: Duration::from_millis(200),
        promote_interval: Duration::from_millis(50),
        reclaim_interval: Some(Duration::from_millis(100)),
        shutdown_timeout: Duration::from_secs(10),
    }
}

/// A worker running in the background; stopped when dropped.
pub(crate) struct RunningWorker {
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningWorker {
    /// Asks it to stop and waits until it has.
    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("the worker stops")
                .expect("the worker task ends");
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub(crate) fn spawn_worker<H, F>(queue: &Queue, config: WorkerConfig, handler: H) -> RunningWorker
where
    H: Fn(JobContext) -> F + Send + Sync + 'static,
    F: Future<Output = JobOutcome> + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let worker = Worker::new(queue.clone(), config).expect("valid worker config");
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        worker.run(handler, token).await.expect("the worker runs");
    });
    RunningWorker { shutdown, task: Some(task) }
}

/// Polls `probe` until it returns `Some`, failing the test after `deadline`.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < give_up, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until job `id` is in `state`.
pub(crate) async fn wait_state(queue: &Queue, id: &str, state: JobState) -> flow_queue::JobInfo {
    wait_for(&format!("job {id} to be {state}"), DEADLINE, || async {
        queue.get(id).await.expect("get the job").filter(|job| job.state == state)
    })
    .await
}

/// Counts calls, shared between a handler and the test.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped, with its stdout lines on a
/// channel.
pub(crate) struct ChildGuard {
    child: Child,
    pub(crate) lines: mpsc::UnboundedReceiver<String>,
}

impl ChildGuard {
    pub(crate) fn spawn(command: &mut Command) -> Self {
        let mut child =
            command.stdout(Stdio::piped()).stdin(Stdio::null()).spawn().expect("spawn the child process");
        let (sender, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Self { child, lines }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then wait for it to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The next stdout line, within the deadline.
    pub(crate) async fn next_line(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.lines.recv())
            .await
            .expect("the child prints a line in time")
            .expect("the child is still running")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test worker binary (`tests/bin/test_worker.rs`) on this queue.
pub(crate) fn test_worker(config: &QueueConfig, mode: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_flow-queue-test-worker"))
            .arg(redis_url())
            .arg(&config.prefix)
            .arg(config.lease.as_millis().to_string())
            .arg(mode),
    )
}
