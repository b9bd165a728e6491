//! Rows as SQLite returns them (text and integers) and their conversion into the public types.
//! The column lists live next to the structs so a query and its row cannot drift apart.

use flow_runtime::{Counters, NodeReport};

use crate::ExecutionSummary;
use crate::codec::{
    CodecError, parse_enum, parse_int, parse_optional_enum, parse_optional_time, parse_time, parse_uuid,
};

/// Columns of `executions` read into an `ExecutionRow`.
pub(crate) const EXECUTION_COLUMNS: &str =
    "id, correlation_id, flow, state, error, started_at, finished_at, records_out";

#[derive(sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    id: String,
    correlation_id: String,
    flow: String,
    state: String,
    error: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    records_out: i64,
}

impl ExecutionRow {
    pub(crate) fn into_summary(self) -> Result<ExecutionSummary, CodecError> {
        let started_at = parse_time("executions.started_at", &self.started_at)?;
        let finished_at = parse_optional_time("executions.finished_at", self.finished_at.as_deref())?;
        Ok(ExecutionSummary {
            id: parse_uuid("executions.id", &self.id)?,
            correlation_id: self.correlation_id,
            flow: self.flow,
            state: parse_enum("executions.state", &self.state)?,
            error: self.error,
            started_at,
            finished_at,
            duration_ms: finished_at.map(|f| (f - started_at).num_milliseconds()),
            records_out: parse_int("executions.records_out", self.records_out)?,
        })
    }
}

/// Columns of `node_runs` read into a `NodeRow`.
pub(crate) const NODE_COLUMNS: &str = "seq, node_id, node_type, state, attempts, started_at, \
     finished_at, records_in, records_out, errors, error, error_kind, sink";

#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    pub(crate) seq: i64,
    node_id: String,
    node_type: String,
    state: String,
    attempts: i64,
    started_at: Option<String>,
    finished_at: Option<String>,
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
            started_at: parse_optional_time("node_runs.started_at", self.started_at.as_deref())?,
            finished_at: parse_optional_time("node_runs.finished_at", self.finished_at.as_deref())?,
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
    pub(crate) node_seq: i64,
    pub(crate) record: String,
}
