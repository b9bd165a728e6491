//! Execution control and failure handling: pause/resume, cancel, timeouts, retries, the circuit
//! breaker, rollback of sinks, the concurrency limit and correlation ids.

use std::time::{Duration, Instant};

use flow_engine::{
    BreakerConfig, ErrorKind, EventKind, ExecutionState, Flow, NodeState, RunOptions, SinkOutcome,
};
use flow_tests::{engine, engine_with, results, run, users};
use serde_json::json;

/// Generated users slowed down by a Delay node, collected in full.
fn slow_flow(count: u64, delay_ms: u64) -> Flow {
    Flow::new("slow")
        .with_node("users", "generate_rows", users(count))
        .with_node("slow", "delay", json!({"ms": delay_ms}))
        .with_node("out", "collect", json!({"max_records": 100000}))
        .with_edge("users", "slow")
        .with_edge("slow", "out")
}

/// Waits until the node has sent at least `n` records.
async fn wait_for_output(sub: &mut flow_engine::Subscription, node: &str, n: u64) {
    while let Some(e) = sub.next().await {
        if let EventKind::NodeProgress { node: id, counters, .. } = &e.kind
            && id == node
            && counters.records_out >= n
        {
            return;
        }
    }
}

#[tokio::test]
async fn pause_then_resume_yields_the_same_output_as_an_uninterrupted_run() {
    let uninterrupted = run(slow_flow(3000, 10)).await;
    assert_eq!(uninterrupted.state, ExecutionState::Succeeded);

    let engine = engine().await;
    let mut sub = engine.subscribe(None);
    let id = engine.start(slow_flow(3000, 10), RunOptions::default()).await.expect("starts");
    wait_for_output(&mut sub, "slow", 200).await;
    engine.pause(id).expect("pause");
    // Every running node reaches a pause point and announces it.
    let mut paused = std::collections::HashSet::new();
    let mut execution_paused = false;
    while !(execution_paused && paused.contains("slow")) {
        let e = sub.next().await.expect("events");
        match &e.kind {
            EventKind::NodeState { node, state: NodeState::Paused, .. } => {
                paused.insert(node.clone());
            }
            EventKind::ExecutionState { state: ExecutionState::Paused, .. } => execution_paused = true,
            _ => {}
        }
    }
    let before = engine.get_execution(id).await.expect("history").map(|d| d.summary.state);
    assert_eq!(before, Some(ExecutionState::Running), "history keeps running executions as running");
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.resume(id).expect("resume");
    let resumed = engine.wait(id).await.expect("finishes");
    assert_eq!(resumed.state, ExecutionState::Succeeded, "{:?}", resumed.error);
    assert_eq!(results(&resumed, "out"), results(&uninterrupted, "out"));
    assert_eq!(results(&resumed, "out").as_array().map(Vec::len), Some(3000));
}

#[tokio::test]
async fn cancel_mid_stream_stops_within_one_second_and_rolls_back() {
    let engine = engine().await;
    let mut sub = engine.subscribe(None);
    let id = engine.start(slow_flow(10_000_000, 20), RunOptions::default()).await.expect("starts");
    wait_for_output(&mut sub, "slow", 100).await;
    let asked = Instant::now();
    engine.cancel(id).expect("cancel");
    let report = engine.wait(id).await.expect("ends");
    assert!(asked.elapsed() < Duration::from_secs(1), "took {:?}", asked.elapsed());
    assert_eq!(report.state, ExecutionState::Cancelled);
    for node in &report.nodes {
        assert_eq!(node.state, NodeState::Cancelled, "{}", node.node_id);
    }
    assert_eq!(report.node("out").and_then(|n| n.sink), Some(SinkOutcome::RolledBack));
    assert!(report.results.get("out").is_none_or(Vec::is_empty));
}

#[tokio::test]
async fn delay_beyond_its_timeout_fails_with_a_timeout_error() {
    let mut flow = slow_flow(10, 5_000);
    flow.nodes[1].settings.timeout_ms = Some(100);
    flow.nodes[1].settings.retry =
        Some(flow_model::RetrySettings { attempts: Some(1), ..Default::default() });
    let started = Instant::now();
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Failed);
    let slow = report.node("slow").expect("node");
    assert_eq!(slow.state, NodeState::Failed);
    assert_eq!(slow.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(slow.attempts, 2, "a timeout is retried per policy");
    assert!(slow.error.as_deref().is_some_and(|e| e.contains("timed out after 100 ms")), "{:?}", slow.error);
    assert!(started.elapsed() < Duration::from_secs(5), "the 5 s sleep was not awaited");
}

#[tokio::test]
async fn node_failing_twice_is_retried_with_growing_delays_and_attempts_recorded() {
    let mut flow = Flow::new("flaky")
        .with_node("rows", "generate_rows", json!({"count": 5, "fields": {"n": {"sequence": {"start": 1}}}}))
        .with_node("flaky", "fail", json!({"fail_attempts": 2}))
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "flaky")
        .with_edge("flaky", "out");
    flow.nodes[1].settings.retry = Some(flow_model::RetrySettings {
        attempts: Some(3),
        base_delay_ms: Some(40),
        max_delay_ms: Some(1000),
    });
    let engine = engine().await;
    let mut sub = engine.subscribe(None);
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "out").as_array().map(Vec::len), Some(5));
    assert_eq!(report.node("flaky").map(|n| n.attempts), Some(3));

    let mut delays = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
        if let EventKind::NodeState { node, state: NodeState::Retrying, retry_in_ms: Some(ms), .. } = &e.kind
            && node == "flaky"
        {
            delays.push(*ms);
        }
    }
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!(delays[0] >= 20 && delays[0] <= 40, "{delays:?}");
    assert!(delays[1] >= 40 && delays[1] <= 80 && delays[1] >= delays[0], "{delays:?}");

    let detail = engine.get_execution(report.id).await.expect("history").expect("recorded");
    let flaky = detail.nodes.iter().find(|n| n.node_id == "flaky").expect("node row");
    assert_eq!(flaky.attempts, 3);
}

#[tokio::test]
async fn breaker_opens_after_its_threshold_and_fails_fast_while_open() {
    let engine =
        engine_with(|c| c.breaker = BreakerConfig { threshold: 3, cooldown: Duration::from_secs(60) }).await;
    let flow = || {
        let mut f = Flow::new("down")
            .with_node("rows", "generate_rows", json!({"count": 1, "fields": {"n": {"value": 1}}}))
            .with_node("db", "fail", json!({"fail_attempts": 100, "target": "db.example:5432"}))
            .with_node("out", "collect", json!({}))
            .with_edge("rows", "db")
            .with_edge("db", "out");
        f.nodes[1].settings.retry = Some(flow_model::RetrySettings {
            attempts: Some(10),
            base_delay_ms: Some(1),
            max_delay_ms: Some(2),
        });
        f
    };
    let first = engine.run(flow(), RunOptions::default()).await.expect("runs");
    let db = first.node("db").expect("node");
    assert_eq!(db.error_kind, Some(ErrorKind::CircuitOpen), "{:?}", db.error);
    assert_eq!(db.attempts, 4, "three failures open the breaker; the fourth attempt is refused");
    assert!(db.error.as_deref().is_some_and(|e| e.contains("db.example:5432")));

    let second = engine.run(flow(), RunOptions::default()).await.expect("runs");
    let db = second.node("db").expect("node");
    assert_eq!(db.error_kind, Some(ErrorKind::CircuitOpen));
    assert_eq!(db.attempts, 1, "an open breaker fails fast");
}

#[tokio::test]
async fn failing_node_skips_downstream_and_rolls_back_every_sink() {
    let flow = Flow::new("partial")
        .with_node("users", "generate_rows", users(1000))
        .with_node("breaks", "fail", json!({"after_records": 500}))
        .with_node("after", "collect", json!({}))
        .with_node("side", "generate_rows", users(10))
        .with_node("side_out", "collect", json!({}))
        .with_edge("users", "breaks")
        .with_edge("breaks", "after")
        .with_edge("side", "side_out");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Failed);
    assert!(report.error.as_deref().is_some_and(|e| e.contains("`breaks`")), "{:?}", report.error);
    assert_eq!(report.node("breaks").map(|n| n.state), Some(NodeState::Failed));
    assert_eq!(report.node("after").map(|n| n.state), Some(NodeState::Skipped));
    for sink in ["after", "side_out"] {
        assert_eq!(report.node(sink).and_then(|n| n.sink), Some(SinkOutcome::RolledBack), "{sink}");
        assert!(report.results.get(sink).is_none_or(Vec::is_empty), "{sink} kept records");
    }
}

/// A line of nodes runs as one task (a chain) and a node with two ways out ends it; whatever the
/// grouping, both branches get every record once, in order, and each node keeps its own
/// counters and data preview.
#[tokio::test]
async fn chains_and_branches_deliver_every_record_once_with_each_node_s_counters() {
    let flow = Flow::new("chains")
        .with_node("users", "generate_rows", users(9000))
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node(
            "rename",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}]}),
        )
        .with_node("all", "collect", json!({"max_records": 100000}))
        .with_node("older", "filter", json!({"conditions": [{"field": "age", "op": "gte", "value": 40}]}))
        .with_node("some", "collect", json!({"max_records": 100000}))
        .with_edge("users", "active")
        .with_edge("active", "rename")
        .with_edge("rename", "all")
        .with_edge("rename", "older")
        .with_edge("older", "some");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    let counters = |id: &str| report.node(id).map(|n| (n.counters.records_in, n.counters.records_out));
    assert_eq!(counters("users"), Some((0, 9000)));
    assert_eq!(counters("active"), Some((9000, 3000)));
    assert_eq!(counters("rename"), Some((3000, 3000)));
    assert_eq!(counters("all"), Some((3000, 0)));
    // Active users are every third (ids 1, 4, 7, ...); half of them are 40 or older.
    assert_eq!(counters("older"), Some((3000, 1500)));
    assert_eq!(counters("some"), Some((1500, 0)));
    for id in ["users", "active", "rename", "older"] {
        let node = report.node(id).expect("node");
        assert_eq!(node.state, NodeState::Succeeded, "{id}");
        assert_eq!(node.sample.len(), 20, "{id} keeps its own preview");
    }
    let ids = |sink: &str| -> Vec<i64> {
        results(&report, sink)
            .as_array()
            .map(|rs| rs.iter().filter_map(|r| r["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids("all"), (0..3000).map(|k| 1 + 3 * k).collect::<Vec<i64>>());
    assert_eq!(ids("some").len(), 1500);
    assert!(ids("some").windows(2).all(|w| w[0] < w[1]), "the branch keeps the order");
    let first = &results(&report, "all")[0];
    assert_eq!((first["full_name"].as_str(), first.get("name")), (Some("User 0"), None));
}

/// A chain never waits on a channel, yet it must let the rest of the runtime run: on this
/// test's single-threaded runtime, progress events arrive while the source is still producing.
#[tokio::test]
async fn a_chain_yields_so_progress_is_published_while_it_runs() {
    const ROWS: u64 = 3_000_000;
    let flow = Flow::new("long chain")
        .with_node("users", "generate_rows", users(ROWS))
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node("out", "collect", json!({"max_records": 0}))
        .with_edge("users", "active")
        .with_edge("active", "out");
    let engine = engine().await;
    let mut sub = engine.subscribe(None);
    let id = engine.start(flow, RunOptions::default()).await.expect("starts");
    let mut midway = std::collections::BTreeSet::new();
    while let Some(e) = sub.next().await {
        match &e.kind {
            EventKind::NodeProgress { node, counters, .. }
                if node == "users" && counters.records_out > 0 && counters.records_out < ROWS =>
            {
                midway.insert(counters.records_out);
            }
            EventKind::ExecutionState { state, .. } if state.is_terminal() => break,
            _ => {}
        }
    }
    let report = engine.wait(id).await.expect("report");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert!(midway.len() >= 2, "progress seen while running: {midway:?}");
}

#[tokio::test]
async fn at_most_max_concurrent_executions_run_and_the_rest_wait_in_order() {
    let engine = engine_with(|c| c.max_concurrent_executions = 2).await;
    let mut sub = engine.subscribe(None);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(engine.start(slow_flow(300, 30), RunOptions::default()).await.expect("starts"));
    }
    let (mut running, mut max_running, mut started_order, mut finished) = (0, 0, Vec::new(), 0);
    while finished < ids.len() {
        let e = sub.next().await.expect("events");
        if let EventKind::ExecutionState { state, .. } = &e.kind {
            match state {
                ExecutionState::Running => {
                    running += 1;
                    max_running = max_running.max(running);
                    started_order.push(e.execution_id);
                }
                s if s.is_terminal() => {
                    running -= 1;
                    finished += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(max_running, 2);
    assert_eq!(started_order, ids, "queued executions start in the order they were started");
}

#[tokio::test]
async fn correlation_id_is_carried_by_every_event() {
    let engine = engine().await;
    let mut sub = engine.subscribe(None);
    let options = RunOptions { correlation_id: Some("corr-42".into()), ..RunOptions::default() };
    let report = engine.run(slow_flow(50, 1), options).await.expect("runs");
    assert_eq!(report.correlation_id, "corr-42");
    let mut seen = 0;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
        assert_eq!(e.correlation_id, "corr-42");
        seen += 1;
    }
    assert!(seen > 5, "only {seen} events");
}
