//! Trace export: `flow run` with OTEL_EXPORTER_OTLP_ENDPOINT sends its spans over OTLP/HTTP to
//! a receiver on loopback started by the test, which decodes them as a collector would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    received.lock().expect("lock").push(request);
    ""
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_exports_its_execution_and_node_spans_and_the_sub_flow_joins_the_parent_trace() {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows/subflow-normalize-users.json");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_flow"));
    command
        .args(["run", "--json"])
        .arg(&example)
        .env("FLOW_HISTORY_DB", dir.path().join("h.db"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env_remove("OTEL_SERVICE_NAME");
    // The receiver runs on this runtime meanwhile.
    let out =
        tokio::task::spawn_blocking(move || command.output()).await.expect("joined").expect("flow runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let requests = received.lock().expect("lock").clone();
    let mut spans = Vec::new();
    for request in &requests {
        for resource in &request.resource_spans {
            let service = resource.resource.as_ref().and_then(|r| {
                r.attributes.iter().find(|a| a.key == "service.name").and_then(|a| a.value.clone())
            });
            assert_eq!(service.and_then(|v| v.value), Some(Any::StringValue("flow".into())));
            spans.extend(resource.scope_spans.iter().flat_map(|s| s.spans.iter().cloned()));
        }
    }
    let executions: Vec<&Span> = spans.iter().filter(|s| s.name == "execution").collect();
    assert_eq!(
        executions.len(),
        2,
        "the run and its sub-flow: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let root = executions
        .iter()
        .find(|s| attribute(s, "parent_execution_id").is_none())
        .expect("the parent's execution span");
    let child = executions.iter().find(|s| s.span_id != root.span_id).expect("the child's execution span");
    let root_id = attribute(root, "execution_id").expect("execution_id");
    let child_id = attribute(child, "execution_id").expect("execution_id");
    assert_eq!(attribute(root, "flow").as_deref(), Some("Sub-flow: normalize users"));
    assert_eq!(attribute(child, "parent_execution_id"), Some(root_id.clone()));
    assert_eq!(attribute(child, "parent_node").as_deref(), Some("normalize"));
    let correlation = attribute(root, "correlation_id").expect("correlation_id");
    assert_eq!(attribute(child, "correlation_id"), Some(correlation.clone()));

    // One trace: every span of the run, the child's included, descends from the root.
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    for span in spans.iter().filter(|s| s.name == "execution" || s.name == "node") {
        assert_eq!(span.trace_id, root.trace_id, "{} in another trace", span.name);
        let mut at = span;
        while at.span_id != root.span_id {
            at = by_id
                .get(at.parent_span_id.as_slice())
                .unwrap_or_else(|| panic!("{} lost its parent", span.name));
        }
    }
    let nodes: Vec<(String, String)> = spans
        .iter()
        .filter(|s| s.name == "node")
        .map(|s| {
            (attribute(s, "execution_id").unwrap_or_default(), attribute(s, "node_id").unwrap_or_default())
        })
        .collect();
    for (execution, node) in [
        (&root_id, "users"),
        (&root_id, "normalize"),
        (&root_id, "out"),
        (&child_id, "in"),
        (&child_id, "keep"),
        (&child_id, "rename"),
        (&child_id, "out"),
    ] {
        assert!(
            nodes.contains(&(execution.clone(), node.to_owned())),
            "node {node} of {execution}: {nodes:?}"
        );
    }
    assert!(
        spans
            .iter()
            .filter(|s| s.name == "node")
            .all(|s| attribute(s, "correlation_id") == Some(correlation.clone()))
    );
}
