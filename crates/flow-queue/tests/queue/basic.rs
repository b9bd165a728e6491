use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob, QueueError};
use serde_json::json;

use crate::common::{Counter, config, queue, spawn_worker, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueued_job_runs_once_and_its_result_and_metrics_are_stored() {
    let (queue, _keys) = queue(config()).await;
    let id = queue.enqueue(NewJob::new(json!({"n": 21}))).await.expect("enqueue");
    assert_eq!(uuid::Uuid::parse_str(&id).expect("a UUID").get_version_num(), 7);
    queue.ping().await.expect("ping");
    let waiting = queue.get(&id).await.expect("get").expect("the job exists");
    assert_eq!(waiting.state, JobState::Waiting);
    assert_eq!(waiting.attempts, 0);
    assert_eq!(queue.counts().await.expect("counts").depth(), 1);

    let calls = Counter::default();
    let seen = calls.clone();
    let worker = spawn_worker(&queue, worker_config("basic"), move |job| {
        let seen = seen.clone();
        async move {
            seen.bump();
            job.progress(&json!({"step": 1})).await.expect("progress");
            let n = job.payload()["n"].as_i64().unwrap_or_default();
            JobOutcome::Succeeded(json!({"doubled": n * 2}))
        }
    });
    let done = wait_state(&queue, &id, JobState::Succeeded).await;
    worker.stop().await;

    assert_eq!(calls.get(), 1);
    assert_eq!(done.result, Some(json!({"doubled": 42})));
    assert_eq!(done.progress, Some(json!({"step": 1})));
    assert_eq!(done.attempts, 1);
    assert_eq!(done.token, 1);
    assert_eq!(done.worker.as_deref(), Some("basic"));
    let (Some(started), Some(finished)) = (done.started_at, done.finished_at) else {
        panic!("start and finish times are stored: {done:?}");
    };
    assert!(done.enqueued_at <= started && started <= finished);

    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!(metrics.enqueued, 1);
    assert_eq!(metrics.deliveries, 1);
    assert_eq!(metrics.succeeded, 1);
    assert_eq!((metrics.retried, metrics.dead, metrics.failed), (0, 0, 0));
    assert_eq!(metrics.counts.succeeded, 1);
    assert_eq!(metrics.counts.depth(), 0);
    assert_eq!(metrics.counts.running, 0);
    assert_eq!(metrics.wait.count, 1);
    assert_eq!(metrics.processing.count, 1);
    assert!(metrics.processing.mean_ms().is_some());
    assert_eq!(
        metrics.processing.buckets.last().map(|b| b.count),
        Some(1),
        "the +Inf bucket holds every observation"
    );

    let page = queue.list(JobState::Succeeded, 0, 10).await.expect("list");
    assert_eq!(page.total, 1);
    assert_eq!(page.jobs, vec![done]);

    assert_eq!(
        queue.cleanup(Duration::from_secs(3600)).await.expect("cleanup"),
        0,
        "a job finished just now is kept"
    );
    assert_eq!(queue.cleanup(Duration::ZERO).await.expect("cleanup"), 1);
    assert_eq!(queue.get(&id).await.expect("get"), None);
    assert_eq!(queue.counts().await.expect("counts").succeeded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_ids_are_unique_and_listing_pages() {
    let (queue, _keys) = queue(config()).await;
    for n in 0..5 {
        queue.enqueue(NewJob::new(json!(n)).id(format!("job-{n}"))).await.expect("enqueue");
    }
    let again = queue.enqueue(NewJob::new(json!(0)).id("job-0")).await;
    assert!(matches!(again, Err(QueueError::AlreadyExists(id)) if id == "job-0"));
    let zero_attempts = queue.enqueue(NewJob::new(json!(0)).max_attempts(0)).await;
    assert!(matches!(zero_attempts, Err(QueueError::Invalid(_))));

    let first = queue.list(JobState::Waiting, 0, 2).await.expect("list");
    assert_eq!(first.total, 5);
    assert_eq!(first.jobs.len(), 2);
    let last = queue.list(JobState::Waiting, 4, 2).await.expect("list");
    assert_eq!(last.jobs.len(), 1);
    assert_eq!(last.jobs[0].state, JobState::Waiting);

    assert!(queue.discard("job-3").await.expect("discard"));
    assert!(!queue.discard("job-3").await.expect("discard"));
    assert_eq!(queue.get("job-3").await.expect("get"), None);
    assert_eq!(queue.counts().await.expect("counts").waiting, 4);
    assert!(matches!(
        queue.retry("job-1").await,
        Err(QueueError::InvalidState { state: JobState::Waiting, .. })
    ));
    assert!(matches!(queue.retry("nope").await, Err(QueueError::NotFound(_))));
}
