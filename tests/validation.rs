//! Validation reports every problem of a flow at once, each naming its node, port or field.

use flow_engine::{Flow, ProblemKind, Suggestion};
use flow_model::{Edge, Endpoint};
use serde_json::json;

fn kinds(flow: &Flow, engine: &flow_engine::Engine) -> Vec<ProblemKind> {
    engine.validate(flow).problems.iter().map(|p| p.kind).collect()
}

#[tokio::test]
async fn every_problem_is_reported_at_once_and_named() {
    let engine = flow_tests::engine().await;
    let mut flow = Flow::new("broken")
        .with_node("src", "generate_rows", json!({"count": 5, "fields": {"n": {"value": 1}}}))
        .with_node("src", "limit", json!({"count": 1}))
        .with_node("mystery", "no_such_type", json!({}))
        .with_node("lim", "limit", json!({"count": "ten"}))
        .with_node("lonely", "filter", json!({"conditions": [{"field": "n", "op": "eq", "value": 1}]}))
        .with_node("a", "limit", json!({"count": 1}))
        .with_node("b", "limit", json!({"count": 1}))
        .with_edge("src", "lim")
        .with_edge("lim", "ghost")
        .with_edge("lim.nope", "a")
        .with_edge("a", "b")
        .with_edge("b", "a");
    flow.edges.push(Edge {
        from: Endpoint { node: "src".into(), port: "out".into() },
        to: Endpoint { node: "a".into(), port: "in".into() },
    });
    let report = engine.validate(&flow);
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    for expected in [
        ProblemKind::DuplicateId,
        ProblemKind::UnknownNodeType,
        ProblemKind::InvalidParams,
        ProblemKind::MissingNode,
        ProblemKind::MissingPort,
        ProblemKind::RequiredInputUnconnected,
        ProblemKind::TooManyEdges,
        ProblemKind::Cycle,
    ] {
        assert!(kinds.contains(&expected), "{expected:?} missing from {:#?}", report.problems);
    }
    let find = |k: ProblemKind| report.problems.iter().find(|p| p.kind == k).expect("present");
    assert_eq!(find(ProblemKind::UnknownNodeType).node.as_deref(), Some("mystery"));
    let params = find(ProblemKind::InvalidParams);
    assert_eq!((params.node.as_deref(), params.field.as_deref()), (Some("lim"), Some("/count")));
    assert!(params.message.contains("params/count"), "{}", params.message);
    assert_eq!(find(ProblemKind::MissingNode).node.as_deref(), Some("ghost"));
    let port = find(ProblemKind::MissingPort);
    assert_eq!((port.node.as_deref(), port.port.as_deref()), (Some("lim"), Some("nope")));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::RequiredInputUnconnected && p.node.as_deref() == Some("lonely"))
    );
    assert!(find(ProblemKind::Cycle).message.contains("`a`, `b`"), "{}", find(ProblemKind::Cycle).message);
}

#[tokio::test]
async fn missing_field_is_explained_with_applicable_suggestions() {
    let engine = flow_tests::engine().await;
    let flow = Flow::new("mismatch")
        .with_node(
            "users",
            "generate_rows",
            json!({"count": 1, "fields": {"name": {"pattern": "x"}, "age": {"value": 3}}}),
        )
        .with_node(
            "pick",
            "filter",
            json!({"conditions": [{"field": "full_name", "op": "eq", "value": "x"}]}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("users", "pick")
        .with_edge("pick", "out");
    let report = engine.validate(&flow);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(p.kind, ProblemKind::MissingField);
    assert_eq!((p.node.as_deref(), p.field.as_deref()), (Some("pick"), Some("/conditions/0/field")));
    assert!(p.message.contains("full_name") && p.message.contains("age, name"), "{}", p.message);
    assert!(p.suggestions.contains(&Suggestion::ReplaceField {
        node: "pick".into(),
        param: "/conditions/0/field".into(),
        from: "full_name".into(),
        to: "name".into(),
    }));
    assert!(p.suggestions.iter().any(|s| matches!(s,
        Suggestion::InsertFieldMapper { rename_from, rename_to, from, to }
            if rename_from == "name" && rename_to == "full_name" && from.node == "users" && to.node == "pick")));
}

#[tokio::test]
async fn schemas_propagate_through_mappers_and_numeric_use_is_checked() {
    let engine = flow_tests::engine().await;
    let flow = Flow::new("propagate")
        .with_node("users", "generate_rows", json!({"count": 1, "fields": {"name": {"pattern": "x"}, "age": {"value": 3}}}))
        .with_node("map", "field_mapper", json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}]}))
        .with_node("sum", "aggregate", json!({"group_by": ["full_name"], "aggregations": [{"fn": "sum", "field": "full_name", "as": "s"}]}))
        .with_node("out", "collect", json!({}))
        .with_edge("users", "map")
        .with_edge("map", "sum")
        .with_edge("sum", "out");
    assert_eq!(kinds(&flow, &engine), vec![ProblemKind::IncompatibleType]);
}

#[tokio::test]
async fn the_engine_refuses_to_start_an_invalid_flow() {
    let engine = flow_tests::engine().await;
    let flow = Flow::new("bad").with_node("x", "filter", json!({"conditions": []}));
    let err = engine.start(flow, flow_engine::RunOptions::default()).await.expect_err("invalid");
    assert!(err.to_string().contains("required input `in` is not connected"), "{err}");
}

/// One broken expression, one broken script, one broken template and one missing connection:
/// four problems at once, each naming its node (and the param, with the position for code).
fn four_broken_nodes() -> Flow {
    Flow::new("four broken")
        .with_node("src", "generate_rows", json!({"count": 5, "fields": {"age": {"value": 30}}}))
        .with_node("expr", "filter", json!({"mode": "expression", "expression": "age >>> (("}))
        .with_node("script", "code", json!({"script": "let x = ; record"}))
        .with_node(
            "tmpl",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "age", "to": "{{ vars.target "}]}),
        )
        .with_node("users", "postgres_query", json!({"connection": "nowhere", "query": "SELECT 1"}))
        .with_node("out", "collect", json!({}))
        .with_edge("src", "expr")
        .with_edge("expr", "script")
        .with_edge("script", "tmpl")
        .with_edge("tmpl", "out")
}

#[tokio::test]
async fn expressions_scripts_templates_and_connections_are_checked_before_a_run() {
    let engine = flow_tests::engine().await;
    let flow = four_broken_nodes();
    let report = engine.validate(&flow);
    let found: Vec<(ProblemKind, Option<&str>, Option<&str>)> =
        report.problems.iter().map(|p| (p.kind, p.node.as_deref(), p.field.as_deref())).collect();
    assert_eq!(
        found,
        [
            (ProblemKind::UnknownConnection, Some("users"), Some("/connection")),
            (ProblemKind::InvalidExpression, Some("expr"), Some("/expression")),
            (ProblemKind::InvalidExpression, Some("script"), Some("/script")),
            (ProblemKind::InvalidTemplate, Some("tmpl"), Some("/operations/0/to")),
        ],
        "{:#?}",
        report.problems
    );
    let message = |node: &str| {
        report
            .problems
            .iter()
            .find(|p| p.node.as_deref() == Some(node))
            .map(|p| p.message.clone())
            .unwrap_or_default()
    };
    assert!(
        message("expr").contains("params.expression") && message("expr").contains("position"),
        "{}",
        message("expr")
    );
    assert!(
        message("script").contains("params.script") && message("script").contains("line 1"),
        "{}",
        message("script")
    );
    assert!(message("tmpl").contains("template"), "{}", message("tmpl"));
    let missing =
        report.problems.iter().find(|p| p.kind == ProblemKind::UnknownConnection).expect("reported");
    assert_eq!(
        missing.suggestions,
        [Suggestion::CreateConnection {
            name: "nowhere".into(),
            connection_kind: flow_engine::ConnectionKind::Postgres
        }]
    );
    // A run refuses the same flow with the same problems, before any node starts.
    let refused = engine.start(flow, Default::default()).await.expect_err("invalid");
    let flow_engine::EngineError::Invalid { report: at_start, .. } = refused else { panic!("{refused}") };
    assert_eq!(at_start.problems.len(), 4, "{:#?}", at_start.problems);
}

#[tokio::test]
async fn bad_filters_and_undefined_variables_are_template_problems() {
    let engine = flow_tests::engine().await;
    let flow = Flow::new("templates")
        .with_node("src", "generate_rows", json!({"count": "{{ vars.rows | no_such_filter }}", "fields": {}}))
        .with_node("lim", "limit", json!({"count": "{{ vars.undeclared }}"}))
        .with_node("ok", "limit", json!({"count": "{{ vars.rows }}"}))
        .with_edge("src", "lim")
        .with_edge("lim", "ok");
    let mut flow = flow;
    flow.variables.insert("rows".into(), json!(3));
    let report = engine.validate(&flow);
    let templates: Vec<&str> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::InvalidTemplate)
        .filter_map(|p| p.node.as_deref())
        .collect();
    assert_eq!(templates, ["src", "lim"], "{:#?}", report.problems);
    assert!(report.problems.iter().all(|p| p.node.as_deref() != Some("ok")), "{:#?}", report.problems);
    // A run variable defines what the flow does not declare.
    let vars = [("undeclared".to_owned(), json!(1))].into_iter().collect();
    let with_var = engine.validate_with_vars(&flow, &vars);
    assert!(with_var.problems.iter().all(|p| p.node.as_deref() != Some("lim")), "{:#?}", with_var.problems);
}

#[tokio::test]
async fn an_unreachable_database_is_reported_on_its_nodes_with_the_fix() {
    let engine = flow_tests::engine().await;
    let closed = flow_engine::Connection {
        name: "warehouse".into(),
        kind: flow_engine::ConnectionKind::Postgres,
        url: "postgres://app:secret@127.0.0.1:1/warehouse".into(),
        options: Default::default(),
    };
    engine.save_connection(closed).await.expect("saved");
    let flow = Flow::new("unreachable")
        .with_node("orders", "postgres_query", json!({"connection": "warehouse", "query": "SELECT 1 AS n"}))
        .with_node("out", "collect", json!({}))
        .with_edge("orders", "out");
    assert!(engine.validate(&flow).is_valid(), "nothing is contacted by validation");
    let problems = engine.check_connections(&flow).await;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(
        (p.kind, p.node.as_deref(), p.field.as_deref()),
        (ProblemKind::ConnectionUnreachable, Some("orders"), Some("/connection"))
    );
    assert!(p.message.contains("`warehouse`") && p.message.contains("127.0.0.1:1"), "{}", p.message);
    assert!(!p.message.contains("secret"), "the password leaked: {}", p.message);
    assert_eq!(p.suggestions, [Suggestion::EditConnection { name: "warehouse".into() }]);
}
