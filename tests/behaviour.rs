//! Node behaviour through whole tiny flows with exact expected output.

use flow_engine::{ExecutionState, Flow, NodeState, SinkOutcome};
use flow_tests::{results, run, users};
use serde_json::json;

#[tokio::test]
async fn generate_filter_map_collect_gives_exact_records() {
    let flow = Flow::new("chain")
        .with_node("users", "generate_rows", users(6))
        .with_node("active", "filter", json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}))
        .with_node(
            "rename",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}, {"op": "drop", "field": "status"}]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("users", "active")
        .with_edge("active", "rename")
        .with_edge("rename", "out");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    // Generated fields come in name order: age, id, name, status.
    assert_eq!(
        results(&report, "out"),
        json!([
            {"age": 20, "id": 1, "full_name": "User 0"},
            {"age": 50, "id": 4, "full_name": "User 3"},
        ])
    );
    let active = report.node("active").expect("node");
    assert_eq!((active.counters.records_in, active.counters.records_out), (6, 2));
    assert_eq!(report.node("out").and_then(|n| n.sink), Some(SinkOutcome::Committed));
}

#[tokio::test]
async fn fan_out_and_merge_deliver_every_branch() {
    let flow = Flow::new("fan")
        .with_node("users", "generate_rows", users(300))
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node(
            "draft",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "draft"}]}),
        )
        .with_node("all", "collect", json!({"max_records": 0}))
        .with_node("both", "merge", json!({}))
        .with_node(
            "count",
            "aggregate",
            json!({"group_by": ["status"], "aggregations": [{"fn": "count", "as": "n"}]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("users", "active")
        .with_edge("users", "draft")
        .with_edge("users", "all")
        .with_edge("active", "both")
        .with_edge("draft", "both")
        .with_edge("both", "count")
        .with_edge("count", "out");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        results(&report, "out"),
        json!([{"status": "active", "n": 100}, {"status": "draft", "n": 100}])
    );
    assert_eq!(report.node("all").map(|n| n.counters.records_in), Some(300));
    assert_eq!(report.node("both").map(|n| n.counters.records_out), Some(200));
}

#[tokio::test]
async fn aggregate_computes_count_sum_avg_min_max_per_group() {
    let flow = Flow::new("agg")
        .with_node(
            "sales",
            "static_data",
            json!({"records": [
                {"region": "n", "amount": 10, "price": 1.5},
                {"region": "s", "amount": 5, "price": 2.0},
                {"region": "n", "amount": 30, "price": 0.5},
                {"region": "n", "amount": 20, "price": 1.0}
            ]}),
        )
        .with_node(
            "agg",
            "aggregate",
            json!({"group_by": ["region"], "aggregations": [
                {"fn": "count", "as": "orders"},
                {"fn": "sum", "field": "amount", "as": "total"},
                {"fn": "avg", "field": "amount", "as": "mean"},
                {"fn": "min", "field": "price", "as": "cheapest"},
                {"fn": "max", "field": "amount", "as": "largest"}
            ]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("sales", "agg")
        .with_edge("agg", "out");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        results(&report, "out"),
        json!([
            {"region": "n", "orders": 3, "total": 60, "mean": 20.0, "cheapest": 0.5, "largest": 30},
            {"region": "s", "orders": 1, "total": 5, "mean": 5.0, "cheapest": 2.0, "largest": 5}
        ])
    );
}

#[tokio::test]
async fn sort_and_limit_return_the_top_records() {
    let flow = Flow::new("top")
        .with_node(
            "users",
            "generate_rows",
            json!({"count": 50, "fields": {"id": {"sequence": {"start": 1}}}}),
        )
        .with_node("sorted", "sort", json!({"by": [{"field": "id", "order": "desc"}]}))
        .with_node("top", "limit", json!({"count": 3, "offset": 1}))
        .with_node("out", "collect", json!({}))
        .with_edge("users", "sorted")
        .with_edge("sorted", "top")
        .with_edge("top", "out");
    let report = run(flow).await;
    assert_eq!(results(&report, "out"), json!([{"id": 49}, {"id": 48}, {"id": 47}]));
}

#[tokio::test]
async fn record_errors_are_routed_to_the_error_output_when_asked() {
    let mut flow = Flow::new("route")
        .with_node("rows", "static_data", json!({"records": [{"age": "12"}, {"age": "x"}, {"age": "40"}]}))
        .with_node(
            "cast",
            "field_mapper",
            json!({"operations": [{"op": "cast", "field": "age", "to": "int"}]}),
        )
        .with_node("good", "collect", json!({}))
        .with_node("bad", "collect", json!({}))
        .with_edge("rows", "cast")
        .with_edge("cast", "good")
        .with_edge("cast.error", "bad");
    flow.nodes[1].settings.on_error = flow_model::OnError::Route;
    let report = run(flow.clone()).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "good"), json!([{"age": 12}, {"age": 40}]));
    let bad = results(&report, "bad");
    assert_eq!(bad[0]["age"], json!("x"));
    assert!(bad[0]["_error"].as_str().is_some_and(|e| e.contains("age")), "{bad}");
    assert_eq!(report.node("cast").map(|n| n.counters.errors), Some(1));

    // Without routing, the same record fails the node and the execution.
    flow.nodes[1].settings.on_error = flow_model::OnError::Fail;
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Failed);
    assert_eq!(report.node("cast").map(|n| n.state), Some(NodeState::Failed));
}

#[tokio::test]
async fn templates_see_vars_run_parameters_and_execution_id() {
    let mut flow = Flow::new("tpl")
        .with_node("rows", "static_data", json!({"records": [{"x": 1}]}))
        .with_node(
            "label",
            "field_mapper",
            json!({"operations": [
                {"op": "compute", "field": "table", "expression": "\"{{ vars.table }}\""},
                {"op": "compute", "field": "exec", "expression": "\"{{ execution.id }}\""}
            ]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "label")
        .with_edge("label", "out");
    flow.variables.insert("table".into(), json!("users"));
    let engine = flow_tests::engine().await;
    let mut options = flow_engine::RunOptions::default();
    options.vars.insert("table".into(), json!("customers"));
    let report = engine.run(flow, options).await.expect("runs");
    let out = results(&report, "out");
    assert_eq!(out[0]["table"], json!("customers"), "run parameters override flow variables");
    assert_eq!(out[0]["exec"], json!(report.id.to_string()));
}

#[tokio::test]
async fn undefined_template_variable_is_refused_naming_node_and_param() {
    let flow = Flow::new("tpl")
        .with_node("rows", "static_data", json!({"records": [{"x": 1}]}))
        .with_node(
            "label",
            "field_mapper",
            json!({"operations": [{"op": "compute", "field": "t", "expression": "\"{{ vars.nope }}\""}]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "label")
        .with_edge("label", "out");
    // Templates are rendered by validation too, so the run is refused before any node starts.
    let engine = flow_tests::engine().await;
    let refused = engine.start(flow, Default::default()).await.expect_err("refused");
    let flow_engine::EngineError::Invalid { report, .. } = refused else { panic!("{refused}") };
    let problem = &report.problems[0];
    assert_eq!(
        (problem.node.as_deref(), problem.field.as_deref()),
        (Some("label"), Some("/operations/0/expression"))
    );
    assert!(problem.message.contains("params/operations/0/expression"), "{}", problem.message);
}

#[tokio::test]
async fn custom_code_reshapes_splits_and_drops_records() {
    let flow = Flow::new("code")
        .with_node("rows", "static_data", json!({"records": [{"n": 1}, {"n": 2}, {"n": 3}]}))
        .with_node(
            "code",
            "code",
            json!({"script": "if record.n == 2 { return (); }\nif record.n == 3 { return [#{n: 30}, #{n: 31}]; }\nrecord.doubled = record.n * 2;\nrecord"}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("rows", "code")
        .with_edge("code", "out");
    let report = run(flow).await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "out"), json!([{"n": 1, "doubled": 2}, {"n": 30}, {"n": 31}]));
}
