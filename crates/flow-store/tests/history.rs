//! What only the SQLite backend does: files and their directories, reopening, several handles on
//! one file, private in-memory databases, nanosecond times, errors naming the file. Behaviour
//! both backends share is in `conformance.rs`.

mod common;

use chrono::DateTime;
use common::{failed_report, new_execution, start, succeeded_report};
use flow_runtime::ExecutionState;
use flow_store::{ListQuery, NewExecution, Store, StoreError};
use uuid::Uuid;

#[tokio::test]
async fn in_memory_database_returns_exactly_what_was_recorded() {
    let store = Store::in_memory().await.expect("in_memory");
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    start(&store, &report, ExecutionState::Running).await;
    store.record_finished(&report, None).await.expect("record_finished");
    let detail = store.get(report.id).await.expect("get").expect("recorded");
    assert_eq!(detail.nodes, report.nodes);
    assert_eq!(detail.summary.finished_at, Some(report.finished_at));
}

#[tokio::test]
async fn in_memory_databases_are_private() {
    let a = Store::in_memory().await.expect("in_memory");
    let b = Store::in_memory().await.expect("in_memory");
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    a.record_finished(&report, None).await.expect("record_finished");
    assert!(a.get(report.id).await.expect("get").is_some());
    assert!(b.get(report.id).await.expect("get").is_none());
}

#[tokio::test]
async fn times_keep_their_nanoseconds() {
    let store = Store::in_memory().await.expect("in_memory");
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    let started_at = DateTime::from_timestamp(1_750_000_000, 123_456_789).expect("valid time");
    store
        .record_started(&NewExecution { started_at, ..new_execution(&report, ExecutionState::Queued) })
        .await
        .expect("record_started");
    let summary = store.get(report.id).await.expect("get").expect("recorded").summary;
    assert_eq!(summary.started_at, started_at);
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.db");
    let report = failed_report(Uuid::now_v7(), "orders", 0);
    {
        let store = Store::open(&path).await.expect("first open");
        start(&store, &report, ExecutionState::Running).await;
        store.record_finished(&report, None).await.expect("record_finished");
    }
    let again = Store::open(&path).await.expect("reopen");
    let while_open = Store::open(&path).await.expect("open while another is open");
    let detail = again.get(report.id).await.expect("get").expect("kept");
    assert_eq!(detail.nodes, report.nodes);

    // Both handles see each other's writes.
    let other = succeeded_report(Uuid::now_v7(), "orders", 9, 4);
    while_open.record_finished(&other, None).await.expect("record_finished");
    let listed = again.list(&ListQuery::default()).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [other.id, report.id]);
}

#[tokio::test]
async fn opening_a_path_in_a_missing_directory_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not").join("yet").join("history.db");
    let store = Store::open(&path).await.expect("open");
    assert!(path.is_file());
    let report = succeeded_report(Uuid::now_v7(), "f", 0, 1);
    store.record_finished(&report, None).await.expect("record_finished");
    assert_eq!(store.list(&ListQuery::default()).await.expect("list").len(), 1);
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

    let path = dir.path().join("h.db");
    let store = Store::open(&path).await.expect("open");
    let missing = store
        .record_state(Uuid::now_v7(), ExecutionState::Running, None)
        .await
        .expect_err("no such execution");
    assert!(
        missing.to_string().starts_with(&format!("database {}: no execution ", path.display())),
        "{missing}"
    );
    let mut report = failed_report(Uuid::now_v7(), "f", 0);
    report.nodes[0].counters.errors = u64::MAX;
    let unstorable = store.record_finished(&report, None).await.expect_err("too large");
    assert!(unstorable.to_string().starts_with(&format!("database {}: ", path.display())), "{unstorable}");
}
