//! Sub-flows: a `subflow` node runs a flow file as a child execution that records stream
//! through, with exact counts; the child's progress reaches the parent's events; the child is
//! recorded with its parent's id; cancel and pause reach it; variables are inherited and
//! overridden; and references that cannot be followed (a missing file, ports that do not fit, a
//! cycle of flows) are refused before the run. The PostgreSQL side (one all-or-nothing outcome
//! for the whole tree) is in `postgres.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flow_engine::{
    EngineError, EventKind, ExecutionReport, ExecutionState, Flow, FlowOrigin, ListQuery, NodeState,
    ProblemKind, RunOptions, save_flow,
};
use flow_tests::{engine, results, users};
use serde_json::json;

/// Writes `flow` as `name` in `dir` and returns its path.
fn write(dir: &Path, name: &str, flow: &Flow) -> PathBuf {
    let path = dir.join(name);
    save_flow(flow, &path).expect("flow file written");
    path
}

/// A child that keeps the records whose status is `{{ vars.status }}` and renames `name`.
fn keep_and_rename() -> Flow {
    Flow::new("keep-and-rename")
        .with_node("in", "input", json!({}))
        .with_node(
            "keep",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "{{ vars.status }}"}]}),
        )
        .with_node(
            "rename",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}]}),
        )
        .with_node("out", "output", json!({}))
        .with_edge("in", "keep")
        .with_edge("keep", "rename")
        .with_edge("rename", "out")
}

/// `count` users through the child `child.json` into a Collect node.
fn through_child(count: u64, sub_params: serde_json::Value) -> Flow {
    let mut flow = Flow::new("parent")
        .with_node("users", "generate_rows", users(count))
        .with_node("sub", "subflow", sub_params)
        .with_node("kept", "collect", json!({"max_records": 1_000_000}))
        .with_edge("users", "sub")
        .with_edge("sub", "kept");
    flow.variables.insert("status".into(), json!("active"));
    flow
}

fn from_file(path: &Path) -> RunOptions {
    RunOptions { origin: FlowOrigin::File(path.to_owned()), ..RunOptions::default() }
}

fn only_child(report: &ExecutionReport) -> &ExecutionReport {
    assert_eq!(report.children.len(), 1, "one child execution");
    &report.children[0]
}

#[tokio::test]
async fn a_parent_streams_100k_records_through_a_child_with_exact_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "child.json", &keep_and_rename());
    let parent = write(dir.path(), "parent.json", &through_child(100_000, json!({"flow": "child.json"})));
    let engine = engine().await;
    let mut events = engine.subscribe(None);
    let flow = flow_engine::load_flow(&parent).expect("parent");
    let report = engine.run(flow, from_file(&parent)).await.expect("starts");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);

    // Statuses cycle active/inactive/draft from id 1: ids 1, 4, 7, ... are active.
    let kept = results(&report, "kept");
    let kept = kept.as_array().expect("records");
    assert_eq!(kept.len(), 33_334);
    assert_eq!(kept[0], json!({"id": 1, "full_name": "User 0", "status": "active", "age": 20}));
    assert!(kept.iter().all(|r| r["status"] == "active" && r.get("name").is_none()));
    let sub = report.node("sub").expect("sub");
    assert_eq!((sub.counters.records_in, sub.counters.records_out), (100_000, 33_334));

    let child = only_child(&report);
    assert_eq!(child.state, ExecutionState::Succeeded);
    assert_eq!((child.parent_id, child.parent_node.as_deref()), (Some(report.id), Some("sub")));
    assert_eq!(child.correlation_id, report.correlation_id, "the child keeps the correlation id");
    let counts = |id: &str| child.node(id).map(|n| (n.counters.records_in, n.counters.records_out));
    assert_eq!(counts("in"), Some((0, 100_000)));
    assert_eq!(counts("keep"), Some((100_000, 33_334)));
    assert_eq!(counts("out"), Some((33_334, 0)));

    // The child is in the history under its parent.
    let recorded = engine.get_execution(child.id).await.expect("history").expect("child recorded");
    assert_eq!(recorded.summary.parent_id, Some(report.id));
    assert_eq!(recorded.summary.flow, "keep-and-rename");
    let children = engine
        .list_executions(&ListQuery { parent: Some(report.id), ..ListQuery::default() })
        .await
        .expect("list");
    assert_eq!(children.iter().map(|c| c.id).collect::<Vec<_>>(), vec![child.id]);

    // The parent's events carried the child's nodes, by path, and no execution state of its own.
    let mut child_nodes = std::collections::BTreeMap::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        assert_eq!(e.execution_id, report.id, "every event of the tree is the parent's");
        match &e.kind {
            EventKind::NodeProgress { node, counters, .. } if node.starts_with("sub/") => {
                child_nodes.insert(node.clone(), counters.records_out);
            }
            EventKind::ExecutionState { flow, .. } => assert_eq!(flow, "parent"),
            _ => {}
        }
    }
    assert_eq!(child_nodes.get("sub/keep"), Some(&33_334), "{child_nodes:?}");
    assert_eq!(child_nodes.get("sub/in"), Some(&100_000));
}

#[tokio::test]
async fn the_child_inherits_the_parents_variables_and_the_node_overrides_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "child.json", &keep_and_rename());
    let parent = write(
        dir.path(),
        "parent.json",
        &through_child(9, json!({"flow": "child.json", "vars": {"status": "draft"}})),
    );
    let inherits = write(dir.path(), "inherits.json", &through_child(9, json!({"flow": "child.json"})));
    let engine = engine().await;
    let ids = |report: &ExecutionReport| {
        results(report, "kept")
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>()
    };
    let overridden =
        engine.run(flow_engine::load_flow(&parent).expect("flow"), from_file(&parent)).await.expect("runs");
    assert_eq!(ids(&overridden), vec![json!(3), json!(6), json!(9)]);
    let inherited = engine
        .run(flow_engine::load_flow(&inherits).expect("flow"), from_file(&inherits))
        .await
        .expect("runs");
    assert_eq!(ids(&inherited), vec![json!(1), json!(4), json!(7)]);
}

#[tokio::test]
async fn a_child_without_input_or_output_runs_once_per_parent_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Flow::new("standalone")
        .with_node("users", "generate_rows", users(5))
        .with_node("all", "collect", json!({}))
        .with_edge("users", "all");
    write(dir.path(), "standalone.json", &child);
    let parent = write(
        dir.path(),
        "p.json",
        &Flow::new("p").with_node("sub", "subflow", json!({"flow": "standalone.json"})),
    );
    let engine = engine().await;
    let report =
        engine.run(flow_engine::load_flow(&parent).expect("flow"), from_file(&parent)).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    let child = only_child(&report);
    assert_eq!(results(child, "all").as_array().map(Vec::len), Some(5));
}

/// `count` users, slowed down inside the child `slow.json`.
fn slow_tree(dir: &Path, count: u64) -> PathBuf {
    let child = Flow::new("slow-child")
        .with_node("in", "input", json!({}))
        .with_node("slow", "delay", json!({"ms": 20}))
        .with_node("out", "output", json!({}))
        .with_edge("in", "slow")
        .with_edge("slow", "out");
    write(dir, "slow.json", &child);
    let parent = Flow::new("slow-parent")
        .with_node("users", "generate_rows", users(count))
        .with_node("sub", "subflow", json!({"flow": "slow.json"}))
        .with_node("kept", "collect", json!({"max_records": 1_000_000}))
        .with_edge("users", "sub")
        .with_edge("sub", "kept");
    write(dir, "slow-parent.json", &parent)
}

/// Waits until the parent's events show the node `path` sent at least `n` records.
async fn wait_for_output(sub: &mut flow_engine::Subscription, path: &str, n: u64) {
    while let Some(e) = sub.next().await {
        if let EventKind::NodeProgress { node, counters, .. } = &e.kind
            && node == path
            && counters.records_out >= n
        {
            return;
        }
    }
}

/// The last `records_out` of node `path` the events show within `ms` milliseconds.
async fn latest_output(sub: &mut flow_engine::Subscription, path: &str, ms: u64) -> Option<u64> {
    let until = tokio::time::Instant::now() + Duration::from_millis(ms);
    let mut latest = None;
    while let Ok(Some(e)) = tokio::time::timeout_at(until, sub.next()).await {
        if let EventKind::NodeProgress { node, counters, .. } = &e.kind
            && node == path
        {
            latest = Some(counters.records_out);
        }
    }
    latest
}

/// The slow tree of `count` users started, once its child's `slow` node sent `seen` records.
async fn running_slow_tree(
    count: u64,
    seen: u64,
) -> (tempfile::TempDir, flow_engine::Engine, flow_engine::Subscription, uuid::Uuid) {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = slow_tree(dir.path(), count);
    let engine = engine().await;
    let mut events = engine.subscribe(None);
    let id = engine
        .start(flow_engine::load_flow(&parent).expect("flow"), from_file(&parent))
        .await
        .expect("starts");
    wait_for_output(&mut events, "sub/slow", seen).await;
    (dir, engine, events, id)
}

#[tokio::test]
async fn cancelling_the_parent_stops_the_child() {
    let (_dir, engine, _events, id) = running_slow_tree(10_000_000, 300).await;
    let asked = Instant::now();
    engine.cancel(id).expect("cancel");
    let report = engine.wait(id).await.expect("ends");
    assert!(asked.elapsed() < Duration::from_secs(1), "took {:?}", asked.elapsed());
    assert_eq!(report.state, ExecutionState::Cancelled);
    let child = only_child(&report);
    assert_eq!(child.state, ExecutionState::Cancelled);
    for node in &child.nodes {
        assert_eq!(node.state, NodeState::Cancelled, "child node {}", node.node_id);
    }
    assert!(child.node("slow").is_some_and(|n| n.counters.records_out < 10_000_000));
}

#[tokio::test]
async fn pausing_the_parent_pauses_the_child_and_resuming_finishes_it() {
    let (_dir, engine, mut events, id) = running_slow_tree(2_000, 200).await;
    engine.pause(id).expect("pause");
    let mut at_pause = 0;
    loop {
        let e = events.next().await.expect("events");
        match &e.kind {
            EventKind::NodeProgress { node, counters, .. } if node == "sub/slow" => {
                at_pause = counters.records_out
            }
            EventKind::NodeState { node, state: NodeState::Paused, .. } if node == "sub/slow" => break,
            _ => {}
        }
    }
    // The counters of the last calls before the pause arrive with the next tick; after that,
    // the child's counters stand still while paused.
    let at_pause = latest_output(&mut events, "sub/slow", 250).await.unwrap_or(at_pause);
    assert_eq!(latest_output(&mut events, "sub/slow", 400).await.unwrap_or(at_pause), at_pause);
    engine.resume(id).expect("resume");
    let report = engine.wait(id).await.expect("ends");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(results(&report, "kept").as_array().map(Vec::len), Some(2_000));
}

#[tokio::test]
async fn a_cycle_of_sub_flows_is_refused_before_the_run_naming_both_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a =
        write(dir.path(), "a.json", &Flow::new("A").with_node("run_b", "subflow", json!({"flow": "b.json"})));
    write(dir.path(), "b.json", &Flow::new("B").with_node("run_a", "subflow", json!({"flow": "a.json"})));
    let engine = engine().await;
    let flow = flow_engine::load_flow(&a).expect("a");
    let report = engine.validate_at(&flow, &Default::default(), &FlowOrigin::File(a.clone())).await;
    let cycle = report.problems.iter().find(|p| p.kind == ProblemKind::Cycle).expect("a cycle problem");
    assert_eq!(cycle.node.as_deref(), Some("run_b"));
    assert!(
        cycle.message.contains("`A` (a.json) → `B` (b.json) → `A` (a.json)"),
        "the chain is named: {}",
        cycle.message
    );
    match engine.start(flow, from_file(&a)).await {
        Err(EngineError::Invalid { report, .. }) => {
            assert!(report.problems.iter().any(|p| p.kind == ProblemKind::Cycle));
        }
        other => panic!("the run is refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_file_unfit_ports_and_an_invalid_child_are_reported_on_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No Flow Input although records flow in; no Flow Output although the output is used.
    let portless = Flow::new("portless").with_node(
        "x",
        "filter",
        json!({"conditions": [{"field": "nope", "op": "gt", "value": 1}]}),
    );
    write(dir.path(), "portless.json", &portless);
    let broken = Flow::new("broken").with_node("bad", "no_such_type", json!({}));
    write(dir.path(), "broken.json", &broken);
    let parent = Flow::new("parent")
        .with_node("users", "generate_rows", users(3))
        .with_node("missing", "subflow", json!({"flow": "nowhere/missing.json"}))
        .with_node("unfit", "subflow", json!({"flow": "portless.json"}))
        .with_node("invalid", "subflow", json!({"flow": "broken.json"}))
        .with_node("kept", "collect", json!({}))
        .with_edge("users", "missing")
        .with_edge("users", "unfit")
        .with_edge("unfit", "kept");
    let path = write(dir.path(), "parent.json", &parent);
    let engine = engine().await;
    let report = engine.validate_at(&parent, &Default::default(), &FlowOrigin::File(path)).await;
    let on =
        |node: &str| report.problems.iter().filter(|p| p.node.as_deref() == Some(node)).collect::<Vec<_>>();
    let missing = on("missing");
    assert!(
        missing.iter().any(|p| p.kind == ProblemKind::Subflow && p.message.contains("missing.json")),
        "{missing:?}"
    );
    let unfit: Vec<&str> = on("unfit").iter().map(|p| p.message.as_str()).collect();
    assert!(unfit.iter().any(|m| m.contains("no Flow Input")), "{unfit:?}");
    assert!(unfit.iter().any(|m| m.contains("no Flow Output")), "{unfit:?}");
    let invalid = on("invalid");
    assert!(
        invalid
            .iter()
            .any(|p| p.kind == ProblemKind::UnknownNodeType && p.message.contains("`broken` (broken.json)")),
        "{invalid:?}"
    );
    // A flow that is not saved can follow only absolute paths.
    let unsaved = engine.validate_at(&parent, &Default::default(), &FlowOrigin::Unsaved).await;
    assert!(unsaved.problems.iter().any(|p| p.message.contains("not saved")), "{:?}", unsaved.problems);
}

#[tokio::test]
async fn sub_flows_nest_eight_levels_deep_and_no_deeper() {
    let dir = tempfile::tempdir().expect("tempdir");
    // level-N.json runs level-(N+1).json; the last one generates a row.
    let write_chain = |levels: usize| {
        for n in 0..levels {
            let flow = Flow::new(format!("level {n}")).with_node(
                "next",
                "subflow",
                json!({"flow": format!("level-{}.json", n + 1)}),
            );
            write(dir.path(), &format!("level-{n}.json"), &flow);
        }
        let last = Flow::new("leaf")
            .with_node("rows", "generate_rows", users(1))
            .with_node("all", "collect", json!({}))
            .with_edge("rows", "all");
        write(dir.path(), &format!("level-{levels}.json"), &last)
    };
    let engine = engine().await;
    write_chain(8);
    let root = dir.path().join("level-0.json");
    let flow = flow_engine::load_flow(&root).expect("root");
    let report = engine.validate_at(&flow, &Default::default(), &FlowOrigin::File(root.clone())).await;
    assert!(report.is_valid(), "{:#?}", report.problems);
    let run = engine.run(flow, from_file(&root)).await.expect("starts");
    assert_eq!(run.state, ExecutionState::Succeeded, "{:?}", run.error);

    write_chain(9);
    let flow = flow_engine::load_flow(&root).expect("root");
    let report = engine.validate_at(&flow, &Default::default(), &FlowOrigin::File(root)).await;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.node.as_deref() == Some("next") && p.message.contains("deeper than 8 levels")),
        "{:#?}",
        report.problems
    );
}
