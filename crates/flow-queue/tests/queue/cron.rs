use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_queue::{JobState, QueueError, Schedule, Scheduler};
use serde_json::json;
use tokio::time::Instant;

use crate::common::{config, queue};

fn schedule(id: &str, cron: &str, time_zone: &str) -> Schedule {
    Schedule {
        id: id.to_owned(),
        cron: cron.to_owned(),
        time_zone: time_zone.to_owned(),
        payload: json!({"schedule": id}),
        max_attempts: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_schedulers_enqueue_each_tick_once() {
    let (queue, _keys) = queue(config()).await;
    let schedules = vec![schedule("every-second", "* * * * * *", "UTC")];
    let until = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for n in 0..3u64 {
        let scheduler = Arc::new(Scheduler::new(queue.clone(), schedules.clone()).expect("valid"));
        tasks.push(tokio::spawn(async move {
            let mut fired = Vec::new();
            // Different periods so the schedulers interleave differently around each tick.
            let period = Duration::from_millis(40 + 30 * n);
            while Instant::now() < until {
                fired.extend(scheduler.tick(Utc::now()).await.expect("tick"));
                tokio::time::sleep(period).await;
            }
            fired
        }));
    }
    let mut fired = Vec::new();
    for task in tasks {
        fired.extend(task.await.expect("the scheduler task"));
    }
    let ids: HashSet<&str> = fired.iter().map(|f| f.job_id.as_str()).collect();
    assert_eq!(ids.len(), fired.len(), "a tick fired twice: {fired:?}");
    let ticks: HashSet<i64> = fired.iter().map(|f| f.tick.timestamp()).collect();
    assert_eq!(ticks.len(), fired.len());
    assert!((4..=6).contains(&fired.len()), "{} ticks in 5 s: {fired:?}", fired.len());
    let page = queue.list(JobState::Waiting, 0, 100).await.expect("list");
    assert_eq!(page.total, fired.len() as u64);
    assert!(page.jobs.iter().all(|job| job.payload == json!({"schedule": "every-second"})));
    for f in &fired {
        assert_eq!(f.job_id, format!("cron:every-second:{}", f.tick.timestamp_millis()));
    }
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time).expect("valid time").with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_ticks_fire_one_catch_up_run_then_the_schedule_goes_on() {
    let (queue, _keys) = queue(config()).await;
    let scheduler = Scheduler::new(
        queue.clone(),
        vec![
            schedule("minutely", "* * * * *", "UTC"),
            // 09:00 in Tokyo is 00:00 UTC.
            schedule("tokyo-nine", "0 9 * * *", "Asia/Tokyo"),
        ],
    )
    .expect("valid");
    let fired = |now: &str| {
        let scheduler = &scheduler;
        let now = at(now);
        async move {
            scheduler
                .tick(now)
                .await
                .expect("tick")
                .into_iter()
                .map(|f| (f.schedule_id, f.tick.to_rfc3339(), f.missed))
                .collect::<Vec<_>>()
        }
    };
    let tick = |id: &str, time: &str, missed: u32| (id.to_owned(), at(time).to_rfc3339(), missed);

    // First sight: the schedules start from now, with no past runs.
    assert_eq!(fired("2030-01-01T23:58:30Z").await, vec![]);
    assert_eq!(fired("2030-01-01T23:58:50Z").await, vec![]);
    assert_eq!(fired("2030-01-01T23:59:10Z").await, vec![tick("minutely", "2030-01-01T23:59:00Z", 0)]);
    assert_eq!(
        fired("2030-01-02T00:00:00Z").await,
        vec![tick("minutely", "2030-01-02T00:00:00Z", 0), tick("tokyo-nine", "2030-01-02T00:00:00Z", 0),]
    );
    // Again at the same time (another server): nothing new.
    assert_eq!(fired("2030-01-02T00:00:00Z").await, vec![]);
    // Every server down from 00:00:30 to 00:10:15: one catch-up run for the nine missed
    // minutes (00:01 to 00:09 are skipped), then the normal times again.
    assert_eq!(fired("2030-01-02T00:10:15Z").await, vec![tick("minutely", "2030-01-02T00:10:00Z", 9)]);
    assert_eq!(fired("2030-01-02T00:10:45Z").await, vec![]);
    assert_eq!(fired("2030-01-02T00:11:01Z").await, vec![tick("minutely", "2030-01-02T00:11:00Z", 0)]);
    // Down for two days: one catch-up run of the daily schedule too.
    let after_two_days = fired("2030-01-04T12:00:00Z").await;
    assert_eq!(after_two_days.len(), 2);
    assert_eq!(after_two_days[1], tick("tokyo-nine", "2030-01-04T00:00:00Z", 1));
    assert_eq!(queue.counts().await.expect("counts").waiting, 7, "every fired tick is one job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schedules_are_refused() {
    let (queue, _keys) = queue(config()).await;
    for bad in [
        schedule("bad-cron", "every day", "UTC"),
        schedule("bad-zone", "* * * * *", "Mars/Olympus"),
        schedule("", "* * * * *", "UTC"),
    ] {
        let result = Scheduler::new(queue.clone(), vec![bad.clone()]);
        assert!(matches!(result, Err(QueueError::Schedule { .. })), "{bad:?}");
    }
    let twice =
        Scheduler::new(queue, vec![schedule("a", "* * * * *", "UTC"), schedule("a", "0 * * * *", "UTC")]);
    assert!(matches!(twice, Err(QueueError::Schedule { .. })));
}
