use std::time::Duration;

use chrono::Utc;
use flow_queue::{JobOutcome, JobState, NewJob};
use serde_json::json;

use crate::common::{config, queue, spawn_worker, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_jobs_run_not_before_their_time() {
    let (queue, _keys) = queue(config()).await;
    let later =
        queue.enqueue(NewJob::new(json!("later")).delay(Duration::from_millis(1500))).await.expect("enqueue");
    let run_at = Utc::now() + chrono::Duration::milliseconds(1200);
    let at = queue.enqueue(NewJob::new(json!("at")).run_at(run_at)).await.expect("enqueue");
    let now = queue.enqueue(NewJob::new(json!("now"))).await.expect("enqueue");
    let counts = queue.counts().await.expect("counts");
    assert_eq!((counts.delayed, counts.waiting, counts.depth()), (2, 1, 3));
    let waiting = queue.get(&later).await.expect("get").expect("exists");
    assert_eq!(waiting.state, JobState::Delayed);

    let worker =
        spawn_worker(&queue, worker_config("patient"), |_job| async { JobOutcome::Succeeded(json!(null)) });
    wait_state(&queue, &now, JobState::Succeeded).await;
    let later = wait_state(&queue, &later, JobState::Succeeded).await;
    let at = wait_state(&queue, &at, JobState::Succeeded).await;
    worker.stop().await;

    let started = later.started_at.expect("started");
    assert!(
        started - later.enqueued_at >= chrono::Duration::milliseconds(1500),
        "started {started}, enqueued {}",
        later.enqueued_at
    );
    assert_eq!(later.run_at, Some(later.enqueued_at + chrono::Duration::milliseconds(1500)));
    assert_eq!(at.run_at.map(|t| t.timestamp_millis()), Some(run_at.timestamp_millis()));
    assert!(at.started_at.expect("started") >= at.run_at.expect("run at"));
}
