use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob, Queue, QueueConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{ChildGuard, DEADLINE, config, init_logs, spawn_worker, wait_for, worker_config};

/// A Redis of this test's own, keeping its data in an append-only file synced at every write,
/// so that a SIGKILL loses nothing it acknowledged.
fn start_redis(port: u16, dir: &Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir),
    )
}

async fn wait_until_up(url: &str) {
    wait_for("redis to accept connections", DEADLINE, || async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_redis_restart_while_the_worker_runs_them() {
    init_logs();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = start_redis(port, dir.path());
    wait_until_up(&url).await;

    let queue = Queue::connect(&url, QueueConfig { lease: Duration::from_secs(5), ..config() })
        .await
        .expect("connect");
    // Jobs 0 to 19 run freely; the others wait for Redis to have been killed, so that some
    // finish while it is down (their outcome must wait for it) and the rest only exist in the
    // restarted Redis.
    let killed = CancellationToken::new();
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let (seen, released) = (runs.clone(), killed.clone());
    let worker = spawn_worker(&queue, worker_config("through-restart"), move |job| {
        let (seen, released) = (seen.clone(), released.clone());
        async move {
            if job.payload().as_u64().is_some_and(|n| n >= 20) {
                released.cancelled().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            *seen.lock().expect("not poisoned").entry(job.id().to_owned()).or_default() += 1;
            JobOutcome::Succeeded(json!(job.attempt()))
        }
    });
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(queue.enqueue(NewJob::new(json!(n))).await.expect("enqueue"));
    }

    wait_for("20 jobs to succeed and 4 to hang", DEADLINE, || async {
        let counts = queue.counts().await.ok()?;
        (counts.succeeded == 20 && counts.running == 4).then_some(())
    })
    .await;
    redis.kill();
    killed.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _redis = start_redis(port, dir.path());
    wait_until_up(&url).await;

    let counts = wait_for("all 50 jobs to succeed", DEADLINE * 2, || async {
        let counts = queue.counts().await.ok()?;
        (counts.succeeded == 50).then_some(counts)
    })
    .await;
    worker.stop().await;
    assert_eq!(counts.depth() + counts.running + counts.failed + counts.dead, 0);
    for id in &ids {
        let job = queue.get(id).await.expect("get").expect("not lost");
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    }
    let runs = runs.lock().expect("not poisoned");
    assert!(ids.iter().all(|id| runs.get(id).is_some_and(|&n| n >= 1)));
    assert!(runs.values().sum::<usize>() >= 50, "at least once: every job ran");
}
