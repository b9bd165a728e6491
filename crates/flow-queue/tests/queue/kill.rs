use std::time::Duration;

use flow_queue::{JobOutcome, JobState, NewJob, QueueConfig};
use serde_json::json;

use crate::common::{Counter, DEADLINE, config, queue, spawn_worker, test_worker, wait_state, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_worker_killed_with_sigkill_is_finished_once_by_another() {
    let config = QueueConfig { lease: Duration::from_secs(2), ..config() };
    let (queue, _keys) = queue(config.clone()).await;
    let id = queue.enqueue(NewJob::new(json!("survive"))).await.expect("enqueue");

    let mut child = test_worker(&config, "hang");
    let line = child.next_line().await;
    let started = tokio::time::Instant::now();
    assert_eq!(line, format!("started {id} 1 1"));

    // A second worker runs alongside. Past one lease, the job is still the child's: it renews
    // its lease while it lives.
    let calls = Counter::default();
    let seen = calls.clone();
    let worker = spawn_worker(&queue, worker_config("survivor"), move |job| {
        let seen = seen.clone();
        async move {
            seen.bump();
            JobOutcome::Succeeded(json!({"attempt": job.attempt()}))
        }
    });
    tokio::time::sleep_until(started + config.lease + Duration::from_millis(500)).await;
    let held = queue.get(&id).await.expect("get").expect("exists");
    assert_eq!((held.state, held.token), (JobState::Running, 1));
    assert_eq!(held.worker, Some(format!("child-{}", child.id())));
    assert_eq!(calls.get(), 0);

    child.kill();
    let done = wait_state(&queue, &id, JobState::Succeeded).await;
    assert_eq!(done.worker.as_deref(), Some("survivor"));
    assert_eq!(done.result, Some(json!({"attempt": 2})));
    assert_eq!(done.attempts, 2);
    worker.stop().await;
    assert_eq!(calls.get(), 1);
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.reclaimed, metrics.succeeded), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_job_that_kills_every_worker_is_dead_lettered_by_delivery_count() {
    let config = QueueConfig { lease: Duration::from_millis(300), ..config() };
    let (queue, _keys) = queue(config.clone()).await;
    let id = queue.enqueue(NewJob::new(json!("poison")).max_attempts(3)).await.expect("enqueue");

    // Worker processes start one after another; each dies on the job's delivery.
    let mut deliveries = Vec::new();
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut child = test_worker(&config, "exit");
        let dead = loop {
            while let Ok(line) = child.lines.try_recv() {
                deliveries.push(line);
            }
            let job = queue.get(&id).await.expect("get").expect("exists");
            if job.state == JobState::Dead {
                break true;
            }
            if child.exited() {
                break false;
            }
            assert!(tokio::time::Instant::now() < give_up, "timed out: {job:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if dead {
            break;
        }
        // The rest of what it printed before exiting (its stdout is closed now).
        while let Some(line) = child.lines.recv().await {
            deliveries.push(line);
        }
    }
    assert_eq!(
        deliveries,
        vec![format!("started {id} 1 1"), format!("started {id} 2 2"), format!("started {id} 3 3"),]
    );
    let job = queue.get(&id).await.expect("get").expect("exists");
    assert_eq!(job.attempts, 3);
    let error = job.last_error.unwrap_or_default();
    assert!(error.contains("no result after 3 deliveries"), "{error}");
    let letters = queue.dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].job_id.as_str(), letters[0].attempts), (id.as_str(), 3));
    let metrics = queue.metrics().await.expect("metrics");
    assert_eq!((metrics.dead, metrics.reclaimed, metrics.deliveries), (1, 2, 3));
    assert_eq!(metrics.counts.dead, 1);
}
