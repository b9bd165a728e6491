use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob, QueueConfig, QueueError};
use serde_json::json;

use crate::common::{config, queue, spawn_worker, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_stops_renewing_is_reclaimed_and_the_old_delivery_is_fenced() {
    let (queue, _keys) = queue(QueueConfig { lease: Duration::from_millis(500), ..config() }).await;
    let id = queue.enqueue(NewJob::new(json!("work"))).await.expect("enqueue");

    // Worker A takes the job by hand and then hangs: it never renews nor completes.
    let mut a = queue.consumer("a").expect("consumer");
    let taken = a.fetch(1, Duration::from_secs(5)).await.expect("fetch");
    let [stale] = taken.as_slice() else {
        panic!("one delivery expected, got {taken:?}");
    };
    assert_eq!((stale.attempt, stale.token), (1, 1));

    // Worker B reclaims it once the lease has run out, and completes it.
    let worker = spawn_worker(&queue, worker_config("b"), |job| async move {
        JobOutcome::Succeeded(json!({"by": "b", "attempt": job.attempt()}))
    });
    let done = wait_state(&queue, &id, JobState::Succeeded).await;
    worker.stop().await;
    assert_eq!(done.result, Some(json!({"by": "b", "attempt": 2})));
    assert_eq!((done.attempts, done.token), (2, 2));
    assert_eq!(done.worker.as_deref(), Some("b"));

    // A wakes up: everything it tries is refused by the fencing token.
    let late = queue.complete(stale, &JobOutcome::Succeeded(json!({"by": "a"}))).await;
    assert!(matches!(late, Err(QueueError::LeaseLost { token: 1, current: 2, .. })), "{late:?}");
    assert!(matches!(queue.renew(stale).await, Err(QueueError::LeaseLost { .. })));
    assert!(matches!(queue.report_progress(stale, &json!(1)).await, Err(QueueError::LeaseLost { .. })));
    let after = queue.get(&id).await.expect("get").expect("exists");
    assert_eq!(after.result, Some(json!({"by": "b", "attempt": 2})));

    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!(metrics.reclaimed, 1);
    assert_eq!(metrics.deliveries, 2);
    assert_eq!(metrics.succeeded, 1);
    assert_eq!(metrics.wait.count, 1, "a reclaim is not a new wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_twice_writes_once() {
    let (queue, _keys) = queue(config()).await;
    let id = queue.enqueue(NewJob::new(json!(1))).await.expect("enqueue");
    let mut consumer = queue.consumer("by-hand").expect("consumer");
    let deliveries = consumer.fetch(10, Duration::from_secs(5)).await.expect("fetch");
    let [delivery] = deliveries.as_slice() else {
        panic!("one delivery expected, got {deliveries:?}");
    };
    assert_eq!(delivery.id, id);
    let outcome = JobOutcome::Succeeded(json!("ok"));
    // A completion whose reply was lost is sent again: the second call reports what is there.
    assert_eq!(queue.complete(delivery, &outcome).await.expect("complete"), JobState::Succeeded);
    assert_eq!(queue.complete(delivery, &outcome).await.expect("complete again"), JobState::Succeeded);
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.succeeded, metrics.processing.count), (1, 1));
    assert!(consumer.fetch(10, Duration::ZERO).await.expect("fetch").is_empty());
    assert!(consumer.reclaim(10).await.expect("reclaim").is_empty());
}
