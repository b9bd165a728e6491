use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob, QueueConfig};
use redis::streams::StreamInfoConsumersReply;
use serde_json::json;

use crate::common::{
    Counter, DEADLINE, config, queue, redis_url, spawn_worker, wait_for, wait_state, worker_config,
};

async fn consumers(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).expect("a valid URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let reply: StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{prefix}stream"))
        .arg("workers")
        .query_async(&mut conn)
        .await
        .expect("XINFO CONSUMERS");
    reply.consumers.into_iter().map(|c| c.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_lets_running_jobs_finish_and_leaves_stuck_ones_to_be_reclaimed() {
    let config = QueueConfig { lease: Duration::from_millis(500), ..config() };
    let (queue, _keys) = queue(config.clone()).await;
    let quick = queue.enqueue(NewJob::new(json!("quick"))).await.expect("enqueue");
    let stuck = queue.enqueue(NewJob::new(json!("stuck"))).await.expect("enqueue");
    let started = Counter::default();
    let seen = started.clone();
    let first = spawn_worker(
        &queue,
        flow_queue::WorkerConfig { shutdown_timeout: Duration::from_secs(1), ..worker_config("first") },
        move |job| {
            let seen = seen.clone();
            async move {
                seen.bump();
                if job.payload() == &json!("stuck") {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                JobOutcome::Succeeded(json!("done"))
            }
        },
    );
    wait_for("both jobs to start", DEADLINE, || async { (started.get() == 2).then_some(()) }).await;
    first.stop().await;
    // The stop waited for the quick job; the stuck one was aborted and is still running.
    let job = queue.get(&quick).await.expect("get").expect("exists");
    assert_eq!(job.state, JobState::Succeeded);
    let job = queue.get(&stuck).await.expect("get").expect("exists");
    assert_eq!(job.state, JobState::Running);

    let second = spawn_worker(&queue, worker_config("second"), |_job| async {
        JobOutcome::Succeeded(json!("rescued"))
    });
    let rescued = wait_state(&queue, &stuck, JobState::Succeeded).await;
    assert_eq!(rescued.attempts, 2);
    assert_eq!(rescued.worker.as_deref(), Some("second"));
    second.stop().await;
    // A worker that stops with nothing pending leaves the group; the aborted one stays.
    assert_eq!(consumers(&config.prefix).await, vec!["first".to_owned()]);
}
