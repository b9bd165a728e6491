//! Coalescing of engine events for a host that forwards them to a user interface (the desktop's
//! webview, the server's WebSocket clients): events are collected for up to [`BATCH_WINDOW`] after
//! the first one, only the latest `node_progress` per (execution, node) of a batch is kept, every
//! state event is kept, and one `Vec<Event>` is sent per batch. Relative order is preserved: a
//! progress event that replaces an earlier one takes the later one's place. A million records
//! thus become at most one progress message per node every 50 ms.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flow_runtime::{Event, EventKind, Subscription};
use tokio::time::Instant;
use uuid::Uuid;

/// How long a batch collects events after its first one.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Where events are read from (the engine's [`Subscription`]; a plain channel in tests).
pub trait EventSource: Send {
    /// The next event; `None` once the source is gone.
    fn next_event(&mut self) -> impl Future<Output = Option<Arc<Event>>> + Send;
}

impl EventSource for Subscription {
    fn next_event(&mut self) -> impl Future<Output = Option<Arc<Event>>> + Send {
        self.next()
    }
}

/// One batch being collected.
#[derive(Debug, Default)]
pub struct Batch {
    /// Kept events in arrival order; `None` where a newer progress event replaced one.
    events: Vec<Option<Arc<Event>>>,
    /// Index in `events` of the latest progress event per (execution, node).
    progress_at: HashMap<(Uuid, String), usize>,
}

impl Batch {
    pub fn push(&mut self, event: Arc<Event>) {
        if let EventKind::NodeProgress { node, .. } = &event.kind
            && let Some(earlier) =
                self.progress_at.insert((event.execution_id, node.clone()), self.events.len())
            && let Some(slot) = self.events.get_mut(earlier)
        {
            *slot = None;
        }
        self.events.push(Some(event));
    }

    pub fn is_empty(&self) -> bool {
        self.progress_at.is_empty() && self.events.is_empty()
    }

    /// The coalesced events, leaving the batch empty.
    pub fn take(&mut self) -> Vec<Event> {
        self.progress_at.clear();
        self.events.drain(..).flatten().map(|e| Event::clone(&e)).collect()
    }
}

/// Forwards events from `source` in coalesced batches until the source ends or `send` returns
/// false (the receiver is gone).
pub async fn forward<S: EventSource>(mut source: S, mut send: impl FnMut(Vec<Event>) -> bool + Send) {
    let mut batch = Batch::default();
    while let Some(first) = source.next_event().await {
        batch.push(first);
        let deadline = Instant::now() + BATCH_WINDOW;
        let mut ended = false;
        loop {
            match tokio::time::timeout_at(deadline, source.next_event()).await {
                Ok(Some(event)) => batch.push(event),
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        if !batch.is_empty() && !send(batch.take()) || ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use flow_runtime::{Counters, Event, EventKind, NodeState};
    use tokio::sync::mpsc;
    use uuid::Uuid;

    use super::{Batch, EventSource, forward};

    impl EventSource for mpsc::UnboundedReceiver<Arc<Event>> {
        fn next_event(&mut self) -> impl Future<Output = Option<Arc<Event>>> + Send {
            self.recv()
        }
    }

    fn event(execution: Uuid, kind: EventKind) -> Arc<Event> {
        Arc::new(Event { execution_id: execution, correlation_id: "c".into(), at: Utc::now(), kind })
    }

    fn progress(execution: Uuid, node: &str, out: u64) -> Arc<Event> {
        let counters = Counters { records_in: out, records_out: out, errors: 0 };
        event(execution, EventKind::NodeProgress { node: node.into(), counters, rate: 1.0 })
    }

    fn state(execution: Uuid, node: &str, state: NodeState) -> Arc<Event> {
        let kind = EventKind::NodeState {
            node: node.into(),
            state,
            attempt: 1,
            counters: Counters::default(),
            error: None,
            retry_in_ms: None,
        };
        event(execution, kind)
    }

    fn describe(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match &e.kind {
                EventKind::NodeProgress { node, counters, .. } => format!("{node}:{}", counters.records_out),
                EventKind::NodeState { node, state, .. } => format!("{node}={state:?}"),
                EventKind::ExecutionState { state, .. } => format!("execution={state:?}"),
            })
            .collect()
    }

    #[test]
    fn a_batch_keeps_the_latest_progress_per_node_and_every_state_event() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut batch = Batch::default();
        for e in [
            state(a, "gen", NodeState::Running),
            progress(a, "gen", 10),
            progress(a, "filter", 5),
            progress(b, "gen", 7),
            progress(a, "gen", 20),
            state(a, "filter", NodeState::Paused),
            progress(a, "gen", 30),
        ] {
            batch.push(e);
        }
        let events = batch.take();
        assert_eq!(describe(&events), ["gen=Running", "filter:5", "gen:7", "filter=Paused", "gen:30"]);
        assert_eq!(events[2].execution_id, b);
        assert!(batch.is_empty());
        assert!(batch.take().is_empty());
    }

    #[tokio::test]
    async fn a_burst_becomes_one_batch_and_forwarding_ends_with_its_source() {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = Uuid::now_v7();
        for n in 1..=1000 {
            let _ = tx.send(progress(id, "gen", n));
        }
        let _ = tx.send(state(id, "gen", NodeState::Succeeded));
        let (sent_tx, mut sent_rx) = mpsc::unbounded_channel();
        let bridge = tokio::spawn(forward(rx, move |batch| sent_tx.send(batch).is_ok()));
        let first = sent_rx.recv().await.unwrap_or_default();
        assert_eq!(describe(&first), ["gen:1000", "gen=Succeeded"]);

        // A later event arrives in its own batch, after at most the batch window.
        let started = std::time::Instant::now();
        let _ = tx.send(progress(id, "gen", 1001));
        let second = sent_rx.recv().await.unwrap_or_default();
        assert_eq!(describe(&second), ["gen:1001"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));

        drop(tx);
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), bridge).await.is_ok());
    }

    #[tokio::test]
    async fn forwarding_stops_when_the_receiver_is_gone() {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = Uuid::now_v7();
        let _ = tx.send(progress(id, "gen", 1));
        let bridge = tokio::spawn(forward(rx, |_| false));
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), bridge).await.is_ok());
        drop(tx);
    }
}
