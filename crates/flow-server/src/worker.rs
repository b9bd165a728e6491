//! The worker: takes run jobs from the queue and runs them on the embedded engine, with the
//! history in PostgreSQL (fenced by the delivery's token, so a worker whose job was reclaimed
//! writes nothing more) and the events published for the API processes.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use flow_engine::{Engine, EngineError, ExecutionState, Flow, FlowOrigin, RunOptions};
use flow_queue::{JobContext, JobOutcome, Queue, Worker, WorkerConfig};
use flow_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::events::{Origin, Origins};

/// A queued run of a stored flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunJob {
    /// Given by the API (the execution is listed as queued at once); cron ticks leave it out
    /// and get one derived from the job id, the same on every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) execution_id: Option<Uuid>,
    pub(crate) flow_id: Uuid,
    /// The flow as it was when the run was asked for (API runs: the version validated is the
    /// version run, and the worker needs no read); cron ticks leave it out and run the stored
    /// flow as it is when they fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<Flow>,
    pub(crate) owner: Uuid,
    #[serde(default)]
    pub(crate) vars: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_id: Option<String>,
}

/// What the job handler needs.
struct Runner {
    engine: Engine,
    store: Store,
    origins: Origins,
}

/// Runs jobs until `shutdown`, `concurrency` at a time.
pub(crate) async fn run(
    engine: Engine,
    store: Store,
    queue: Queue,
    origins: Origins,
    concurrency: usize,
    shutdown: CancellationToken,
) -> Result<(), flow_queue::QueueError> {
    let config = WorkerConfig { concurrency: concurrency.max(1), ..WorkerConfig::default() };
    tracing::info!(worker = %config.id, concurrency = config.concurrency, "worker started");
    let worker = Worker::new(queue, config)?;
    let runner = Arc::new(Runner { engine, store, origins });
    worker
        .run(
            move |ctx| {
                let runner = Arc::clone(&runner);
                async move { runner.handle(ctx).await }
            },
            shutdown,
        )
        .await
}

impl Runner {
    async fn handle(&self, ctx: JobContext) -> JobOutcome {
        let job = match RunJob::deserialize(ctx.payload()) {
            Ok(job) => job,
            Err(e) => return JobOutcome::Failed(format!("job {}: not a run job: {e}", ctx.id())),
        };
        let execution_id = job.execution_id.unwrap_or_else(|| derived_id(ctx.id()));
        let flow = match job.flow {
            Some(flow) => flow,
            None => match self.store.flow(job.flow_id).await {
                Ok(Some(stored)) => stored.flow,
                Ok(None) => {
                    let message = format!("flow {} was deleted before the run started", job.flow_id);
                    self.fail(execution_id, &message).await;
                    return JobOutcome::Failed(message);
                }
                Err(e) => return JobOutcome::Retry(format!("cannot read flow {}: {e}", job.flow_id)),
            },
        };
        self.origins.insert(execution_id, Origin { owner: Some(job.owner), flow_id: Some(job.flow_id) });
        let options = RunOptions {
            vars: job.vars,
            correlation_id: job.correlation_id,
            execution_id: Some(execution_id),
            owner: Some(job.owner),
            flow_id: Some(job.flow_id),
            fence: Some(ctx.delivery().token),
            // Its sub-flows are flows of the same owner.
            origin: FlowOrigin::Stored { id: Some(job.flow_id), owner: Some(job.owner) },
            // The API lists a run as queued before it queues the job; a cron tick has no row yet.
            recorded_as_queued: job.execution_id.is_some(),
        };
        let started = self.engine.start(flow, options).await;
        if started.is_err() {
            self.origins.remove(execution_id);
        }
        let id = match started {
            Ok(id) => id,
            Err(EngineError::Invalid { report, .. }) => {
                let problems: Vec<String> = report.problems.iter().map(|p| p.message.clone()).collect();
                let message = format!("the flow is invalid: {}", problems.join("; "));
                self.fail(execution_id, &message).await;
                return JobOutcome::Failed(message);
            }
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        let cancel = ctx.cancel_token();
        let report = tokio::select! {
            report = self.engine.wait(id) => report,
            () = cancel.cancelled() => {
                // Asked to cancel, or the lease is lost (the job runs elsewhere now): stop here;
                // the sinks roll back, and the fence keeps this run out of the history.
                let _ = self.engine.cancel(id);
                self.engine.wait(id).await
            }
        };
        match report {
            Ok(report) => match report.state {
                ExecutionState::Succeeded => {
                    JobOutcome::Succeeded(json!({ "execution_id": id, "state": "succeeded" }))
                }
                state => JobOutcome::Failed(
                    report.error.clone().unwrap_or_else(|| format!("the execution ended {state:?}")),
                ),
            },
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    /// Ends an execution that could not start, with its reason in the history.
    async fn fail(&self, id: Uuid, message: &str) {
        if let Err(e) = self.store.record_failed(id, message).await {
            tracing::warn!(execution_id = %id, error = %e, "history: cannot record a run that could not start");
        }
    }
}

/// The execution id of a job that did not name one (a cron tick, `cron:<schedule>:<tick ms>`):
/// a UUID v7 whose time is the tick's and whose other bits come from the job id, so every
/// delivery of the job runs the same execution and ids still sort by time.
pub(crate) fn derived_id(job_id: &str) -> Uuid {
    let millis = job_id.rsplit(':').next().and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0);
    let mut bytes = [0u8; 10];
    for (seed, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = DefaultHasher::new();
        (seed, job_id).hash(&mut hasher);
        let hash = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&hash[..chunk.len()]);
    }
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_v7_and_ordered_by_tick() {
        let a = derived_id("cron:s1:1700000000000");
        assert_eq!(a, derived_id("cron:s1:1700000000000"));
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, derived_id("cron:s2:1700000000000"));
        assert!(derived_id("cron:s2:1700000001000") > a);
    }

    #[test]
    fn run_jobs_refuse_unknown_fields() {
        let job = json!({"flow_id": Uuid::now_v7(), "owner": Uuid::now_v7(), "surprise": 1});
        assert!(serde_json::from_value::<RunJob>(job).is_err());
    }
}
