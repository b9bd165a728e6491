//! The engine handle every host uses (desktop shell, CLI, server): catalog, validate, start,
//! pause, resume, cancel, subscribe, and the execution history. A Tauri command or an HTTP
//! handler is a one-line call into [`Engine`].

mod alerts;
pub mod coalesce;
mod config;
mod engine;
mod monitoring;
mod subflows;

pub use alerts::{AlertChange, AlertConfig, AlertEvent, DEFAULT_ALERT_INTERVAL};
pub use config::{ConfigError, EngineConfig, HistoryLocation};
pub use engine::{Engine, EngineError, RunOptions};
pub use flow_model::{
    Connection, ConnectionKind, ConnectionTest, Flow, NodeDescriptor, Problem, ProblemKind, Record,
    Suggestion, ValidationReport, Value, load_flow, save_flow,
};
/// The metrics the engine records (names and buckets), for hosts that export them.
pub use flow_runtime::metrics;
pub use flow_runtime::{
    BreakerConfig, Counters, ErrorKind, Event, EventKind, ExecutionReport, ExecutionState, NodeReport,
    NodeState, Redactor, RetryPolicy, RuntimeConfig, Scrubbed, SinkOutcome, Subscription,
};
pub use flow_secrets::{
    AwsConfig, AwsCredentials, KeySource, LocalStore, ProviderInfo, ProviderSettings, ProviderSource,
    SecretInfo, Secrets, SecretsConfig, SecretsError, VaultAuth, VaultConfig,
};
pub use flow_store::{
    Alert, AlertCondition, AlertQuery, AlertRule, Dashboard, DashboardPoint, DurationStats, ExecutionDetail,
    ExecutionSummary, FlowMetrics, ListQuery, MetricsWindow, NewAlertRule, NodeMetrics,
};
pub use monitoring::{
    ConnectionHealth, DEFAULT_METRICS_RETENTION_DAYS, Health, StoreHealth, SystemMetrics,
    default_step_minutes, metrics_retention_days, parse_window,
};
pub use subflows::FlowOrigin;
