//! The engine records every execution in its history and reads it back.

use flow_engine::{ExecutionState, Flow, ListQuery, NodeState, RunOptions};
use flow_tests::{engine_with, users};
use serde_json::json;

#[tokio::test]
async fn executions_are_listed_and_read_back_with_node_details_and_preview() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("history.db");
    let engine = engine_with(|c| c.history = flow_engine::HistoryLocation::File(path.clone())).await;
    let flow = Flow::new("history-demo")
        .with_node("users", "generate_rows", users(30))
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("users", "active")
        .with_edge("active", "out");
    let ok = engine.run(flow.clone(), RunOptions::default()).await.expect("runs");
    let broken = flow.with_node("boom", "fail", json!({"after_records": 1})).with_edge("users", "boom");
    let failed = engine.run(broken, RunOptions::default()).await.expect("runs");

    let listed = engine.list_executions(&ListQuery::default()).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), vec![failed.id, ok.id], "newest first");
    assert_eq!(listed[1].state, ExecutionState::Succeeded);
    assert_eq!(listed[0].state, ExecutionState::Failed);
    assert_eq!(listed[1].records_out, 30 + 10);

    let detail = engine.get_execution(ok.id).await.expect("get").expect("exists");
    let active = detail.nodes.iter().find(|n| n.node_id == "active").expect("node");
    assert_eq!((active.counters.records_in, active.counters.records_out), (30, 10));
    assert_eq!(active.state, NodeState::Succeeded);
    assert_eq!(active.sample.len(), 10, "preview keeps up to 20 output records");
    assert_eq!(active.sample[0].get("status").and_then(|v| v.as_str()), Some("active"));

    let detail = engine.get_execution(failed.id).await.expect("get").expect("exists");
    let boom = detail.nodes.iter().find(|n| n.node_id == "boom").expect("node");
    assert_eq!(boom.state, NodeState::Failed);
    assert!(boom.error.as_deref().is_some_and(|e| e.contains("failed on purpose")));
    drop(engine);

    // A new engine on the same file sees the same history.
    let reopened = engine_with(|c| c.history = flow_engine::HistoryLocation::File(path)).await;
    let listed = reopened
        .list_executions(&ListQuery { flow: Some("history-demo".into()), ..Default::default() })
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
}
