//! Cron schedules from the store, fired through the queue's scheduler: every `flow serve` runs
//! this loop, and the queue enqueues each tick exactly once however many do (see `flow_queue`
//! for the policy on ticks missed while every server was down: one catch-up run).

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use flow_queue::{Queue, Schedule, Scheduler};
use flow_store::Store;
use tokio_util::sync::CancellationToken;

use crate::worker::RunJob;

/// How often due ticks are looked for.
const TICK: Duration = Duration::from_millis(250);
/// How often the schedules are read again from the store (a new or changed schedule takes
/// effect within this).
const RELOAD: Duration = Duration::from_secs(2);
/// Finished jobs stay in Redis this long (their executions stay in the history for good).
const KEEP_FINISHED_JOBS: Duration = Duration::from_secs(24 * 3600);
/// How often finished jobs older than that are deleted.
const CLEANUP: Duration = Duration::from_secs(600);

/// Whether a cron expression and time zone are usable; the error says why not.
pub(crate) fn check(cron: &str, timezone: &str) -> Result<(), String> {
    croner::Cron::from_str(cron).map_err(|e| format!("cron expression {cron:?}: {e}"))?;
    chrono_tz::Tz::from_str(timezone).map_err(|e| format!("time zone {timezone:?}: {e}"))?;
    Ok(())
}

/// The queue's view of the store's enabled schedules; unusable ones are left out with a warning.
async fn load(store: &Store) -> Result<Vec<Schedule>, flow_store::StoreError> {
    let schedules = store.list_enabled_schedules().await?;
    Ok(schedules
        .into_iter()
        .filter(|s| match check(&s.cron, &s.timezone) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(schedule = %s.id, error = %e, "schedule skipped");
                false
            }
        })
        .map(|s| Schedule {
            id: s.id.to_string(),
            cron: s.cron,
            time_zone: s.timezone,
            payload: serde_json::to_value(RunJob {
                execution_id: None,
                flow_id: s.flow_id,
                flow: None,
                owner: s.owner,
                vars: s.vars.into_iter().collect(),
                correlation_id: None,
            })
            .unwrap_or_default(),
            max_attempts: None,
        })
        .collect())
}

/// Fires due ticks, and deletes finished jobs a day old, until `shutdown`.
pub(crate) async fn run(store: Store, queue: Queue, shutdown: CancellationToken) {
    let mut scheduler: Option<Scheduler> = None;
    let mut reloaded = tokio::time::Instant::now() - RELOAD;
    let mut cleaned = tokio::time::Instant::now();
    loop {
        if cleaned.elapsed() >= CLEANUP {
            match queue.cleanup(KEEP_FINISHED_JOBS).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "queue: finished jobs a day old deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "queue: cleanup failed"),
            }
            cleaned = tokio::time::Instant::now();
        }
        if reloaded.elapsed() >= RELOAD {
            match load(&store)
                .await
                .map_err(|e| e.to_string())
                .and_then(|s| Scheduler::new(queue.clone(), s).map_err(|e| e.to_string()))
            {
                Ok(s) => scheduler = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "schedules: cannot load them; keeping the previous ones")
                }
            }
            reloaded = tokio::time::Instant::now();
        }
        if let Some(scheduler) = &scheduler {
            match scheduler.tick(Utc::now()).await {
                Ok(fired) => {
                    for f in fired {
                        tracing::info!(schedule = %f.schedule_id, job = %f.job_id, tick = %f.tick, missed = f.missed, "schedule fired");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "schedules: tick failed"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn cron_and_time_zones_are_checked() {
        assert!(check("*/5 * * * * *", "Europe/Paris").is_ok());
        assert!(check("0 9 * * MON", "UTC").is_ok());
        assert!(check("every day", "UTC").expect_err("invalid").contains("cron expression"));
        assert!(check("0 9 * * *", "Mars/Olympus").expect_err("invalid").contains("time zone"));
    }
}
