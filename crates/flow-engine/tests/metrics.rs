//! The engine's metrics for a few small executions, counted exactly: the executions run on a
//! current-thread runtime inside a local debugging recorder, so every task records into it.

use std::collections::BTreeMap;

use flow_engine::{Engine, EngineConfig, ExecutionState, Flow, HistoryLocation, RunOptions};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;

fn ok_flow() -> Flow {
    let mut flow = Flow::new("ok")
        .with_node("rows", "generate_rows", json!({"count": 5, "fields": {"n": {"sequence": {"start": 1}}}}))
        .with_node("flaky", "fail", json!({"fail_attempts": 1}))
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "flaky")
        .with_edge("flaky", "out");
    flow.nodes[1].settings.retry =
        Some(flow_model::RetrySettings { attempts: Some(2), base_delay_ms: Some(1), max_delay_ms: Some(5) });
    flow
}

fn broken_flow() -> Flow {
    Flow::new("broken")
        .with_node("rows", "generate_rows", json!({"count": 5, "fields": {"n": {"sequence": {"start": 1}}}}))
        .with_node("breaks", "fail", json!({"after_records": 2}))
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "breaks")
        .with_edge("breaks", "out")
}

/// `name{k=v,...}` (labels sorted) -> value.
fn snapshot(recorder: &DebuggingRecorder) -> BTreeMap<String, DebugValue> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<String> =
                key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            (format!("{}{{{}}}", key.key().name(), labels.join(",")), value)
        })
        .collect()
}

fn run_all(config: EngineConfig) -> BTreeMap<String, DebugValue> {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let engine = Engine::open(config).await.expect("engine");
            for (flow, state) in [
                (ok_flow(), ExecutionState::Succeeded),
                (ok_flow(), ExecutionState::Succeeded),
                (broken_flow(), ExecutionState::Failed),
            ] {
                let report = engine.run(flow, RunOptions::default()).await.expect("runs");
                assert_eq!(report.state, state, "{:?}", report.error);
            }
        });
    });
    snapshot(&recorder)
}

fn config() -> EngineConfig {
    EngineConfig { history: HistoryLocation::InMemory, ..EngineConfig::default() }
}

#[test]
fn metrics_of_small_executions_are_exact() {
    let got = run_all(config());
    let counter = |key: &str| match got.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {:#?}", got.keys().collect::<Vec<_>>()),
    };
    let observed = |key: &str| match got.get(key) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{key}: {other:?} in {:#?}", got.keys().collect::<Vec<_>>()),
    };
    assert_eq!(counter("flow_executions_started_total{flow=ok}"), 2);
    assert_eq!(counter("flow_executions_started_total{flow=broken}"), 1);
    assert_eq!(counter("flow_executions_total{flow=ok,state=succeeded}"), 2);
    assert_eq!(counter("flow_executions_total{flow=broken,state=failed}"), 1);
    assert_eq!(observed("flow_execution_duration_seconds{flow=ok,state=succeeded}"), 2);
    assert_eq!(observed("flow_execution_duration_seconds{flow=broken,state=failed}"), 1);
    assert_eq!(got.get("flow_executions_active{}"), Some(&DebugValue::Gauge(0.0.into())));

    let ok = |node: &str, node_type: &str| format!("flow=ok,node={node},node_type={node_type}");
    assert_eq!(counter(&format!("flow_node_records_out_total{{{}}}", ok("rows", "generate_rows"))), 10);
    assert_eq!(counter(&format!("flow_node_records_in_total{{{}}}", ok("flaky", "fail"))), 10);
    assert_eq!(counter(&format!("flow_node_records_out_total{{{}}}", ok("flaky", "fail"))), 10);
    assert_eq!(counter(&format!("flow_node_records_in_total{{{}}}", ok("out", "collect"))), 10);
    assert_eq!(
        counter(&format!("flow_node_retries_total{{{}}}", ok("flaky", "fail"))),
        2,
        "one retry per run"
    );
    assert_eq!(
        observed(&format!("flow_node_duration_seconds{{{},state=succeeded}}", ok("out", "collect"))),
        2
    );
    assert_eq!(
        observed("flow_node_duration_seconds{flow=broken,node=breaks,node_type=fail,state=failed}"),
        1
    );
    assert!(!got.keys().any(|k| k.starts_with("flow_node_retries_total{flow=broken")), "no retry there");
}

#[test]
fn metrics_off_records_nothing() {
    let mut config = config();
    config.runtime.metrics = false;
    let got = run_all(config);
    assert!(!got.keys().any(|k| k.starts_with("flow_executions") || k.starts_with("flow_node")), "{got:#?}");
}
