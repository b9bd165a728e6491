//! The history store against real SQLite databases (files in a temporary directory and in
//! memory): what is written is read back exactly, listing orders and filters, state changes and
//! crash recovery, reopening and directory creation.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use flow_model::{Record, Value};
use flow_runtime::{
    Counters, ErrorKind, ExecutionReport, ExecutionState, NodeReport, NodeState, SinkOutcome,
};
use flow_store::{ExecutionDetail, ExecutionSummary, ListQuery, Store, StoreError};
use uuid::Uuid;

/// A fixed instant with a sub-millisecond part, which must survive storage.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 123_456_789).expect("valid time")
}

fn record(i: i64) -> Record {
    let mut nested = Record::new();
    nested.insert("tags", Value::Array(vec!["a".into(), Value::Null, Value::Bool(true)]));
    Record::from([
        ("id", Value::Int(i)),
        ("name", format!("row {i}").into()),
        ("score", Value::Float(i as f64 + 0.5)),
        ("missing", Value::Null),
        ("meta", Value::Object(nested)),
    ])
}

fn node(id: &str, node_type: &str, state: NodeState, start: i64) -> NodeReport {
    NodeReport {
        node_id: id.to_owned(),
        node_type: node_type.to_owned(),
        state,
        attempts: 1,
        started_at: Some(at(start)),
        finished_at: Some(at(start) + Duration::milliseconds(250)),
        counters: Counters::default(),
        error: None,
        error_kind: None,
        sample: Vec::new(),
        sink: None,
    }
}

/// A failed execution with a node of every interesting shape.
fn failed_report(id: Uuid, flow: &str, start: i64) -> ExecutionReport {
    let source = NodeReport {
        counters: Counters { records_in: 0, records_out: 3, errors: 0 },
        sample: (0..3).map(record).collect(),
        ..node("src", "generate", NodeState::Succeeded, start)
    };
    let transform = NodeReport {
        attempts: 3,
        counters: Counters { records_in: 3, records_out: 2, errors: 1 },
        error: Some("upstream busy after 3 attempts".to_owned()),
        error_kind: Some(ErrorKind::Transient),
        sample: vec![record(7)],
        ..node("map", "http_enrich", NodeState::Failed, start)
    };
    let sink = NodeReport {
        counters: Counters { records_in: 2, records_out: 2, errors: 0 },
        sink: Some(SinkOutcome::RolledBack),
        ..node("out", "write_csv", NodeState::Cancelled, start)
    };
    let skipped = NodeReport {
        started_at: None,
        finished_at: None,
        error_kind: Some(ErrorKind::Cancelled),
        ..node("never", "filter", NodeState::Skipped, start)
    };
    ExecutionReport {
        id,
        correlation_id: format!("corr-{id}"),
        flow: flow.to_owned(),
        state: ExecutionState::Failed,
        error: Some("node map failed: upstream busy".to_owned()),
        started_at: at(start),
        finished_at: at(start) + Duration::milliseconds(1_500),
        nodes: vec![source, transform, sink, skipped],
        results: BTreeMap::new(),
    }
}

fn succeeded_report(id: Uuid, flow: &str, start: i64, records_out: u64) -> ExecutionReport {
    let only = NodeReport {
        counters: Counters { records_in: records_out, records_out, errors: 0 },
        sink: Some(SinkOutcome::Committed),
        ..node("out", "collect", NodeState::Succeeded, start)
    };
    ExecutionReport {
        id,
        correlation_id: format!("corr-{id}"),
        flow: flow.to_owned(),
        state: ExecutionState::Succeeded,
        error: None,
        started_at: at(start),
        finished_at: at(start) + Duration::seconds(2),
        nodes: vec![only],
        results: BTreeMap::new(),
    }
}

async fn start(history: &Store, report: &ExecutionReport, state: ExecutionState) {
    history
        .record_started(report.id, &report.correlation_id, &report.flow, state, report.started_at)
        .await
        .expect("record_started");
}

async fn state_of(history: &Store, id: Uuid) -> ExecutionState {
    history.get(id).await.expect("get").expect("execution exists").summary.state
}

/// record_started, record_finished, then get returns exactly what the report said.
async fn check_round_trip(history: &Store) {
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    start(history, &report, ExecutionState::Running).await;

    let running = history.get(report.id).await.expect("get").expect("started execution");
    assert_eq!(running.summary.state, ExecutionState::Running);
    assert_eq!(running.summary.finished_at, None);
    assert_eq!(running.summary.duration_ms, None);
    assert_eq!(running.summary.records_out, 0);
    assert!(running.nodes.is_empty());

    history.record_finished(&report).await.expect("record_finished");
    let detail = history.get(report.id).await.expect("get").expect("finished execution");
    let expected = ExecutionDetail {
        summary: ExecutionSummary {
            id: report.id,
            correlation_id: report.correlation_id.clone(),
            flow: "orders".to_owned(),
            state: ExecutionState::Failed,
            error: report.error.clone(),
            started_at: report.started_at,
            finished_at: Some(report.finished_at),
            duration_ms: Some(1_500),
            records_out: 3 + 2 + 2,
        },
        nodes: report.nodes.clone(),
    };
    assert_eq!(detail, expected);

    assert!(history.get(Uuid::now_v7()).await.expect("get").is_none());
}

#[tokio::test]
async fn file_database_returns_exactly_what_was_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let history = Store::open(&dir.path().join("history.db")).await.expect("open");
    check_round_trip(&history).await;
}

#[tokio::test]
async fn in_memory_database_returns_exactly_what_was_recorded() {
    let history = Store::in_memory().await.expect("in_memory");
    check_round_trip(&history).await;
}

#[tokio::test]
async fn in_memory_databases_are_private() {
    let a = Store::in_memory().await.expect("in_memory");
    let b = Store::in_memory().await.expect("in_memory");
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    a.record_finished(&report).await.expect("record_finished");
    assert!(a.get(report.id).await.expect("get").is_some());
    assert!(b.get(report.id).await.expect("get").is_none());
}

#[tokio::test]
async fn record_finished_without_start_creates_the_execution_and_recording_again_replaces_nodes() {
    let history = Store::in_memory().await.expect("in_memory");
    let mut report = failed_report(Uuid::now_v7(), "orders", 0);
    history.record_finished(&report).await.expect("first record");
    report.nodes.truncate(1);
    report.nodes[0].sample.truncate(1);
    history.record_finished(&report).await.expect("second record");
    let detail = history.get(report.id).await.expect("get").expect("recorded");
    assert_eq!(detail.nodes, report.nodes);
    assert_eq!(detail.summary.records_out, 3);
}

#[tokio::test]
async fn record_finished_keeps_the_start_time_recorded_when_queued() {
    let history = Store::in_memory().await.expect("in_memory");
    let report = succeeded_report(Uuid::now_v7(), "f", 10, 5);
    history
        .record_started(report.id, &report.correlation_id, "f", ExecutionState::Queued, at(8))
        .await
        .expect("record_started");
    history.record_finished(&report).await.expect("record_finished");
    let summary = history.get(report.id).await.expect("get").expect("recorded").summary;
    assert_eq!(summary.started_at, at(8));
    assert_eq!(summary.duration_ms, Some(4_000));
}

#[tokio::test]
async fn list_is_newest_first_and_filters_by_flow_and_state_with_limit_and_offset() {
    let history = Store::in_memory().await.expect("in_memory");
    // Inserted out of time order so the order comes from started_at, not insertion.
    let mut ids = BTreeMap::new();
    for (start, flow, finished) in
        [(3, "a", true), (1, "b", true), (5, "a", false), (2, "a", true), (4, "b", false)]
    {
        let id = Uuid::now_v7();
        ids.insert(start, id);
        let report = succeeded_report(id, flow, start, start as u64 * 10);
        start_and_maybe_finish(&history, &report, finished).await;
    }
    let ids_of = |list: Vec<ExecutionSummary>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();

    let all = history.list(&ListQuery::default()).await.expect("list");
    assert_eq!(ids_of(all.clone()), [5, 4, 3, 2, 1].map(|s| ids[&s]));
    assert_eq!(all[0].records_out, 0, "running execution has no output yet");
    assert_eq!(all[2].records_out, 30);
    assert_eq!(all[2].duration_ms, Some(2_000));

    let flow_a = ListQuery { flow: Some("a".to_owned()), ..ListQuery::default() };
    assert_eq!(ids_of(history.list(&flow_a).await.expect("list")), [5, 3, 2].map(|s| ids[&s]));

    let running = ListQuery { state: Some(ExecutionState::Running), ..ListQuery::default() };
    assert_eq!(ids_of(history.list(&running).await.expect("list")), [5, 4].map(|s| ids[&s]));

    let both = ListQuery {
        flow: Some("b".to_owned()),
        state: Some(ExecutionState::Succeeded),
        ..ListQuery::default()
    };
    assert_eq!(ids_of(history.list(&both).await.expect("list")), [ids[&1]]);

    let page = ListQuery { limit: Some(2), offset: Some(1), ..ListQuery::default() };
    assert_eq!(ids_of(history.list(&page).await.expect("list")), [4, 3].map(|s| ids[&s]));

    let past_end = ListQuery { limit: Some(2), offset: Some(5), ..ListQuery::default() };
    assert!(history.list(&past_end).await.expect("list").is_empty());

    let none = ListQuery { flow: Some("zzz".to_owned()), ..ListQuery::default() };
    assert!(history.list(&none).await.expect("list").is_empty());
}

async fn start_and_maybe_finish(history: &Store, report: &ExecutionReport, finish: bool) {
    start(history, report, ExecutionState::Running).await;
    if finish {
        history.record_finished(report).await.expect("record_finished");
    }
}

#[tokio::test]
async fn list_limit_defaults_to_50_and_is_capped_at_1000() {
    let history = Store::in_memory().await.expect("in_memory");
    for i in 0..1005 {
        let report = succeeded_report(Uuid::now_v7(), "f", i, 0);
        start(&history, &report, ExecutionState::Queued).await;
    }
    assert_eq!(history.list(&ListQuery::default()).await.expect("list").len(), 50);
    let huge = ListQuery { limit: Some(u32::MAX), ..ListQuery::default() };
    assert_eq!(history.list(&huge).await.expect("list").len(), 1000);
}

#[tokio::test]
async fn record_state_changes_the_state() {
    let history = Store::in_memory().await.expect("in_memory");
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    start(&history, &report, ExecutionState::Queued).await;
    for state in [ExecutionState::Running, ExecutionState::Paused, ExecutionState::Running] {
        history.record_state(report.id, state).await.expect("record_state");
        assert_eq!(state_of(&history, report.id).await, state);
    }
    let missing = Uuid::now_v7();
    let err = history.record_state(missing, ExecutionState::Running).await.expect_err("unknown");
    assert!(matches!(err, StoreError::NotFound { id, .. } if id == missing), "{err}");
}

#[tokio::test]
async fn mark_interrupted_fails_only_unfinished_executions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let history = Store::open(&dir.path().join("h.db")).await.expect("open");
    let mut unfinished = Vec::new();
    for state in [ExecutionState::Queued, ExecutionState::Running, ExecutionState::Paused] {
        let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
        start(&history, &report, state).await;
        unfinished.push(report.id);
    }
    let succeeded = succeeded_report(Uuid::now_v7(), "f", 1, 1);
    start_and_maybe_finish(&history, &succeeded, true).await;
    let failed = failed_report(Uuid::now_v7(), "f", 2);
    start_and_maybe_finish(&history, &failed, true).await;
    let cancelled = succeeded_report(Uuid::now_v7(), "f", 3, 0);
    start(&history, &cancelled, ExecutionState::Running).await;
    history.record_state(cancelled.id, ExecutionState::Cancelled).await.expect("record_state");

    assert_eq!(history.mark_interrupted().await.expect("mark_interrupted"), 3);
    for id in unfinished {
        let summary = history.get(id).await.expect("get").expect("exists").summary;
        assert_eq!(summary.state, ExecutionState::Failed);
        assert_eq!(
            summary.error.as_deref(),
            Some("interrupted: the engine stopped while this execution ran")
        );
    }
    assert_eq!(state_of(&history, succeeded.id).await, ExecutionState::Succeeded);
    let failed_detail = history.get(failed.id).await.expect("get").expect("exists");
    assert_eq!(failed_detail.summary.error, failed.error, "finished errors are kept");
    assert_eq!(state_of(&history, cancelled.id).await, ExecutionState::Cancelled);

    assert_eq!(history.mark_interrupted().await.expect("mark_interrupted"), 0);
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.db");
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    {
        let history = Store::open(&path).await.expect("first open");
        start_and_maybe_finish(&history, &report, true).await;
    }
    let again = Store::open(&path).await.expect("reopen");
    let while_open = Store::open(&path).await.expect("open while another is open");
    let detail = again.get(report.id).await.expect("get").expect("kept");
    assert_eq!(detail.nodes, report.nodes);

    // Both handles see each other's writes.
    let other = succeeded_report(Uuid::now_v7(), "orders", 9, 4);
    while_open.record_finished(&other).await.expect("record_finished");
    let listed = again.list(&ListQuery::default()).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [other.id, report.id]);
}

#[tokio::test]
async fn opening_a_path_in_a_missing_directory_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not").join("yet").join("history.db");
    let history = Store::open(&path).await.expect("open");
    assert!(path.is_file());
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    start_and_maybe_finish(&history, &report, true).await;
    assert_eq!(history.list(&ListQuery::default()).await.expect("list").len(), 1);
    assert!(path.with_extension("db-wal").is_file(), "the database is in WAL mode");
}

#[tokio::test]
async fn errors_name_the_database_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").expect("write");
    let path = blocker.join("history.db");
    let err = Store::open(&path).await.expect_err("parent is a file");
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("database {}: ", path.display())), "{message}");

    let history = Store::open(&dir.path().join("h.db")).await.expect("open");
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    start(&history, &report, ExecutionState::Queued).await;
    let again = history
        .record_started(report.id, "c", "f", ExecutionState::Queued, at(0))
        .await
        .expect_err("duplicate id");
    assert!(again.to_string().contains("h.db"), "{again}");
}

#[tokio::test]
async fn counters_beyond_sqlite_integers_are_refused_atomically() {
    let history = Store::in_memory().await.expect("in_memory");
    let mut report = failed_report(Uuid::now_v7(), "f", 0);
    start(&history, &report, ExecutionState::Running).await;
    report.nodes[2].counters.records_in = u64::MAX;
    let err = history.record_finished(&report).await.expect_err("too large");
    assert!(matches!(err, StoreError::Unstorable { .. }), "{err:?}");
    // The transaction rolled back: nothing of the report was written.
    let detail = history.get(report.id).await.expect("get").expect("started");
    assert_eq!(detail.summary.state, ExecutionState::Running);
    assert!(detail.nodes.is_empty());
}

#[tokio::test]
async fn detail_serializes_flat() {
    let history = Store::in_memory().await.expect("in_memory");
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    history.record_finished(&report).await.expect("record_finished");
    let detail = history.get(report.id).await.expect("get").expect("recorded");
    // Through text, not serde_json::Value, whose maps would sort the records' fields.
    let text = serde_json::to_string(&detail).expect("serialize");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(json["state"], "failed");
    assert_eq!(json["flow"], "orders");
    assert_eq!(json["nodes"][1]["error_kind"], "transient");
    let back: ExecutionDetail = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, detail);
}
