//! Typed progress events and the bus that delivers them to any number of subscribers. State
//! changes are sent as they happen; counters are coalesced by the executor (at most one progress
//! event per node per interval).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use ts_rs::TS;
use uuid::Uuid;

use crate::{ExecutionState, NodeState};

/// Record counters of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Counters {
    pub records_in: u64,
    pub records_out: u64,
    /// Records routed to the error output.
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Event {
    pub execution_id: Uuid,
    pub correlation_id: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
#[ts(export)]
pub enum EventKind {
    ExecutionState {
        flow: String,
        state: ExecutionState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    NodeState {
        node: String,
        state: NodeState,
        attempt: u32,
        counters: Counters,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Set when retrying: the wait before the next attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    NodeProgress {
        node: String,
        counters: Counters,
        /// Records out per second over the last interval.
        rate: f64,
    },
}

/// Fan-out of events to subscribers. A subscriber that falls far behind skips events rather than
/// slowing the executor down.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(8192)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        Self { tx: broadcast::channel(capacity).0 }
    }

    pub fn publish(&self, event: Event) {
        // No subscribers is fine: events are not stored here.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Events of all executions (`None`) or of one.
    pub fn subscribe(&self, execution: Option<Uuid>) -> Subscription {
        Subscription { rx: self.tx.subscribe(), execution, skipped: 0 }
    }
}

/// A stream of events for one subscriber.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    execution: Option<Uuid>,
    skipped: u64,
}

impl Subscription {
    /// The next event; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.rx.recv().await {
                Ok(e) if self.execution.is_none_or(|id| id == e.execution_id) => return Some(e),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => self.skipped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Events dropped because this subscriber lagged behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
