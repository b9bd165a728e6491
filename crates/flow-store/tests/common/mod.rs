//! What the store's test binaries share: execution reports to record, and a PostgreSQL store in a
//! schema of its own. Each binary uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use flow_model::{Record, Value};
use flow_runtime::{
    Counters, ErrorKind, ExecutionReport, ExecutionState, NodeReport, NodeState, SinkOutcome,
};
use flow_store::{NewExecution, Store};
use sqlx::Connection;
use uuid::Uuid;

/// A fixed instant with a sub-millisecond part, which must survive storage (microseconds:
/// PostgreSQL's precision).
pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 123_456_000).expect("valid time")
}

pub(crate) fn record(i: i64) -> Record {
    let mut nested = Record::new();
    nested.insert("tags", Value::Array(vec!["a".into(), Value::Null, Value::Bool(true)]));
    // Not in alphabetical order: the stored record keeps its field order.
    Record::from([
        ("id", Value::Int(i)),
        ("name", format!("row {i}").into()),
        ("score", Value::Float(i as f64 + 0.5)),
        ("missing", Value::Null),
        ("meta", Value::Object(nested)),
    ])
}

pub(crate) fn node(id: &str, node_type: &str, state: NodeState, start: i64) -> NodeReport {
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

/// A failed execution with a node of every interesting shape; 1.5 s long.
pub(crate) fn failed_report(id: Uuid, flow: &str, start: i64) -> ExecutionReport {
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
        parent_id: None,
        parent_node: None,
        children: Vec::new(),
    }
}

/// A succeeded execution of one node; 2 s long.
pub(crate) fn succeeded_report(id: Uuid, flow: &str, start: i64, records_out: u64) -> ExecutionReport {
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
        parent_id: None,
        parent_node: None,
        children: Vec::new(),
    }
}

/// The report's execution as `record_started` takes it.
pub(crate) fn new_execution(report: &ExecutionReport, state: ExecutionState) -> NewExecution {
    NewExecution {
        id: report.id,
        correlation_id: report.correlation_id.clone(),
        flow: report.flow.clone(),
        state,
        started_at: report.started_at,
        owner: None,
        flow_id: None,
        parent_id: report.parent_id,
        fence: None,
    }
}

pub(crate) async fn start(store: &Store, report: &ExecutionReport, state: ExecutionState) {
    store.record_started(&new_execution(report, state)).await.expect("record_started");
}

/// The server the tests use: POSTGRESQL_URL, or the local one.
pub(crate) fn postgres_url() -> String {
    std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with every connection's search_path set to `schema`.
pub(crate) fn url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A schema of its own in the test database, for one test.
pub(crate) struct TestSchema {
    admin: sqlx::PgConnection,
    name: String,
    /// Connects with the schema as search_path.
    pub(crate) url: String,
}

impl TestSchema {
    pub(crate) async fn create() -> TestSchema {
        let url = postgres_url();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut admin).await.expect("create schema");
        TestSchema { admin, url: url_in_schema(&url, &name), name }
    }

    pub(crate) async fn remove(mut self) {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut self.admin)
            .await
            .expect("drop schema");
        self.admin.close().await.expect("close");
    }
}

/// Runs `test` with a store in a fresh schema (and its URL), and drops the schema afterwards,
/// also when the test panics (the panic is then resumed).
pub(crate) async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = TestSchema::create().await;
    let store = Store::connect_postgres(&schema.url).await.expect("connect_postgres");
    let outcome = tokio::spawn(test(store, schema.url.clone())).await;
    schema.remove().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
