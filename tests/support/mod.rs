//! Helpers shared by the end-to-end tests: an engine on an in-memory history with short retry
//! delays, and a one-call way to run a small flow.

use std::sync::Arc;
use std::time::Duration;

use flow_engine::{
    Engine, EngineConfig, ExecutionReport, Flow, HistoryLocation, Record, RetryPolicy, RunOptions,
};

/// An engine for tests: in-memory history, small batches, fast retries.
pub async fn engine() -> Engine {
    engine_with(|_| {}).await
}

/// Like [`engine`], after `tune` adjusts the configuration.
pub async fn engine_with(tune: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut config = EngineConfig { history: HistoryLocation::InMemory, ..EngineConfig::default() };
    config.runtime.batch_size = 100;
    config.runtime.retry = RetryPolicy {
        retries: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
    };
    tune(&mut config);
    Engine::open(config).await.expect("engine opens")
}

/// Runs a flow to its end on a fresh test engine.
pub async fn run(flow: Flow) -> Arc<ExecutionReport> {
    engine().await.run(flow, RunOptions::default()).await.expect("flow starts")
}

/// The records a Collect node kept, as JSON for exact comparison.
pub fn results(report: &ExecutionReport, node: &str) -> serde_json::Value {
    let records: &[Record] = report.results.get(node).map(Vec::as_slice).unwrap_or_default();
    serde_json::Value::Array(records.iter().map(Record::to_json).collect())
}

/// `count` users: id from 1, name "User {n}", status cycling active/inactive/draft, age 20 + n % 30.
pub fn users(count: u64) -> serde_json::Value {
    serde_json::json!({
        "count": count,
        "fields": {
            "id": {"sequence": {"start": 1}},
            "name": {"pattern": "User {n}"},
            "status": {"cycle": ["active", "inactive", "draft"]},
            "age": {"cycle": [20, 30, 40, 50]}
        }
    })
}
