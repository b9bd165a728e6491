//! What the history returns and how it is queried: plain serde types, shaped for the hosts' APIs.

use chrono::{DateTime, Utc};
use flow_runtime::{ExecutionState, NodeReport};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// Page size when `ListQuery::limit` is not set.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page `list` returns, whatever `ListQuery::limit` asks for.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// Which executions `Store::list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ListQuery {
    /// Page size: 50 when unset, at most 1000.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// Only executions of this flow.
    pub flow: Option<String>,
    /// Only executions in this state.
    pub state: Option<ExecutionState>,
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
