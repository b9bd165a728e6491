//! Stored flows as this API process last read them, for `POST /flows/{id}/run`: reading the flow
//! (with the two pings sqlx makes around a pooled connection) was three of the seven round trips
//! to PostgreSQL of a trivial run. The process that changes or deletes a flow forgets it at once
//! and announces the change on a Redis channel; every API process forgets the flow on the
//! message, and all of them whenever it (re)subscribes, since messages sent while Redis was away
//! are lost. A run through another process in the moment between a change and its message runs
//! the version before, as if it had been asked a moment earlier. An entry is read again after
//! `MAX_AGE` in any case, which bounds how long a change made outside the API (a user removed
//! with `flow users remove`, whose flows go with them) goes unseen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flow_store::{Store, StoreError, StoredFlow};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long an entry serves before its flow is read again.
const MAX_AGE: Duration = Duration::from_secs(30);
/// Flows kept at most; past it the cache starts again empty.
const CAPACITY: usize = 10_000;

fn channel(prefix: &str) -> String {
    format!("{prefix}flows")
}

pub(crate) struct FlowCache {
    inner: Mutex<Inner>,
    publisher: ConnectionManager,
    channel: String,
}

#[derive(Default)]
struct Inner {
    flows: HashMap<Uuid, (Instant, Arc<StoredFlow>)>,
    /// Raised by every change heard of, so a read that began before one does not put back the
    /// version it read.
    generation: u64,
}

impl FlowCache {
    pub(crate) fn new(publisher: ConnectionManager, prefix: &str) -> Self {
        Self { inner: Mutex::default(), publisher, channel: channel(prefix) }
    }

    /// The stored flow `id`, read from `store` unless this process read it lately.
    pub(crate) async fn get(&self, store: &Store, id: Uuid) -> Result<Option<Arc<StoredFlow>>, StoreError> {
        let generation = {
            let inner = self.lock();
            if let Some((read_at, flow)) = inner.flows.get(&id)
                && read_at.elapsed() < MAX_AGE
            {
                return Ok(Some(Arc::clone(flow)));
            }
            inner.generation
        };
        let read_at = Instant::now();
        let Some(flow) = store.flow(id).await? else { return Ok(None) };
        let flow = Arc::new(flow);
        let mut inner = self.lock();
        if inner.generation == generation {
            if inner.flows.len() >= CAPACITY {
                inner.flows.clear();
            }
            inner.flows.insert(id, (read_at, Arc::clone(&flow)));
        }
        Ok(Some(flow))
    }

    /// Forgets flow `id` here and, through Redis, in every other API process. Called once the
    /// change is stored.
    pub(crate) async fn changed(&self, id: Uuid) {
        self.forget(Some(id));
        let sent: Result<i64, _> = self.publisher.clone().publish(&self.channel, id.to_string()).await;
        if let Err(e) = sent {
            tracing::warn!(flow_id = %id, error = %e, "flows: cannot tell the other processes about a change");
        }
    }

    /// Forgets flow `id`, or every flow.
    fn forget(&self, id: Option<Uuid>) {
        let mut inner = self.lock();
        match id {
            Some(id) => {
                inner.flows.remove(&id);
            }
            None => inner.flows.clear(),
        }
        inner.generation += 1;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Forgets the flows other processes announce changes of, until `shutdown`.
pub(crate) async fn follow(
    client: redis::Client,
    prefix: String,
    cache: Arc<FlowCache>,
    shutdown: CancellationToken,
) {
    let resubscribed = Arc::clone(&cache);
    crate::pubsub::each_message(
        client,
        channel(&prefix),
        shutdown,
        move || resubscribed.forget(None),
        move |text| cache.forget(text.parse::<Uuid>().ok()),
    )
    .await;
}
