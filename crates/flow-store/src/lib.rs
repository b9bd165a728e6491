//! The engine's store: the execution history (every execution's state while it runs and, once
//! finished, its outcome per node: state, attempts, counters, errors, sink outcome and data
//! preview), the named connections, and the server's records (users, stored flows, schedules,
//! per-minute metrics).
//!
//! One [`Store`] type, two backends with the same behaviour (the conformance tests run every
//! behaviour against both):
//! - SQLite ([`Store::open`], [`Store::in_memory`]): the desktop app and the CLI; numbered
//!   migrations under `migrations/`, applied under a file lock when the database is opened.
//!   Times and uuids are text, nanoseconds kept.
//! - PostgreSQL ([`Store::connect_postgres`]): the server and its workers, sharing one database;
//!   migrations under `migrations_pg/`, applied under sqlx's advisory lock, so servers starting
//!   together migrate once. Native types (uuid, timestamptz, bigint, json); times keep
//!   microseconds, PostgreSQL's precision.
//!
//! Decisions the callers rely on:
//! - Executions list newest first by id. Ids are UUID v7, so this is start order; it lets one
//!   index per filter (`(owner, id)`, `(flow_id, id)`, `(parent_id, id)`, `(state, id)`,
//!   `(flow, id)`) serve filter, order and keyset page (`ListQuery::before`) at once, and offset
//!   and keyset pages agree.
//! - `record_started` is idempotent: the server inserts the queued row, the worker's engine
//!   records it again.
//! - A sub-flow's run is an execution of its own: its `parent_id` names the execution whose
//!   `subflow` node ran it, and `ListQuery::parent` lists one execution's children. A report's
//!   `children` are not written (the engine records each child). `record_started` and
//!   `record_finished` both write the parent where the row has none: a report without one does
//!   not erase the one recorded first.
//! - A user's flows and schedules are deleted with the user, a flow's schedules with the flow;
//!   executions are history and stay, naming the owner and flow they had (no foreign keys, also
//!   so a worker can record an execution whose flow was deleted while it ran).
//! - Metrics: `record_finished` adds the execution to its flow's row of the minute it finished
//!   in, in the same transaction; an execution whose report is recorded again is not counted
//!   again. Executions failed by [`Store::mark_interrupted`] are not counted (no report).
//!   Each row keeps a histogram of durations in fixed buckets ([`DURATION_BUCKETS_MS`]), and
//!   every node that started adds to its own per-minute row (flow, node id, node type) the same
//!   way, and the execution's row of its hour (`metrics_hour`) too. Monitoring
//!   ([`Store::dashboard`], [`Store::flow_metrics`], [`Store::node_metrics`]) sums these rows
//!   only, never the executions, so a dashboard costs the same however many executions its
//!   minutes hold; a dashboard whose step is whole hours reads the window's whole hours from
//!   `metrics_hour` (30 days: 720 rows a flow, not 43,200); percentiles are bucket bounds (see
//!   `metrics.rs`).
//!   [`Store::delete_metrics_before`] is the retention (the hosts call it with
//!   METRICS_RETENTION_DAYS).
//! - Alerts: a rule's open alert is its state. At most one alert per rule and subject is open
//!   (a unique index), so [`Store::open_alert`] and [`Store::resolve_alert`] answer None to
//!   every caller but the one that changed it: evaluators sharing a database fire and resolve
//!   each alert once. Alerts stay as history when their rule is deleted (resolved then).

mod alerts;
mod codec;
mod error;
mod metrics;
mod postgres;
mod report;
mod sqlite;
mod types;

use std::path::Path;

use chrono::{DateTime, Utc};
use flow_model::{Connection, Flow};
use flow_runtime::{ExecutionReport, ExecutionState};
use uuid::Uuid;

pub use alerts::{Alert, AlertCondition, AlertQuery, AlertRule, NewAlert, NewAlertRule};
pub use error::StoreError;
pub use metrics::{
    DURATION_BUCKETS_MS, Dashboard, DashboardPoint, DurationStats, FlowMetrics, MAX_DASHBOARD_POINTS,
    MetricsWindow, NodeMetrics,
};
pub use types::{
    ExecutionDetail, ExecutionSummary, ListQuery, MinuteRollup, NewExecution, NewSchedule, Role, Schedule,
    ScheduleUpdate, StoredFlow, StoredFlowSummary, User,
};

/// The error written on executions that were still going when the engine stopped.
const INTERRUPTED: &str = "interrupted: the engine stopped while this execution ran";

/// States of an execution that has not finished.
const UNFINISHED: [ExecutionState; 3] =
    [ExecutionState::Queued, ExecutionState::Running, ExecutionState::Paused];

/// How a PostgreSQL store connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool (default 10).
    pub max_connections: u32,
    /// How long connecting, and later a query waiting for a pooled connection, may take before
    /// it fails as unavailable (default 5 s): a server whose database is away answers 503 soon
    /// rather than hang its clients.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: std::time::Duration::from_secs(5) }
    }
}

/// The store; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Calls the backend's method of the same name.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(db) => db.$method($($arg),*).await,
            Backend::Postgres(db) => db.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating the file and parent directories) and migrates the SQLite database at
    /// `path`. Safe when several processes open a new database at the same moment (CLI runs from
    /// cron, the desktop app, a worker): sqlx's SQLite migrator takes no lock of its own, so
    /// opening and migrating happen under an exclusive lock on `<file>.lock` beside the database.
    /// Migrations already applied are skipped, and a database busy with another process's writes
    /// is waited for (busy timeout), so each migration runs exactly once.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store { backend: Backend::Sqlite(sqlite::SqliteStore::open(path).await?) })
    }

    /// A private in-memory SQLite database (tests, benchmarks).
    pub async fn in_memory() -> Result<Store, StoreError> {
        Ok(Store { backend: Backend::Sqlite(sqlite::SqliteStore::in_memory().await?) })
    }

    /// Connects to PostgreSQL at `url` (pool of 10) and migrates its schema; see
    /// [`Store::connect_postgres_with`].
    pub async fn connect_postgres(url: &str) -> Result<Store, StoreError> {
        Self::connect_postgres_with(url, &PostgresOptions::default()).await
    }

    /// Connects to PostgreSQL at `url` and migrates its schema (in the first schema of the
    /// connection's `search_path`). Concurrent callers migrate once: the migrator holds an
    /// advisory lock. Errors name the URL with its password redacted.
    pub async fn connect_postgres_with(url: &str, options: &PostgresOptions) -> Result<Store, StoreError> {
        Ok(Store { backend: Backend::Postgres(postgres::PgStore::connect(url, options).await?) })
    }

    /// An execution was queued or started: inserts its row, or, if it exists (the server
    /// queued it, a worker starts it), sets its state and fills owner, flow id and parent id
    /// where they are empty; its start time and correlation id stay.
    pub async fn record_started(&self, execution: &NewExecution) -> Result<(), StoreError> {
        dispatch!(self.record_started(execution))
    }

    /// Updates the execution's state (e.g. Queued -> Running, Running <-> Paused). With a
    /// `fence` (the server's delivery token), a write older than the row's token is ignored: a
    /// worker whose job was reclaimed cannot overwrite the record of the run that replaced it.
    pub async fn record_state(
        &self,
        id: Uuid,
        state: ExecutionState,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        dispatch!(self.record_state(id, state, fence))
    }

    /// Ends an execution that could not start (a queued run whose flow was deleted or became
    /// invalid, or that could not be queued), with the reason.
    pub async fn record_failed(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        dispatch!(self.record_failed(id, error))
    }

    /// Whether the database answers (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// Writes the final outcome in one transaction: execution row (state, error, finished_at), one
    /// row per node (state, attempts, started/finished, counters, error, error_kind, sink outcome),
    /// the node's sample records (data preview, in order) and the execution's share of its
    /// minute's metrics.
    ///
    /// Without a `record_started` before, the execution row is created from the report; with one,
    /// its `started_at` (the time it was queued) is kept, and the report's `parent_id` fills the
    /// row's if empty. Recording again replaces the nodes. The report's `children` are not
    /// written: each is recorded as an execution of its own.
    /// `fence` as for [`Store::record_state`]: a superseded report is not written.
    pub async fn record_finished(
        &self,
        report: &ExecutionReport,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        dispatch!(self.record_finished(report, fence))
    }

    /// Executions left Queued/Running/Paused by a process that died: mark them Failed with error
    /// "interrupted: the engine stopped while this execution ran"; returns how many.
    ///
    /// Only for a store one process owns (desktop, CLI) at its start: on a store shared by a
    /// server and its workers, other processes' executions are still running. There the queue
    /// reclaims the jobs of dead workers instead.
    ///
    /// Their `finished_at` stays empty: when the engine stopped is not known.
    pub async fn mark_interrupted(&self) -> Result<u64, StoreError> {
        dispatch!(self.mark_interrupted())
    }

    /// Newest first (by id); see [`ListQuery`].
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<ExecutionSummary>, StoreError> {
        dispatch!(self.list(query))
    }

    /// One execution with its nodes and samples, or None.
    pub async fn get(&self, id: Uuid) -> Result<Option<ExecutionDetail>, StoreError> {
        dispatch!(self.get(id))
    }

    /// Every named connection, by name.
    pub async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        dispatch!(self.list_connections())
    }

    /// Creates or replaces the connection of that name.
    pub async fn save_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        dispatch!(self.save_connection(connection))
    }

    /// Deletes a connection; false when there was none of that name.
    pub async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        dispatch!(self.delete_connection(name))
    }

    /// Creates a user (id UUID v7); `UsernameTaken` if the name exists. The hash is the
    /// caller's: the store never sees a password.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        dispatch!(self.create_user(username, password_hash, role))
    }

    /// The user of that name (compared exactly), or None.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.user_by_name(username))
    }

    /// The user with that id, or None.
    pub async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        dispatch!(self.user(id))
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        dispatch!(self.list_users())
    }

    /// Deletes a user with their flows and schedules (their executions stay); false when there
    /// was none of that name.
    pub async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        dispatch!(self.delete_user(username))
    }

    /// Stores a flow at version 1; `MissingReference` if the owner does not exist.
    pub async fn create_flow(&self, owner: Uuid, flow: &Flow) -> Result<StoredFlow, StoreError> {
        dispatch!(self.create_flow(owner, flow))
    }

    /// The stored flow with that id, or None.
    pub async fn flow(&self, id: Uuid) -> Result<Option<StoredFlow>, StoreError> {
        dispatch!(self.flow(id))
    }

    /// Stored flows (all, or one owner's), by name.
    pub async fn list_flows(&self, owner: Option<Uuid>) -> Result<Vec<StoredFlowSummary>, StoreError> {
        dispatch!(self.list_flows(owner))
    }

    /// Replaces a stored flow if it is still at `expected_version`, which becomes one more.
    /// Otherwise writes nothing: `VersionConflict` with the stored version, or `NotFound`.
    pub async fn update_flow(
        &self,
        id: Uuid,
        expected_version: i64,
        flow: &Flow,
    ) -> Result<StoredFlow, StoreError> {
        dispatch!(self.update_flow(id, expected_version, flow))
    }

    /// Deletes a stored flow and its schedules; false when there was none.
    pub async fn delete_flow(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self.delete_flow(id))
    }

    /// Stores a schedule; `MissingReference` if its owner or flow does not exist. The cron
    /// expression and time zone are stored as given: checking them is the server's job.
    pub async fn create_schedule(&self, schedule: &NewSchedule) -> Result<Schedule, StoreError> {
        dispatch!(self.create_schedule(schedule))
    }

    /// The schedule with that id, or None.
    pub async fn schedule(&self, id: Uuid) -> Result<Option<Schedule>, StoreError> {
        dispatch!(self.schedule(id))
    }

    /// Schedules (all, or one owner's), oldest first.
    pub async fn list_schedules(&self, owner: Option<Uuid>) -> Result<Vec<Schedule>, StoreError> {
        dispatch!(self.list_schedules(owner))
    }

    /// Every enabled schedule, oldest first: what the scheduler runs.
    pub async fn list_enabled_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        dispatch!(self.list_enabled_schedules())
    }

    /// Applies the fields `update` sets; None when there is no such schedule,
    /// `MissingReference` if the new flow does not exist.
    pub async fn update_schedule(
        &self,
        id: Uuid,
        update: &ScheduleUpdate,
    ) -> Result<Option<Schedule>, StoreError> {
        dispatch!(self.update_schedule(id, update))
    }

    /// Deletes a schedule; false when there was none.
    pub async fn delete_schedule(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self.delete_schedule(id))
    }

    /// Metrics rows whose minute starts at or after `since`, by minute then flow.
    pub async fn metrics_minutes(&self, since: DateTime<Utc>) -> Result<Vec<MinuteRollup>, StoreError> {
        dispatch!(self.metrics_minutes(since))
    }

    /// Executions that finished in `window`: totals, success rate, duration percentiles, and
    /// one point per `step_minutes` (aligned on the Unix epoch; steps without executions too).
    /// `InvalidQuery` for an empty window, a zero step, or more than [`MAX_DASHBOARD_POINTS`].
    pub async fn dashboard(
        &self,
        window: &MetricsWindow,
        step_minutes: u32,
    ) -> Result<Dashboard, StoreError> {
        dispatch!(self.dashboard(window, step_minutes))
    }

    /// The database's plan for [`Store::dashboard`]'s query (EXPLAIN), to check that it reads
    /// the window's range of the rollups' primary key rather than the whole table.
    pub async fn explain_dashboard(
        &self,
        window: &MetricsWindow,
        step_minutes: u32,
    ) -> Result<String, StoreError> {
        dispatch!(self.explain_dashboard(window, step_minutes))
    }

    /// Per flow (by name, in byte order), its executions that finished in `window`.
    pub async fn flow_metrics(&self, window: &MetricsWindow) -> Result<Vec<FlowMetrics>, StoreError> {
        dispatch!(self.flow_metrics(window))
    }

    /// Per node (by flow, node id, node type), its runs in executions that finished in
    /// `window`; only `flow`'s nodes when given.
    pub async fn node_metrics(
        &self,
        window: &MetricsWindow,
        flow: Option<&str>,
    ) -> Result<Vec<NodeMetrics>, StoreError> {
        dispatch!(self.node_metrics(window, flow))
    }

    /// Retention: deletes the execution and node rollups of minutes before `cutoff`, and the
    /// hourly ones of hours that ended by then; returns how many rows.
    pub async fn delete_metrics_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        dispatch!(self.delete_metrics_before(cutoff))
    }

    /// Stores an alert rule; `NameTaken` if a rule has its name. The condition is stored as
    /// given: checking it is the engine's job.
    pub async fn create_alert_rule(&self, rule: &NewAlertRule) -> Result<AlertRule, StoreError> {
        dispatch!(self.create_alert_rule(rule))
    }

    /// Every alert rule, by name.
    pub async fn list_alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        dispatch!(self.list_alert_rules())
    }

    /// Deletes a rule and resolves its open alerts; false when there was none.
    pub async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self.delete_alert_rule(id))
    }

    /// Opens (fires) an alert unless one of the same rule and subject is open: the new alert,
    /// or None when it was already firing.
    pub async fn open_alert(&self, alert: &NewAlert) -> Result<Option<Alert>, StoreError> {
        dispatch!(self.open_alert(alert))
    }

    /// Resolves the open alert of a rule and subject: that alert, or None when none was open.
    pub async fn resolve_alert(
        &self,
        rule_id: Uuid,
        subject: &str,
        resolution: &str,
    ) -> Result<Option<Alert>, StoreError> {
        dispatch!(self.resolve_alert(rule_id, subject, resolution))
    }

    /// Alerts, newest first; see [`AlertQuery`].
    pub async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        dispatch!(self.list_alerts(query))
    }
}
