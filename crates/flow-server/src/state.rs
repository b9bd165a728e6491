//! What every request handler shares.

use std::sync::Arc;

use flow_engine::Engine;
use flow_queue::Queue;
use flow_store::Store;

use crate::auth::Tokens;
use crate::connection_sync::Announcer;
use crate::control::Control;
use crate::flow_cache::FlowCache;
use crate::ws::Hub;

/// The API's state; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    /// Flows, executions, users, schedules and connections (PostgreSQL).
    pub(crate) store: Store,
    /// Where runs are enqueued and cancelled.
    pub(crate) queue: Queue,
    /// The engine, for what needs no worker: catalog, validation, connection tests.
    pub(crate) engine: Engine,
    pub(crate) tokens: Arc<Tokens>,
    /// The WebSocket clients and their subscriptions.
    pub(crate) hub: Arc<Hub>,
    /// Pause and resume messages to the workers.
    pub(crate) control: Control,
    /// Tells every process that the named connections changed.
    pub(crate) connections: Announcer,
    /// The stored flows runs start from.
    pub(crate) flows: Arc<FlowCache>,
    /// The Prometheus recorder `/metrics` renders; `None` with ENABLE_METRICS=false.
    pub(crate) metrics: Option<crate::metrics::Exporter>,
}
