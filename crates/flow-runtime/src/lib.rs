//! The flow runtime: the operator interface node types implement, and the executor that runs a
//! validated flow as concurrent node tasks joined by bounded channels, with per-node timeouts,
//! retries, circuit breakers, pause/resume/cancel, coalesced progress events and
//! commit-or-rollback of sinks, and sub-flows run as child executions. Knows nothing of hosts (Tauri, HTTP, Redis) or storage.

mod breaker;
mod describe;
mod dry_build;
mod error;
mod events;
mod executor;
pub mod metrics;
mod operator;
mod resources;
mod retry;
mod secrets;
mod state;
mod subflow;
mod template;

pub use breaker::{BreakerConfig, BreakerOpen, BreakerState, Breakers, CircuitBreaker};
pub use describe::Discovery;
pub use dry_build::BuildError;
pub use error::{ErrorKind, NodeError};
pub use events::{Counters, Event, EventBus, EventKind, Subscription};
pub use executor::{
    Control, ExecutionReport, ExecutionRequest, NodeReport, Runtime, RuntimeConfig, SinkOutcome,
};
pub use operator::{BuildContext, Emitter, NodeType, NodeTypes, Operator};
pub use resources::{ConnectionSource, NoConnections, Resources};
pub use retry::RetryPolicy;
pub use secrets::{
    FetchedSecrets, NoSecrets, PROVIDER_NAMESPACES, Redactor, Scrubbed, SecretError, SecretRef, SecretSource,
};
pub use state::{ExecutionEvent, ExecutionState, InvalidTransition, NodeEvent, NodeState};
pub use subflow::{ChildFlow, ChildRun, MAX_SUBFLOW_DEPTH, SubflowScope, Subflows};
pub use template::{TemplateError, Templates};
