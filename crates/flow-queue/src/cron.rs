use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Queue, QueueError};

/// Ticks between the last fired one and a catch-up run that are counted for [`Fired::missed`];
/// more are reported as this many.
const MISSED_COUNT_LIMIT: usize = 10_000;

/// A recurring job: a cron expression in a time zone, and the payload each tick enqueues.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Unique among schedules; names the schedule's state in Redis, so keep it stable.
    pub id: String,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first;
    /// `@hourly`-style nicknames too (the `croner` syntax).
    pub cron: String,
    /// An IANA time zone such as `Europe/Paris` or `UTC`, in which the expression is read
    /// (daylight saving changes included).
    pub time_zone: String,
    /// The payload of each tick's job.
    pub payload: Value,
    /// Attempts of each tick's job (default: the queue's).
    pub max_attempts: Option<u32>,
}

/// A tick that [`Scheduler::tick`] enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The schedule.
    pub schedule_id: String,
    /// The tick's time.
    pub tick: DateTime<Utc>,
    /// The job enqueued: `cron:<schedule id>:<tick in ms>`.
    pub job_id: String,
    /// Ticks skipped before this one because no scheduler ran at their time (0 normally).
    pub missed: u32,
}

struct Parsed {
    schedule: Schedule,
    cron: Cron,
    time_zone: Tz,
}

/// Enqueues the ticks of cron schedules, each exactly once however many schedulers (servers)
/// run the same schedules at once; see the crate docs for the missed-tick policy.
pub struct Scheduler {
    queue: Queue,
    schedules: Vec<Parsed>,
}

impl Scheduler {
    /// A scheduler for these schedules.
    ///
    /// # Errors
    /// [`QueueError::Schedule`] for an empty or repeated id, an invalid cron expression or an
    /// unknown time zone; [`QueueError::Invalid`] for zero attempts.
    pub fn new(queue: Queue, schedules: Vec<Schedule>) -> Result<Self, QueueError> {
        let mut ids = HashSet::new();
        let mut parsed = Vec::with_capacity(schedules.len());
        for schedule in schedules {
            let invalid = |reason: String| QueueError::Schedule { id: schedule.id.clone(), reason };
            if schedule.id.is_empty() {
                return Err(invalid("the id is empty".into()));
            }
            if !ids.insert(schedule.id.clone()) {
                return Err(invalid("the id is used twice".into()));
            }
            if schedule.max_attempts == Some(0) {
                return Err(QueueError::Invalid(format!("schedule {}: max_attempts is 0", schedule.id)));
            }
            let cron = Cron::from_str(&schedule.cron)
                .map_err(|e| invalid(format!("cron expression {:?}: {e}", schedule.cron)))?;
            let time_zone = schedule.time_zone.parse().map_err(|e| invalid(format!("time zone: {e}")))?;
            parsed.push(Parsed { schedule, cron, time_zone });
        }
        Ok(Self { queue, schedules: parsed })
    }

    /// Enqueues the ticks due at `now` (pass `Utc::now()`; tests pass a simulated clock) and
    /// returns those this call enqueued. Call it often (e.g. every second) from every server.
    ///
    /// # Errors
    /// Redis errors; the schedules before the failing one are handled.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Fired>, QueueError> {
        let mut fired = Vec::new();
        for schedule in &self.schedules {
            fired.extend(self.tick_one(schedule, now).await?);
        }
        Ok(fired)
    }

    async fn tick_one(&self, parsed: &Parsed, now: DateTime<Utc>) -> Result<Option<Fired>, QueueError> {
        let id = &parsed.schedule.id;
        let Some(last) = self.last_tick(id, now).await? else {
            return Ok(None);
        };
        let Ok(latest) = parsed.cron.find_previous_occurrence(&now.with_timezone(&parsed.time_zone), true)
        else {
            return Ok(None);
        };
        let tick_ms = latest.timestamp_millis();
        if tick_ms <= last {
            return Ok(None);
        }
        let missed = DateTime::from_timestamp_millis(last).map_or(0, |last| {
            parsed
                .cron
                .iter_after(last.with_timezone(&parsed.time_zone))
                .take_while(|tick| *tick < latest)
                .take(MISSED_COUNT_LIMIT)
                .count()
        });
        let job_id = format!("cron:{id}:{tick_ms}");
        let max_attempts = parsed.schedule.max_attempts.unwrap_or(self.queue.config().default_max_attempts);
        let enqueued =
            self.queue.fire_tick(id, tick_ms, &job_id, &parsed.schedule.payload, max_attempts).await?;
        if !enqueued {
            return Ok(None);
        }
        let missed = u32::try_from(missed).unwrap_or(u32::MAX);
        if missed > 0 {
            tracing::warn!(schedule = %id, missed, "ticks missed while no scheduler ran; fired one catch-up run");
        }
        Ok(Some(Fired { schedule_id: id.clone(), tick: latest.with_timezone(&Utc), job_id, missed }))
    }

    /// The schedule's last fired tick in ms. The first call ever for a schedule records `now`
    /// instead and returns `None`: a new schedule starts from now, with no past runs.
    async fn last_tick(&self, id: &str, now: DateTime<Utc>) -> Result<Option<i64>, QueueError> {
        let key = self.queue.key(&format!("cron:{id}"));
        let mut conn = self.queue.conn();
        let set: bool = redis::cmd("HSETNX")
            .arg(&key)
            .arg("last_tick")
            .arg(now.timestamp_millis())
            .query_async(&mut conn)
            .await?;
        if set {
            return Ok(None);
        }
        let last: Option<i64> = redis::cmd("HGET").arg(&key).arg("last_tick").query_async(&mut conn).await?;
        Ok(last)
    }

    /// Calls [`Scheduler::tick`] every `every` until `shutdown` fires, logging errors.
    pub async fn run(&self, every: Duration, shutdown: CancellationToken) {
        loop {
            match self.tick(Utc::now()).await {
                Ok(fired) => {
                    for fired in fired {
                        tracing::info!(schedule = %fired.schedule_id, job = %fired.job_id, tick = %fired.tick, "cron tick enqueued");
                    }
                }
                Err(error) => tracing::warn!(%error, "cron tick failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_occurrence_includes_now_and_follows_the_time_zone() {
        let cron = Cron::from_str("0 9 * * *").expect("valid");
        let paris: Tz = "Europe/Paris".parse().expect("known zone");
        // 08:30 UTC on a summer day is 10:30 in Paris: today's 09:00 Paris (07:00 UTC) is past.
        let now =
            DateTime::parse_from_rfc3339("2025-07-01T08:30:00Z").expect("valid time").with_timezone(&Utc);
        let latest =
            cron.find_previous_occurrence(&now.with_timezone(&paris), true).expect("a previous tick");
        assert_eq!(latest.with_timezone(&Utc).to_rfc3339(), "2025-07-01T07:00:00+00:00");
        let every_second = Cron::from_str("* * * * * *").expect("valid");
        let now =
            DateTime::parse_from_rfc3339("2025-07-01T08:30:05.300Z").expect("valid time").with_timezone(&Utc);
        let latest = every_second.find_previous_occurrence(&now, true).expect("a previous tick");
        assert_eq!(latest.to_rfc3339(), "2025-07-01T08:30:05+00:00");
    }
}
