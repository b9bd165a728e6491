//! Rows as PostgreSQL returns them (native uuids, times and bigints; enums and JSON as text) and
//! their conversion into the public types. The column lists live next to the structs so a query
//! and its row cannot drift apart.

use chrono::{DateTime, Utc};
use flow_runtime::{Counters, NodeReport};
use uuid::Uuid;

use crate::codec::{CodecError, parse_enum, parse_int, parse_json, parse_optional_enum};
use crate::{ExecutionSummary, MinuteRollup, Role, Schedule, StoredFlow, StoredFlowSummary, User};

/// Columns of `executions` read into an `ExecutionRow`.
pub(crate) const EXECUTION_COLUMNS: &str = "id, correlation_id, flow, state, error, started_at, finished_at, records_out, records_read, owner, flow_id, parent_id";

#[derive(sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    id: Uuid,
    correlation_id: String,
    flow: String,
    state: String,
    error: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    records_out: i64,
    records_read: i64,
    owner: Option<Uuid>,
    flow_id: Option<Uuid>,
    parent_id: Option<Uuid>,
}

impl ExecutionRow {
    pub(crate) fn into_summary(self) -> Result<ExecutionSummary, CodecError> {
        Ok(ExecutionSummary {
            id: self.id,
            correlation_id: self.correlation_id,
            flow: self.flow,
            state: parse_enum("executions.state", &self.state)?,
            error: self.error,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.finished_at.map(|f| (f - self.started_at).num_milliseconds()),
            records_out: parse_int("executions.records_out", self.records_out)?,
            records_read: parse_int("executions.records_read", self.records_read)?,
            owner: self.owner,
            flow_id: self.flow_id,
            parent_id: self.parent_id,
        })
    }
}

/// Columns of `node_runs` read into a `NodeRow`.
pub(crate) const NODE_COLUMNS: &str = "seq, node_id, node_type, state, attempts, started_at, \
     finished_at, records_in, records_out, errors, error, error_kind, sink";

#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    pub(crate) seq: i32,
    node_id: String,
    node_type: String,
    state: String,
    attempts: i64,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    records_in: i64,
    records_out: i64,
    errors: i64,
    error: Option<String>,
    error_kind: Option<String>,
    sink: Option<String>,
}

impl NodeRow {
    /// The node's report without its sample, which lives in another table.
    pub(crate) fn into_report(self) -> Result<NodeReport, CodecError> {
        Ok(NodeReport {
            node_id: self.node_id,
            node_type: self.node_type,
            state: parse_enum("node_runs.state", &self.state)?,
            attempts: parse_int("node_runs.attempts", self.attempts)?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            counters: Counters {
                records_in: parse_int("node_runs.records_in", self.records_in)?,
                records_out: parse_int("node_runs.records_out", self.records_out)?,
                errors: parse_int("node_runs.errors", self.errors)?,
            },
            error: self.error,
            error_kind: parse_optional_enum("node_runs.error_kind", self.error_kind.as_deref())?,
            sample: Vec::new(),
            sink: parse_optional_enum("node_runs.sink", self.sink.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SampleRow {
    pub(crate) node_seq: i32,
    /// `record::text`: the JSON exactly as written.
    pub(crate) record: String,
}

/// Columns of `accounts` read into a `UserRow`.
pub(crate) const USER_COLUMNS: &str = "id, username, password_hash, role, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    username: String,
    password_hash: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User, CodecError> {
        Ok(User {
            id: self.id,
            username: self.username,
            password_hash: self.password_hash,
            role: parse_enum::<Role>("accounts.role", &self.role)?,
            created_at: self.created_at,
        })
    }
}

/// Columns of `flows` read into a `FlowRow`.
pub(crate) const FLOW_COLUMNS: &str = "id, owner, version, flow::text AS flow, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct FlowRow {
    id: Uuid,
    owner: Uuid,
    version: i64,
    flow: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl FlowRow {
    pub(crate) fn into_flow(self) -> Result<StoredFlow, CodecError> {
        Ok(StoredFlow {
            id: self.id,
            owner: self.owner,
            version: self.version,
            flow: parse_json("flows.flow", &self.flow)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Columns of `flows` read into a `StoredFlowSummary`.
pub(crate) const FLOW_SUMMARY_COLUMNS: &str = "id, owner, name, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct FlowSummaryRow {
    id: Uuid,
    owner: Uuid,
    name: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl FlowSummaryRow {
    pub(crate) fn into_summary(self) -> StoredFlowSummary {
        StoredFlowSummary {
            id: self.id,
            owner: self.owner,
            name: self.name,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Columns of `schedules` read into a `ScheduleRow`.
pub(crate) const SCHEDULE_COLUMNS: &str =
    "id, owner, flow_id, cron, timezone, vars::text AS vars, enabled, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ScheduleRow {
    id: Uuid,
    owner: Uuid,
    flow_id: Uuid,
    cron: String,
    timezone: String,
    vars: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ScheduleRow {
    pub(crate) fn into_schedule(self) -> Result<Schedule, CodecError> {
        Ok(Schedule {
            id: self.id,
            owner: self.owner,
            flow_id: self.flow_id,
            cron: self.cron,
            timezone: self.timezone,
            vars: parse_json("schedules.vars", &self.vars)?,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Columns of `metrics_minute` read into a `RollupRow`.
pub(crate) const ROLLUP_COLUMNS: &str = "minute, flow, executions, succeeded, failed, cancelled, \
     duration_ms_sum, duration_ms_max, records_out";

#[derive(sqlx::FromRow)]
pub(crate) struct RollupRow {
    minute: DateTime<Utc>,
    flow: String,
    executions: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    duration_ms_sum: i64,
    duration_ms_max: i64,
    records_out: i64,
}

impl RollupRow {
    pub(crate) fn into_rollup(self) -> Result<MinuteRollup, CodecError> {
        Ok(MinuteRollup {
            minute: self.minute,
            flow: self.flow,
            executions: parse_int("metrics_minute.executions", self.executions)?,
            succeeded: parse_int("metrics_minute.succeeded", self.succeeded)?,
            failed: parse_int("metrics_minute.failed", self.failed)?,
            cancelled: parse_int("metrics_minute.cancelled", self.cancelled)?,
            duration_ms_sum: parse_int("metrics_minute.duration_ms_sum", self.duration_ms_sum)?,
            duration_ms_max: parse_int("metrics_minute.duration_ms_max", self.duration_ms_max)?,
            records_out: parse_int("metrics_minute.records_out", self.records_out)?,
        })
    }
}
