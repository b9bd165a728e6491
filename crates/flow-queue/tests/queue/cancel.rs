use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_queue::{CancelOutcome, CancelReason, JobOutcome, JobState, NewJob, QueueConfig, QueueError};
use serde_json::json;

use crate::common::{Counter, DEADLINE, config, queue, spawn_worker, wait_for, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_cancelled_never_run() {
    let (queue, _keys) = queue(config()).await;
    let waiting = queue.enqueue(NewJob::new(json!("waiting"))).await.expect("enqueue");
    let delayed = queue
        .enqueue(NewJob::new(json!("delayed")).delay(Duration::from_millis(300)))
        .await
        .expect("enqueue");
    assert_eq!(queue.cancel(&waiting).await.expect("cancel"), CancelOutcome::Cancelled);
    assert_eq!(queue.cancel(&delayed).await.expect("cancel"), CancelOutcome::Cancelled);
    assert_eq!(queue.cancel(&waiting).await.expect("cancel"), CancelOutcome::Finished(JobState::Cancelled));
    assert!(matches!(queue.cancel("nope").await, Err(QueueError::NotFound(_))));
    let counts = queue.counts().await.expect("counts");
    assert_eq!((counts.depth(), counts.cancelled), (0, 2));

    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let worker = spawn_worker(&queue, worker_config("canceller"), move |job| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("not poisoned").push(job.id().to_owned());
            JobOutcome::Succeeded(json!(null))
        }
    });
    // A job enqueued after them runs; by then the cancelled ones would have run too, and the
    // delayed one is past its time.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = queue.enqueue(NewJob::new(json!("after"))).await.expect("enqueue");
    wait_state(&queue, &after, JobState::Succeeded).await;
    assert_eq!(*ran.lock().expect("not poisoned"), vec![after.clone()]);
    assert_eq!(queue.get(&delayed).await.expect("get").map(|j| j.state), Some(JobState::Cancelled));

    // A cancelled job can be run again.
    queue.retry(&waiting).await.expect("retry");
    wait_state(&queue, &waiting, JobState::Succeeded).await;
    worker.stop().await;
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.cancelled, metrics.succeeded), (2, 2));
}

/// A handler that waits for its cancel signal, then reports why it fired.
fn waiting_handler(
    reasons: Arc<Mutex<Vec<Option<CancelReason>>>>,
    started: Counter,
) -> impl Fn(flow_queue::JobContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = JobOutcome> + Send>>
+ Send
+ Sync
+ 'static {
    move |job| {
        let (reasons, started) = (reasons.clone(), started.clone());
        Box::pin(async move {
            started.bump();
            job.cancel_token().cancelled().await;
            reasons.lock().expect("not poisoned").push(job.cancel_reason());
            JobOutcome::Retry("stopped".into())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_fires_its_signal() {
    let (queue, _keys) = queue(config()).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let started = Counter::default();
    let worker =
        spawn_worker(&queue, worker_config("runner"), waiting_handler(reasons.clone(), started.clone()));
    let id = queue.enqueue(NewJob::new(json!("long"))).await.expect("enqueue");
    wait_for("the job to start", DEADLINE, || async { (started.get() == 1).then_some(()) }).await;
    assert_eq!(queue.cancel(&id).await.expect("cancel"), CancelOutcome::Requested);
    let cancelled = wait_state(&queue, &id, JobState::Cancelled).await;
    worker.stop().await;
    assert_eq!(*reasons.lock().expect("not poisoned"), vec![Some(CancelReason::Requested)]);
    assert!(cancelled.cancel_requested);
    assert_eq!(cancelled.last_error.as_deref(), Some("stopped"));
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.cancelled, metrics.retried), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_a_running_job_tells_its_handler_the_lease_is_lost() {
    let (queue, _keys) = queue(QueueConfig { lease: Duration::from_millis(600), ..config() }).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let started = Counter::default();
    let worker =
        spawn_worker(&queue, worker_config("discarded"), waiting_handler(reasons.clone(), started.clone()));
    let id = queue.enqueue(NewJob::new(json!("long"))).await.expect("enqueue");
    wait_for("the job to start", DEADLINE, || async { (started.get() == 1).then_some(()) }).await;
    assert!(queue.discard(&id).await.expect("discard"));
    wait_for("the handler to stop", DEADLINE, || async {
        let reasons = reasons.lock().expect("not poisoned");
        (!reasons.is_empty()).then(|| reasons.clone())
    })
    .await;
    worker.stop().await;
    assert_eq!(*reasons.lock().expect("not poisoned"), vec![Some(CancelReason::LeaseLost)]);
    assert_eq!(queue.get(&id).await.expect("get"), None);
    let counts = queue.counts().await.expect("counts");
    assert_eq!(counts, flow_queue::StateCounts::default());
}
