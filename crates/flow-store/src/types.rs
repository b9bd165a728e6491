//! What the store returns and how it is queried: plain serde types, shaped for the hosts' APIs.

use chrono::{DateTime, Utc};
use flow_model::Flow;
use flow_runtime::{ExecutionState, NodeReport};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// Page size when `ListQuery::limit` is not set.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page `list` returns, whatever `ListQuery::limit` asks for.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// An execution to record as queued or started (`Store::record_started`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExecution {
    pub id: Uuid,
    pub correlation_id: String,
    pub flow: String,
    /// Usually Queued or Running.
    pub state: ExecutionState,
    pub started_at: DateTime<Utc>,
    /// The user who started it (server); None for the desktop and CLI.
    pub owner: Option<Uuid>,
    /// The stored flow it runs (server); None for a flow file.
    pub flow_id: Option<Uuid>,
    /// The execution whose `subflow` node ran this one.
    pub parent_id: Option<Uuid>,
    /// The fencing token of the worker's delivery (server); see `Store::record_state`.
    pub fence: Option<u64>,
}

/// Which executions `Store::list` returns: newest first (by id, a UUID v7, so in start order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ListQuery {
    /// Page size: 50 when unset, at most 1000.
    pub limit: Option<u32>,
    /// Rows to skip (the desktop's pages); prefer `before` on large histories.
    pub offset: Option<u32>,
    /// Only executions of this flow (by name).
    pub flow: Option<String>,
    /// Only executions in this state.
    pub state: Option<ExecutionState>,
    /// Only executions of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub owner: Option<Uuid>,
    /// Only executions of this stored flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub flow_id: Option<Uuid>,
    /// Only the children of this execution (those its `subflow` nodes ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub parent: Option<Uuid>,
    /// Keyset paging: only executions whose id is below this one (pass the last id of the
    /// previous page); each page costs the same however deep it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub before: Option<Uuid>,
}

/// One execution as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExecutionSummary {
    pub id: Uuid,
    pub correlation_id: String,
    pub flow: String,
    pub state: ExecutionState,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Sum of `records_out` over all nodes; 0 until the execution finished.
    pub records_out: u64,
    /// Records the sources read; 0 until the execution finished.
    pub records_read: u64,
    /// The user who started it (server only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub owner: Option<Uuid>,
    /// The stored flow it ran (server only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub flow_id: Option<Uuid>,
    /// The execution whose `subflow` node ran this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub parent_id: Option<Uuid>,
}

/// One execution with the outcome of each node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub summary: ExecutionSummary,
    /// In report order; empty until the execution finished.
    pub nodes: Vec<NodeReport>,
}

/// What a user may do on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

/// A server user. Not `Serialize`: the password hash must not end up in an API response by
/// accident, and `Debug` leaves it out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    /// Compared exactly; the server normalises names (case, spaces) before storing them.
    pub username: String,
    /// The server's hash (argon2); the store never sees a password.
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A flow kept by the server, with its version for optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct StoredFlow {
    pub id: Uuid,
    pub owner: Uuid,
    /// 1 when created, +1 per update; an update names the version it was based on.
    pub version: i64,
    pub flow: Flow,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored flow as listed: without its nodes, which listing does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StoredFlowSummary {
    pub id: Uuid,
    pub owner: Uuid,
    /// The flow's `name`.
    pub name: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A schedule to create: run a stored flow when its cron expression fires.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub owner: Uuid,
    pub flow_id: Uuid,
    /// Checked by the server; stored as given.
    pub cron: String,
    /// IANA name (`Europe/Paris`) the cron expression is read in; checked by the server.
    pub timezone: String,
    /// Run variables for every execution it starts.
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
}

/// Changes to a schedule: the fields that are set replace the stored ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleUpdate {
    pub flow_id: Option<Uuid>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub vars: Option<serde_json::Map<String, serde_json::Value>>,
    pub enabled: Option<bool>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Schedule {
    pub id: Uuid,
    pub owner: Uuid,
    pub flow_id: Uuid,
    pub cron: String,
    pub timezone: String,
    #[ts(type = "Record<string, unknown>")]
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Executions of one flow (by name) that finished within one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MinuteRollup {
    /// The minute's start (seconds zero).
    pub minute: DateTime<Utc>,
    pub flow: String,
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Run time (finish minus start of the report; queue waits excluded), summed and largest.
    pub duration_ms_sum: u64,
    pub duration_ms_max: u64,
    pub records_out: u64,
}
