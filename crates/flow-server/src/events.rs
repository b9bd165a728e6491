//! Engine events between processes: every worker publishes its engine's coalesced event batches
//! on a Redis channel, one message per execution and batch, with the execution's owner and flow
//! (which the WebSocket hub authorises and routes by); every `flow serve` subscribes and hands
//! them to its hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flow_engine::{Engine, Event, EventKind};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ws::Hub;

/// Who an execution belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Origin {
    pub(crate) owner: Option<Uuid>,
    pub(crate) flow_id: Option<Uuid>,
}

/// One execution's events of one batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventBatch {
    pub(crate) execution_id: Uuid,
    #[serde(flatten)]
    pub(crate) origin: Origin,
    pub(crate) events: Vec<Event>,
}

fn channel(prefix: &str) -> String {
    format!("{prefix}events")
}

/// The origins of the executions a worker runs, so its published events carry them. An entry
/// leaves with the execution's final event.
#[derive(Debug, Default, Clone)]
pub(crate) struct Origins(Arc<Mutex<HashMap<Uuid, Origin>>>);

impl Origins {
    pub(crate) fn insert(&self, id: Uuid, origin: Origin) {
        self.lock().insert(id, origin);
    }

    /// Forgets an execution that never started (it sends no final event).
    pub(crate) fn remove(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Origin>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Publishes `engine`'s events until `shutdown`.
pub(crate) async fn publish(
    engine: Engine,
    conn: ConnectionManager,
    prefix: String,
    origins: Origins,
    shutdown: CancellationToken,
) {
    let channel = channel(&prefix);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Event>>();
    // Coalescing keeps this channel's traffic to one batch per 50 ms.
    let forward = tokio::spawn(flow_engine::coalesce::forward(engine.subscribe(None), move |batch| {
        tx.send(batch).is_ok()
    }));
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => break,
            b = rx.recv() => b,
        };
        let Some(batch) = batch else { break };
        // One round trip for the whole batch, however many executions it spans.
        let mut pipe = redis::pipe();
        for message in group(batch, &origins) {
            let Ok(text) = serde_json::to_string(&message) else { continue };
            pipe.publish(&channel, text).ignore();
        }
        let sent: Result<(), _> = pipe.query_async(&mut conn.clone()).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "events: cannot publish a batch");
        }
    }
    forward.abort();
}

/// Splits a batch by execution, in order, and forgets executions that ended.
fn group(batch: Vec<Event>, origins: &Origins) -> Vec<EventBatch> {
    let mut out: Vec<EventBatch> = Vec::new();
    let mut ended = Vec::new();
    {
        let known = origins.lock();
        for event in batch {
            if let EventKind::ExecutionState { state, .. } = &event.kind
                && state.is_terminal()
            {
                ended.push(event.execution_id);
            }
            match out.iter_mut().find(|b| b.execution_id == event.execution_id) {
                Some(b) => b.events.push(event),
                None => out.push(EventBatch {
                    execution_id: event.execution_id,
                    origin: known.get(&event.execution_id).copied().unwrap_or_default(),
                    events: vec![event],
                }),
            }
        }
    }
    let mut known = origins.lock();
    for id in ended {
        known.remove(&id);
    }
    out
}

/// Hands every published batch to `hub` until `shutdown`.
pub(crate) async fn subscribe(
    client: redis::Client,
    prefix: String,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    crate::pubsub::each_message(
        client,
        channel(&prefix),
        shutdown,
        || {},
        |text| {
            // With no client connected here, nobody can want the batch: it is not even read.
            if hub.len() == 0 {
                return;
            }
            match serde_json::from_str::<EventBatch>(&text) {
                Ok(batch) => hub.dispatch(&batch),
                Err(e) => tracing::warn!(error = %e, "events: a message that is not an event batch"),
            }
        },
    )
    .await;
}
