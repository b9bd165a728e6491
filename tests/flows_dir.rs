//! Every example in `flows/` loads, validates (following its sub-flows, in `flows/parts/`), saves
//! back byte for byte, and runs to success.

use std::path::PathBuf;

use flow_engine::{Connection, ConnectionKind, ExecutionState, FlowOrigin, RunOptions, load_flow};
use flow_model::to_canonical_json;

/// The examples, and the sub-flows they run (`flows/parts/`, which run on their own too).
fn flow_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let mut files: Vec<PathBuf> = [dir.clone(), dir.join("parts")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the example flows in {}", dir.display());
    files
}

#[tokio::test]
async fn every_example_flow_validates() {
    let engine = flow_tests::engine().await;
    // The connections the examples name, as the desktop app creates them on its first start.
    for (name, kind, url) in [
        ("postgres", ConnectionKind::Postgres, "postgres://postgres@127.0.0.1:5432/test"),
        ("mongodb", ConnectionKind::Mongodb, "mongodb://127.0.0.1:27018/sample?directConnection=true"),
    ] {
        let connection = Connection { name: name.into(), kind, url: url.into(), options: Default::default() };
        engine.save_connection(connection).await.expect("saved");
    }
    for file in flow_files() {
        let flow = load_flow(&file).unwrap_or_else(|e| panic!("{e}"));
        let report = engine.validate_at(&flow, &Default::default(), &FlowOrigin::File(file.clone())).await;
        assert!(report.is_valid(), "{}: {:#?}", file.display(), report.problems);
    }
}

#[test]
fn every_example_flow_saves_back_byte_identical() {
    for file in flow_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        let flow = load_flow(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(to_canonical_json(&flow), text, "{} is not in canonical form", file.display());
    }
}

/// Flows that need a database connection run in `cases.rs`, with their sample data.
fn needs_connection(flow: &flow_engine::Flow) -> bool {
    flow.nodes.iter().any(|n| n.params.contains_key("connection"))
}

#[tokio::test]
async fn every_example_flow_without_connections_runs_to_success() {
    let engine = flow_tests::engine().await;
    for file in flow_files() {
        let flow = load_flow(&file).unwrap_or_else(|e| panic!("{e}"));
        if needs_connection(&flow) {
            continue;
        }
        let options = RunOptions { origin: FlowOrigin::File(file.clone()), ..RunOptions::default() };
        let report = engine.run(flow, options).await.expect("starts");
        assert_eq!(report.state, ExecutionState::Succeeded, "{}: {:?}", file.display(), report.error);
    }
}
