use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob};
use serde_json::json;
use tokio::time::Instant;

use crate::common::{Counter, config, queue, spawn_worker, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_back_off_then_dead_letter_and_a_retry_starts_over() {
    let config = config();
    let (queue, _keys) = queue(config.clone()).await;
    let id = queue.enqueue(NewJob::new(json!("flaky")).max_attempts(3)).await.expect("enqueue");

    // Fails transiently on its first three calls, succeeds on the fourth.
    let starts = Arc::new(Mutex::new(Vec::new()));
    let calls = Counter::default();
    let (seen, times) = (calls.clone(), starts.clone());
    let worker = spawn_worker(&queue, worker_config("retrier"), move |job| {
        let (seen, times) = (seen.clone(), times.clone());
        async move {
            times.lock().expect("not poisoned").push(Instant::now());
            let call = seen.bump();
            if call <= 3 {
                JobOutcome::Retry(format!("boom {} of {}", job.attempt(), job.max_attempts()))
            } else {
                JobOutcome::Succeeded(json!(call))
            }
        }
    });

    let dead = wait_state(&queue, &id, JobState::Dead).await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("boom 3 of 3"));
    assert_eq!(calls.get(), 3);
    {
        let times = starts.lock().expect("not poisoned");
        // Equal jitter keeps at least half of base * 2^(attempt-1) (base 50 ms); a little
        // slack for Redis' clock against this one.
        for (gap, at_least) in times.windows(2).map(|w| w[1] - w[0]).zip([20, 45]) {
            assert!(gap >= Duration::from_millis(at_least), "{gap:?} < {at_least} ms");
        }
    }
    let letters = queue.dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].job_id, id);
    assert_eq!(letters[0].error, "boom 3 of 3");
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.retried, metrics.dead, metrics.deliveries), (2, 1, 3));
    assert_eq!(metrics.counts.dead, 1);

    // Retrying a dead job resets its attempts: it runs again from attempt 1.
    queue.retry(&id).await.expect("retry");
    let done = wait_state(&queue, &id, JobState::Succeeded).await;
    worker.stop().await;
    assert_eq!(done.attempts, 1);
    assert_eq!(done.result, Some(json!(4)));
    assert_eq!(done.token, 4, "the token keeps growing across a retry");
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.requeued, metrics.succeeded), (1, 1));
    assert_eq!(metrics.counts.dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_not_retried_and_a_panic_is_retried() {
    let (queue, _keys) = queue(config()).await;
    let failing = queue.enqueue(NewJob::new(json!("fail"))).await.expect("enqueue");
    let panicking = queue.enqueue(NewJob::new(json!("panic"))).await.expect("enqueue");
    let calls = Counter::default();
    let seen = calls.clone();
    let worker = spawn_worker(&queue, worker_config("failer"), move |job| {
        let seen = seen.clone();
        async move {
            seen.bump();
            match (job.payload().as_str(), job.attempt()) {
                (Some("panic"), 1) => panic!("the handler blew up"),
                (Some("panic"), _) => JobOutcome::Succeeded(json!("recovered")),
                _ => JobOutcome::Failed("bad input".into()),
            }
        }
    });
    let failed = wait_state(&queue, &failing, JobState::Failed).await;
    let recovered = wait_state(&queue, &panicking, JobState::Succeeded).await;
    worker.stop().await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("bad input"));
    assert_eq!(recovered.attempts, 2);
    let error = recovered.last_error.unwrap_or_default();
    assert!(error.contains("panicked"), "{error}");
    assert_eq!(calls.get(), 3);
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.failed, metrics.retried, metrics.dead), (1, 1, 0));
}
