//! The engine records every execution in its history and reads it back.

use std::time::{Duration, Instant};

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

/// The server's API records a run as queued before a worker's engine starts it
/// (`recorded_as_queued`): the engine then writes nothing at the start, records the run as
/// running only once it has run for 250 ms (so a short run's history is the queued row and its
/// outcome), and keeps the time the run was queued.
#[tokio::test]
async fn a_run_recorded_as_queued_is_recorded_as_running_only_once_it_lasts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.db");
    let engine = engine_with(|c| c.history = flow_engine::HistoryLocation::File(path.clone())).await;
    let api = flow_store::Store::open(&path).await.expect("the API's store");
    let queued_at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 5, 0).expect("a time");
    let queue = |flow: &str| {
        let id = uuid::Uuid::now_v7();
        let row = flow_store::NewExecution {
            id,
            correlation_id: id.to_string(),
            flow: flow.to_owned(),
            state: ExecutionState::Queued,
            started_at: queued_at,
            owner: None,
            flow_id: None,
            parent_id: None,
            fence: None,
        };
        (id, row)
    };
    let options = |id| RunOptions {
        execution_id: Some(id),
        fence: Some(1),
        recorded_as_queued: true,
        ..RunOptions::default()
    };
    let state = |id| {
        let engine = engine.clone();
        async move { engine.get_execution(id).await.expect("get").expect("recorded").summary.state }
    };

    let slow = Flow::new("slow")
        .with_node("users", "generate_rows", users(1))
        .with_node("wait", "delay", json!({"ms": 1500}))
        .with_node("out", "collect", json!({}))
        .with_edge("users", "wait")
        .with_edge("wait", "out");
    let (id, row) = queue("slow");
    api.record_started(&row).await.expect("queued");
    engine.start(slow, options(id)).await.expect("starts");
    assert_eq!(state(id).await, ExecutionState::Queued, "nothing written at the start");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match state(id).await {
            ExecutionState::Running => break,
            ExecutionState::Queued => assert!(Instant::now() < deadline, "never recorded as running"),
            other => panic!("{other:?} before it was recorded as running"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.wait(id).await.expect("ends").state, ExecutionState::Succeeded);
    let summary = engine.get_execution(id).await.expect("get").expect("recorded").summary;
    assert_eq!(summary.state, ExecutionState::Succeeded);
    assert_eq!(summary.started_at, queued_at, "the queued time stays");

    let quick = Flow::new("quick")
        .with_node("users", "generate_rows", users(3))
        .with_node("out", "collect", json!({}))
        .with_edge("users", "out");
    let (id, row) = queue("quick");
    api.record_started(&row).await.expect("queued");
    let report = engine.run(quick, options(id)).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded);
    let summary = engine.get_execution(id).await.expect("get").expect("recorded").summary;
    assert_eq!(summary.state, ExecutionState::Succeeded);
    assert_eq!(summary.started_at, queued_at);
}
