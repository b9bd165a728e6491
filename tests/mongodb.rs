//! End-to-end tests of the MongoDB connector against a real MongoDB-wire server (SecantusDB from
//! `scripts/start-mongodb`, or MONGODB_URL): SPEC case 2 (also into PostgreSQL, POSTGRESQL_URL)
//! and case 3's MongoDB branch with exact data, the find and aggregate sources, the insert and
//! update sinks with what a failed or cancelled execution undoes (compensation and transaction
//! modes), lost acknowledgements, slow writes and lost cursors (the server's `failCommand`
//! failpoint), cursor streaming, unreachable servers and the circuit breaker, and the connection
//! test. Each test works in its own database (random name) and drops it at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use flow_engine::{
    BreakerConfig, Connection, ConnectionKind, Engine, ErrorKind, EventKind, ExecutionReport, ExecutionState,
    Flow, NodeState, RunOptions, SinkOutcome,
};
use flow_tests::{engine, engine_with, results, users};
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use serde_json::json;

const DEFAULT_URL: &str = "mongodb://127.0.0.1:27018/?directConnection=true";

/// A closed port: nothing listens on port 1 of the loopback address.
const CLOSED_URL: &str = "mongodb://127.0.0.1:1/flowdb?directConnection=true";

fn server_url() -> String {
    std::env::var("MONGODB_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with `db` as its default database.
fn with_database(url: &str, db: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let query = url[end..].find('?').map_or("", |i| &url[end + i..]);
    format!("{}/{db}{query}", &url[..end])
}

/// One test's database on the server, and an engine with a `mongo` connection to it.
struct Mongo {
    client: Client,
    db: Database,
    url: String,
}

/// Connects, or fails the test saying how to start the server: these tests never pass silently.
async fn mongo() -> Mongo {
    let server = server_url();
    let mut options = ClientOptions::parse(&server).await.expect("MONGODB_URL parses");
    options.server_selection_timeout = Some(Duration::from_secs(3));
    let client = Client::with_options(options).expect("client");
    if let Err(e) = client.database("admin").run_command(doc! {"ping": 1}).await {
        panic!(
            "no MongoDB-compatible server answers at {server}: {e}\n\
             Start one with `scripts/start-mongodb` (SecantusDB on 127.0.0.1:27018) or set MONGODB_URL."
        );
    }
    let name = format!("flow_test_{}", ObjectId::new().to_hex());
    Mongo { url: with_database(&server, &name), db: client.database(&name), client }
}

impl Mongo {
    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    async fn engine(&self) -> Engine {
        let engine = engine().await;
        self.connect(&engine).await;
        engine
    }

    async fn connect(&self, engine: &Engine) {
        self.connect_as(engine, "mongo", &self.url).await;
    }

    async fn connect_as(&self, engine: &Engine, name: &str, url: &str) {
        let connection = Connection {
            name: name.into(),
            kind: ConnectionKind::Mongodb,
            url: url.into(),
            options: Default::default(),
        };
        engine.save_connection(connection).await.expect("connection saved");
    }

    /// A connection `flaky` whose client carries its own appName, and a failpoint that fails its
    /// next command of `data.failCommands` once: other tests' clients are not affected. Release
    /// the turn once the flow has run.
    async fn flaky(&self, engine: &Engine, mut data: Document) -> FailpointTurn {
        let turn = FailpointTurn::take(&self.client).await;
        let app = format!("flow-failpoint-{}", ObjectId::new().to_hex());
        let separator = if self.url.contains('?') { '&' } else { '?' };
        // retryWrites=false: the node's own retry must cope, not the driver's.
        let url = format!("{}{separator}retryWrites=false&appName={app}", self.url);
        self.connect_as(engine, "flaky", &url).await;
        data.insert("appName", app);
        let command = doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": data};
        if let Err(e) = self.client.database("admin").run_command(command).await {
            panic!(
                "the server refused configureFailPoint ({e}); restart it with scripts/start-mongodb, which enables test commands"
            );
        }
        turn
    }

    async fn seed(&self, coll: &str, docs: Vec<Document>) -> Vec<Document> {
        self.coll(coll).insert_many(&docs).await.expect("seed");
        self.docs(coll).await
    }

    /// Every document of a collection, in `_id` order.
    async fn docs(&self, coll: &str) -> Vec<Document> {
        let mut cursor = self.coll(coll).find(doc! {}).sort(doc! {"_id": 1}).await.expect("find");
        let mut docs = Vec::new();
        while cursor.advance().await.expect("next document") {
            docs.push(cursor.deserialize_current().expect("a document"));
        }
        docs
    }

    async fn count(&self, coll: &str) -> u64 {
        self.coll(coll).count_documents(doc! {}).await.expect("count")
    }

    async fn drop(self) {
        self.db.drop().await.expect("drop database");
    }
}

/// The server has one `failCommand` failpoint, so the tests that set it take turns, across test
/// processes too (nextest runs every test in its own): a lock document on the server, in a
/// database of its own that stays.
struct FailpointTurn {
    locks: Collection<Document>,
}

impl FailpointTurn {
    async fn take(client: &Client) -> FailpointTurn {
        let locks = client.database("flow_test_locks").collection::<Document>("locks");
        let started = Instant::now();
        loop {
            let now = DateTime::now();
            if locks.insert_one(doc! {"_id": "failCommand", "at": now}).await.is_ok() {
                return FailpointTurn { locks };
            }
            // A turn older than a minute belongs to a test that died holding it.
            let stale = DateTime::from_millis(now.timestamp_millis() - 60_000);
            let _ = locks.delete_one(doc! {"_id": "failCommand", "at": {"$lt": stale}}).await;
            assert!(started.elapsed() < Duration::from_secs(120), "waited 2 minutes for the failpoint");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn release(self) {
        let _ = self.locks.delete_one(doc! {"_id": "failCommand"}).await;
    }
}

fn sink(report: &ExecutionReport, node: &str) -> Option<SinkOutcome> {
    report.node(node).and_then(|n| n.sink)
}

/// Polls a collection's size while an execution runs; the highest size seen.
fn watch_count(m: &Mongo, coll: &str) -> (Arc<AtomicI64>, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let (max, stop) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicBool::new(false)));
    let (c, max2, stop2) = (m.coll(coll), Arc::clone(&max), Arc::clone(&stop));
    let handle = tokio::spawn(async move {
        while !stop2.load(Ordering::Relaxed) {
            if let Ok(n) = c.count_documents(doc! {}).await {
                max2.fetch_max(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    (max, stop, handle)
}

/// A node retried `attempts` times with tiny delays.
fn retries(flow: &mut Flow, node: &str, attempts: u32) {
    if let Some(n) = flow.nodes.iter_mut().find(|n| n.id == node) {
        n.settings.retry = Some(flow_model::RetrySettings {
            attempts: Some(attempts),
            base_delay_ms: Some(1),
            max_delay_ms: Some(2),
        });
    }
}

#[tokio::test]
async fn case2_find_documents_filter_age_over_25_gives_exact_records() {
    let m = mongo().await;
    m.seed(
        "documents",
        vec![
            doc! {"_id": 1, "name": "Ana", "age": 31, "email": "ana@example.com"},
            doc! {"_id": 2, "name": "Bo", "age": 25, "email": "bo@example.com"},
            doc! {"_id": 3, "name": "Cy", "age": 47, "tags": ["vip"], "address": {"city": "Lyon", "zip": "69001"}},
            doc! {"_id": 4, "name": "Di", "age": 19},
            doc! {"_id": 5, "name": "Ed", "age": 26.5, "joined": DateTime::from_millis(1_700_000_000_000)},
        ],
    )
    .await;
    // No `database` param: the connection URL names the database.
    let flow = Flow::new("case-2")
        .with_node("documents", "mongodb_find", json!({"connection": "mongo", "collection": "documents"}))
        .with_node("adults", "filter", json!({"conditions": [{"field": "age", "op": "gt", "value": 25}]}))
        .with_node("out", "collect", json!({}))
        .with_edge("documents", "adults")
        .with_edge("adults", "out");
    let report = m.engine().await.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        results(&report, "out"),
        json!([
            {"_id": 1, "name": "Ana", "age": 31, "email": "ana@example.com"},
            {"_id": 3, "name": "Cy", "age": 47, "tags": ["vip"], "address": {"city": "Lyon", "zip": "69001"}},
            {"_id": 5, "name": "Ed", "age": 26.5, "joined": "2023-11-14T22:13:20Z"},
        ])
    );
    let find = report.node("documents").expect("node");
    assert_eq!(find.counters.records_out, 5);
    m.drop().await;
}

/// The whole SPEC case 2: MongoDB documents -> Filter (age > 25) -> PostgreSQL insert.
#[tokio::test]
async fn case2_mongodb_to_postgresql_inserts_exact_rows() {
    let m = mongo().await;
    m.seed(
        "documents",
        vec![
            doc! {"_id": 1, "name": "Ana", "age": 31, "email": "ana@example.com"},
            doc! {"_id": 2, "name": "Bo", "age": 25, "email": "bo@example.com"},
            doc! {"_id": 3, "name": "Cy", "age": 47, "email": "cy@example.com"},
            doc! {"_id": 4, "name": "Di", "age": 19, "email": "di@example.com"},
        ],
    )
    .await;
    let pg_url = std::env::var("POSTGRESQL_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let pg = sqlx::PgPool::connect(&pg_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {pg_url} is needed for case 2: {e}"));
    let table = format!("processed_users_{}", ObjectId::new().to_hex());
    sqlx::query(&format!(
        "CREATE TABLE {table} (id integer PRIMARY KEY, name text, age integer, email text)"
    ))
    .execute(&pg)
    .await
    .expect("table");

    let engine = m.engine().await;
    let connection = Connection {
        name: "pg".into(),
        kind: ConnectionKind::Postgres,
        url: pg_url,
        options: Default::default(),
    };
    engine.save_connection(connection).await.expect("saved");
    let flow = Flow::new("case-2-full")
        .with_node("documents", "mongodb_find", json!({"connection": "mongo", "collection": "documents"}))
        .with_node("adults", "filter", json!({"conditions": [{"field": "age", "op": "gt", "value": 25}]}))
        .with_node(
            "ids",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "_id", "to": "id"}]}),
        )
        .with_node("processed", "postgres_insert", json!({"connection": "pg", "table": table}))
        .with_edge("documents", "adults")
        .with_edge("adults", "ids")
        .with_edge("ids", "processed");
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    let rows: Vec<(i32, String, i32, String)> =
        sqlx::query_as(&format!("SELECT id, name, age, email FROM {table} ORDER BY id"))
            .fetch_all(&pg)
            .await
            .expect("rows");
    sqlx::query(&format!("DROP TABLE {table}")).execute(&pg).await.expect("drop");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        rows,
        [
            (1, "Ana".to_owned(), 31, "ana@example.com".to_owned()),
            (3, "Cy".to_owned(), 47, "cy@example.com".to_owned()),
        ]
    );
    m.drop().await;
}

#[tokio::test]
async fn find_applies_extended_json_filter_projection_sort_and_limit() {
    let m = mongo().await;
    let ids: Vec<ObjectId> = (0..4).map(|_| ObjectId::new()).collect();
    let names = ["ana", "bo", "cy", "di"];
    m.seed(
        "people",
        ids.iter().zip(names).map(|(id, n)| doc! {"_id": id, "name": n, "secret": "x"}).collect(),
    )
    .await;
    let flow = Flow::new("find-options")
        .with_node(
            "find",
            "mongodb_find",
            json!({
                "connection": "mongo",
                "database": m.db.name(),
                "collection": "people",
                "filter": {"_id": {"$in": [{"$oid": ids[0].to_hex()}, {"$oid": ids[2].to_hex()}, {"$oid": ids[3].to_hex()}]}},
                "projection": {"name": 1},
                "sort": {"name": -1},
                "limit": 2
            }),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("find", "out");
    let report = m.engine().await.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        results(&report, "out"),
        json!([{"_id": ids[3].to_hex(), "name": "di"}, {"_id": ids[2].to_hex(), "name": "cy"}])
    );
    m.drop().await;
}

#[tokio::test]
async fn aggregate_pipeline_streams_its_output() {
    let m = mongo().await;
    m.seed(
        "orders",
        vec![
            doc! {"customer": "a", "total": 10},
            doc! {"customer": "a", "total": 5},
            doc! {"customer": "b", "total": 7},
            doc! {"customer": "c", "total": 1},
        ],
    )
    .await;
    let flow = Flow::new("aggregate")
        .with_node(
            "agg",
            "mongodb_aggregate",
            json!({
                "connection": "mongo",
                "collection": "orders",
                "pipeline": [
                    {"$match": {"total": {"$gte": 5}}},
                    {"$group": {"_id": "$customer", "sum": {"$sum": "$total"}, "n": {"$sum": 1}}},
                    {"$sort": {"_id": 1}}
                ],
                "batch_size": 1
            }),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("agg", "out");
    let report = m.engine().await.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(
        results(&report, "out"),
        json!([{"_id": "a", "sum": 15, "n": 2}, {"_id": "b", "sum": 7, "n": 1}])
    );
    m.drop().await;
}

/// SPEC case 3 with a generated source standing in for PostgreSQL: active users -> mapper ->
/// MongoDB; drafts -> mapper -> a collect sink (the PostgreSQL update branch).
#[tokio::test]
async fn case3_mongodb_branch_inserts_exact_documents() {
    let m = mongo().await;
    let rename = json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}, {"op": "drop", "field": "status"}]});
    let flow = Flow::new("case-3")
        .with_node("users", "generate_rows", users(9))
        .with_node(
            "active",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "active"}]}),
        )
        .with_node("map_active", "field_mapper", rename.clone())
        .with_node("to_mongo", "mongodb_insert", json!({"connection": "mongo", "collection": "active_users"}))
        .with_node(
            "draft",
            "filter",
            json!({"conditions": [{"field": "status", "op": "eq", "value": "draft"}]}),
        )
        .with_node("map_draft", "field_mapper", rename)
        .with_node("drafts", "collect", json!({}))
        .with_edge("users", "active")
        .with_edge("active", "map_active")
        .with_edge("map_active", "to_mongo")
        .with_edge("users", "draft")
        .with_edge("draft", "map_draft")
        .with_edge("map_draft", "drafts");
    let report = m.engine().await.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(sink(&report, "to_mongo"), Some(SinkOutcome::Committed));

    let docs = m.docs("active_users").await;
    assert!(docs.iter().all(|d| matches!(d.get("_id"), Some(Bson::ObjectId(_)))), "{docs:?}");
    assert!(
        docs.iter().all(|d| d.keys().collect::<Vec<_>>() == ["_id", "age", "id", "full_name"]),
        "{docs:?}"
    );
    let mut without_ids: Vec<Document> = docs
        .into_iter()
        .map(|mut d| {
            d.remove("_id");
            d
        })
        .collect();
    without_ids.sort_by_key(|d| d.get_i32("id").unwrap_or_default());
    assert_eq!(
        without_ids,
        [
            doc! {"age": 20, "id": 1, "full_name": "User 0"},
            doc! {"age": 50, "id": 4, "full_name": "User 3"},
            doc! {"age": 40, "id": 7, "full_name": "User 6"},
        ]
    );
    assert_eq!(
        results(&report, "drafts"),
        json!([{"age": 40, "id": 3, "full_name": "User 2"}, {"age": 30, "id": 6, "full_name": "User 5"}, {"age": 20, "id": 9, "full_name": "User 8"}])
    );
    m.drop().await;
}

#[tokio::test]
async fn node_failing_mid_stream_leaves_the_collections_exactly_as_before() {
    let m = mongo().await;
    let before = m
        .seed(
            "people",
            vec![doc! {"_id": ObjectId::new(), "name": "kept"}, doc! {"_id": -1, "name": "also kept"}],
        )
        .await;
    let by_id_before = m.seed("by_id", vec![doc! {"_id": 0, "name": "zero"}]).await;
    // Two sinks: one whose documents get generated `_id`s, one whose records carry their `_id`.
    let flow = Flow::new("fails-mid-stream")
        .with_node("users", "generate_rows", users(2000))
        .with_node("slow", "delay", json!({"ms": 30}))
        .with_node("breaks", "fail", json!({"after_records": 1200}))
        .with_node("generated_ids", "mongodb_insert", json!({"connection": "mongo", "collection": "people"}))
        .with_node(
            "own_ids",
            "field_mapper",
            json!({"operations": [{"op": "rename", "from": "id", "to": "_id"}]}),
        )
        .with_node("supplied_ids", "mongodb_insert", json!({"connection": "mongo", "collection": "by_id"}))
        .with_edge("users", "slow")
        .with_edge("slow", "breaks")
        .with_edge("breaks", "generated_ids")
        .with_edge("breaks", "own_ids")
        .with_edge("own_ids", "supplied_ids");
    let engine = m.engine().await;
    let (max, stop, watcher) = watch_count(&m, "people");
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    stop.store(true, Ordering::Relaxed);
    watcher.await.expect("watcher");

    assert_eq!(report.state, ExecutionState::Failed);
    assert_eq!(report.node("breaks").map(|n| n.state), Some(NodeState::Failed));
    assert!(max.load(Ordering::Relaxed) >= 2 + 100, "documents were inserted before the failure: {max:?}");
    for node in ["generated_ids", "supplied_ids"] {
        assert_eq!(sink(&report, node), Some(SinkOutcome::RolledBack), "{node}");
    }
    assert_eq!(m.docs("people").await, before);
    assert_eq!(m.docs("by_id").await, by_id_before);
    m.drop().await;
}

#[tokio::test]
async fn cancel_mid_load_leaves_the_collection_as_before() {
    let m = mongo().await;
    let before = m.seed("load", vec![doc! {"_id": "existing", "n": 1}]).await;
    let flow = Flow::new("cancelled-load")
        .with_node("users", "generate_rows", users(1_000_000))
        .with_node("slow", "delay", json!({"ms": 20}))
        .with_node("load", "mongodb_insert", json!({"connection": "mongo", "collection": "load"}))
        .with_edge("users", "slow")
        .with_edge("slow", "load");
    let engine = m.engine().await;
    let id = engine.start(flow, RunOptions::default()).await.expect("starts");
    let started = Instant::now();
    while m.count("load").await < 1 + 300 {
        assert!(started.elapsed() < Duration::from_secs(30), "the load did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    engine.cancel(id).expect("cancel");
    let report = engine.wait(id).await.expect("ends");
    assert!(asked.elapsed() < Duration::from_secs(5), "cancel took {:?}", asked.elapsed());
    assert_eq!(report.state, ExecutionState::Cancelled);
    assert_eq!(sink(&report, "load"), Some(SinkOutcome::RolledBack));
    assert_eq!(m.docs("load").await, before);
    m.drop().await;
}

#[tokio::test]
async fn insert_refuses_an_existing_id_and_keeps_the_collection() {
    let m = mongo().await;
    let before = m.seed("things", vec![doc! {"_id": 2, "v": "original"}]).await;
    let flow = Flow::new("dup")
        .with_node(
            "rows",
            "static_data",
            json!({"records": [{"_id": 1, "v": "a"}, {"_id": 2, "v": "b"}, {"_id": 3, "v": "c"}]}),
        )
        .with_node("save", "mongodb_insert", json!({"connection": "mongo", "collection": "things"}))
        .with_edge("rows", "save");
    let report = m.engine().await.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Failed);
    let save = report.node("save").expect("node");
    assert_eq!(save.error_kind, Some(ErrorKind::Permanent));
    let error = save.error.as_deref().unwrap_or_default();
    assert!(error.contains("_id 2 already exists") && error.contains(".things"), "{error}");
    assert_eq!(m.docs("things").await, before);
    m.drop().await;
}

fn update_flow(with_failure: bool, transaction: bool) -> Flow {
    let mut flow = Flow::new("update")
        .with_node(
            "changes",
            "static_data",
            json!({"records": [
                {"email": "a@x", "score": 10},
                {"email": "c@x", "name": "C2", "score": 30},
                {"email": "new@x", "name": "N", "score": 0}
            ]}),
        )
        .with_node(
            "update",
            "mongodb_update",
            json!({"connection": "mongo", "collection": "people", "key_fields": ["email"], "upsert": true, "transaction": transaction}),
        )
        .with_edge("changes", "update");
    if with_failure {
        // A branch that fails well after the updates were written.
        flow = flow
            .with_node("ticks", "generate_rows", users(600))
            .with_node("slow", "delay", json!({"ms": 200}))
            .with_node("breaks", "fail", json!({"after_records": 300}))
            .with_node("sink", "collect", json!({}))
            .with_edge("ticks", "slow")
            .with_edge("slow", "breaks")
            .with_edge("breaks", "sink");
    }
    flow
}

fn people() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "email": "a@x", "name": "A", "score": 1},
        doc! {"_id": 2, "email": "b@x", "name": "B", "score": 2},
        doc! {"_id": 3, "email": "c@x", "name": "C", "score": 3, "extra": true},
    ]
}

#[tokio::test]
async fn update_sets_fields_upserts_and_commits() {
    let m = mongo().await;
    m.seed("people", people()).await;
    let report = m.engine().await.run(update_flow(false, false), RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(sink(&report, "update"), Some(SinkOutcome::Committed));
    let mut docs = m.docs("people").await;
    let upserted = docs.pop().expect("the upserted document sorts last (ObjectId after numbers)");
    assert_eq!(
        docs,
        [
            doc! {"_id": 1, "email": "a@x", "name": "A", "score": 10},
            doc! {"_id": 2, "email": "b@x", "name": "B", "score": 2},
            doc! {"_id": 3, "email": "c@x", "name": "C2", "score": 30, "extra": true},
        ]
    );
    assert!(matches!(upserted.get("_id"), Some(Bson::ObjectId(_))), "{upserted:?}");
    assert_eq!((upserted.get_str("email"), upserted.get_str("name")), (Ok("new@x"), Ok("N")));
    assert_eq!(upserted.get_i32("score"), Ok(0));
    m.drop().await;
}

/// Runs a flow that fails later, watching until `changed` says the sink's writes are visible.
async fn run_failing_after_writes(
    m: &Mongo,
    flow: Flow,
    changed: impl Fn(&[Document]) -> bool,
) -> (Arc<ExecutionReport>, bool) {
    let engine = m.engine().await;
    let id = engine.start(flow, RunOptions::default()).await.expect("starts");
    let mut seen = false;
    let report = loop {
        tokio::select! {
            report = engine.wait(id) => break report.expect("ends"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                seen |= changed(&m.docs("people").await);
            }
        }
    };
    (report, seen)
}

#[tokio::test]
async fn update_and_upsert_are_undone_when_the_execution_fails() {
    let m = mongo().await;
    let before = m.seed("people", people()).await;
    let (report, seen) = run_failing_after_writes(&m, update_flow(true, false), |docs| {
        docs.len() == 4 && docs[0].get_i32("score") == Ok(10)
    })
    .await;
    assert_eq!(report.state, ExecutionState::Failed);
    assert!(seen, "the updates were visible before the failure");
    assert_eq!(sink(&report, "update"), Some(SinkOutcome::RolledBack));
    assert_eq!(m.docs("people").await, before, "pre-images restored, the upserted document deleted");
    m.drop().await;
}

#[tokio::test]
async fn transactional_update_and_insert_commit_together_or_not_at_all() {
    let m = mongo().await;
    let before = m.seed("people", people()).await;
    let with_insert = |flow: Flow| {
        flow.with_node(
            "rows",
            "static_data",
            json!({"records": [{"_id": 100, "email": "t1@x"}, {"_id": 101, "email": "t2@x"}]}),
        )
        .with_node(
            "insert",
            "mongodb_insert",
            json!({"connection": "mongo", "collection": "people", "transaction": true}),
        )
        .with_edge("rows", "insert")
    };

    // Failure: nothing of the transaction is ever visible, and nothing remains.
    let (report, seen) =
        run_failing_after_writes(&m, with_insert(update_flow(true, true)), |docs| docs != before.as_slice())
            .await;
    assert_eq!(report.state, ExecutionState::Failed);
    assert!(!seen, "uncommitted writes were visible to another client");
    for node in ["update", "insert"] {
        // Their writes were done (in the transaction) before the failure.
        assert_eq!(report.node(node).map(|n| n.state), Some(NodeState::Succeeded), "{node}");
    }
    assert_eq!(sink(&report, "update"), Some(SinkOutcome::RolledBack));
    assert_eq!(sink(&report, "insert"), Some(SinkOutcome::RolledBack));
    assert_eq!(m.docs("people").await, before);

    // Success: both sinks' writes land.
    let report = m
        .engine()
        .await
        .run(with_insert(update_flow(false, true)), RunOptions::default())
        .await
        .expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(sink(&report, "update"), Some(SinkOutcome::Committed));
    assert_eq!(sink(&report, "insert"), Some(SinkOutcome::Committed));
    let docs = m.docs("people").await;
    assert_eq!(docs.len(), 6, "{docs:?}");
    assert_eq!(docs[0], doc! {"_id": 1, "email": "a@x", "name": "A", "score": 10});
    assert_eq!(docs[3], doc! {"_id": 100, "email": "t1@x"});
    m.drop().await;
}

#[tokio::test]
async fn find_streams_20k_documents_in_batches_of_500() {
    let m = mongo().await;
    let docs: Vec<Document> =
        (0..20_000).map(|i| doc! {"_id": i, "n": i, "pad": "xxxxxxxxxxxxxxxx"}).collect();
    for chunk in docs.chunks(5000) {
        m.coll("big").insert_many(chunk).await.expect("seed");
    }
    let flow = Flow::new("stream")
        .with_node(
            "find",
            "mongodb_find",
            json!({"connection": "mongo", "collection": "big", "batch_size": 500}),
        )
        .with_node("slow", "delay", json!({"ms": 10}))
        .with_node("out", "collect", json!({"max_records": 0}))
        .with_edge("find", "slow")
        .with_edge("slow", "out");
    let engine = m.engine().await;
    let mut events = engine.subscribe(None);
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(report.node("find").map(|n| n.counters.records_out), Some(20_000));
    assert_eq!(report.node("out").map(|n| n.counters.records_in), Some(20_000));

    let mut progress = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        if let EventKind::NodeProgress { node, counters, .. } = &e.kind
            && node == "find"
        {
            progress.push(counters.records_out);
        }
    }
    let partial: Vec<u64> = progress.iter().copied().filter(|n| *n > 0 && *n < 20_000).collect();
    assert!(partial.len() >= 3, "the cursor was read in several batches: {progress:?}");
    assert!(progress.iter().all(|n| n % 500 == 0), "records leave in batches of 500: {progress:?}");
    m.drop().await;
}

#[tokio::test]
async fn insert_retried_after_a_lost_acknowledgement_writes_each_document_once() {
    let m = mongo().await;
    let engine = m.engine().await;
    // The first insert is applied, but its reply reports a transient error (64: the write concern
    // timed out): the retry must not add the batch again.
    let wce =
        doc! {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out"};
    let turn = m.flaky(&engine, doc! {"failCommands": ["insert"], "writeConcernError": wce}).await;
    let flow = Flow::new("lost-ack")
        .with_node("users", "generate_rows", users(250))
        .with_node("save", "mongodb_insert", json!({"connection": "flaky", "collection": "people"}))
        .with_edge("users", "save");
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    turn.release().await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(report.node("save").map(|n| n.attempts), Some(2), "the first batch was retried");
    let mut ids: Vec<i32> = m.docs("people").await.iter().filter_map(|d| d.get_i32("id").ok()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>(), "every record exactly once");
    m.drop().await;
}

#[tokio::test]
async fn insert_that_outlives_its_timeout_is_awaited_not_written_twice() {
    let m = mongo().await;
    let engine = m.engine().await;
    // The server holds the first insert for 1.5 s; the node gives up on the call after 0.5 s.
    let turn = m
        .flaky(&engine, doc! {"failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 1500})
        .await;
    let mut flow = Flow::new("slow-server")
        .with_node("users", "generate_rows", users(250))
        .with_node("save", "mongodb_insert", json!({"connection": "flaky", "collection": "people"}))
        .with_edge("users", "save");
    flow.nodes[1].settings.timeout_ms = Some(500);
    // Room for the held write to end on a busy machine (the server is Python): 11 x 0.5 s.
    retries(&mut flow, "save", 10);
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    turn.release().await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    // The retries wait for the held write (under the same timeout) instead of writing again.
    assert!(report.node("save").is_some_and(|n| n.attempts >= 2), "the timed-out call was retried");
    let mut ids: Vec<i32> = m.docs("people").await.iter().filter_map(|d| d.get_i32("id").ok()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>(), "every record exactly once");
    m.drop().await;
}

#[tokio::test]
async fn find_resumes_after_a_lost_connection_without_losing_or_repeating_documents() {
    let m = mongo().await;
    let docs: Vec<Document> = (0..2000).map(|i| doc! {"_id": i, "n": i}).collect();
    m.coll("big").insert_many(docs).await.expect("seed");
    let engine = m.engine().await;
    let turn = m.flaky(&engine, doc! {"failCommands": ["getMore"], "closeConnection": true}).await;
    let flow = Flow::new("lost-cursor")
        .with_node(
            "find",
            "mongodb_find",
            json!({"connection": "flaky", "collection": "big", "batch_size": 300}),
        )
        .with_node("out", "collect", json!({"max_records": 5000}))
        .with_edge("find", "out");
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    turn.release().await;
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?}", report.error);
    assert_eq!(report.node("find").map(|n| n.attempts), Some(2), "the lost getMore was retried");
    let ids: Vec<i64> = report.results["out"]
        .iter()
        .filter_map(|r| r.get("_id").and_then(|v| v.as_f64()))
        .map(|f| f as i64)
        .collect();
    assert_eq!(ids, (0..2000).collect::<Vec<_>>(), "every document once, in order");
    m.drop().await;
}

#[tokio::test]
async fn closed_port_fails_quickly_with_an_error_naming_the_connection() {
    let engine = engine().await;
    let connection = Connection {
        name: "down".into(),
        kind: ConnectionKind::Mongodb,
        url: CLOSED_URL.into(),
        options: Default::default(),
    };
    engine.save_connection(connection).await.expect("saved");
    let mut flow = Flow::new("down")
        .with_node("find", "mongodb_find", json!({"connection": "down", "collection": "users"}))
        .with_node("out", "collect", json!({}))
        .with_edge("find", "out");
    retries(&mut flow, "find", 0);
    let started = Instant::now();
    let report = engine.run(flow, RunOptions::default()).await.expect("runs");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let find = report.node("find").expect("node");
    assert_eq!(find.state, NodeState::Failed);
    assert_eq!(find.error_kind, Some(ErrorKind::Transient));
    let error = find.error.as_deref().unwrap_or_default();
    for part in ["connection `down`", "mongodb://127.0.0.1:1/flowdb", "flowdb.users", "server is running"] {
        assert!(error.contains(part), "`{part}` missing from: {error}");
    }
}

#[tokio::test]
async fn breaker_opens_after_its_threshold_for_an_unreachable_server() {
    let engine =
        engine_with(|c| c.breaker = BreakerConfig { threshold: 3, cooldown: Duration::from_secs(60) }).await;
    let url = format!("{CLOSED_URL}&serverSelectionTimeoutMS=200");
    let connection =
        Connection { name: "down".into(), kind: ConnectionKind::Mongodb, url, options: Default::default() };
    engine.save_connection(connection).await.expect("saved");
    let flow = || {
        let mut f = Flow::new("down")
            .with_node("rows", "static_data", json!({"records": [{"n": 1}]}))
            .with_node("save", "mongodb_insert", json!({"connection": "down", "collection": "users"}))
            .with_edge("rows", "save");
        retries(&mut f, "save", 10);
        f
    };
    let first = engine.run(flow(), RunOptions::default()).await.expect("runs");
    let save = first.node("save").expect("node");
    assert_eq!(save.error_kind, Some(ErrorKind::CircuitOpen), "{:?}", save.error);
    assert_eq!(save.attempts, 4, "three failures open the breaker; the fourth attempt is refused");
    assert!(save.error.as_deref().is_some_and(|e| e.contains("mongodb://127.0.0.1:1")), "{:?}", save.error);

    let started = Instant::now();
    let second = engine.run(flow(), RunOptions::default()).await.expect("runs");
    let save = second.node("save").expect("node");
    assert_eq!(save.error_kind, Some(ErrorKind::CircuitOpen));
    assert_eq!(save.attempts, 1, "an open breaker fails fast");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn configuration_mistakes_are_explained_before_anything_runs() {
    let engine = engine().await;
    for (name, url) in
        [("no_db", "mongodb://127.0.0.1:27018/?directConnection=true"), ("pg", "postgres://u@h/db")]
    {
        let kind = if name == "pg" { ConnectionKind::Postgres } else { ConnectionKind::Mongodb };
        let c = Connection { name: name.into(), kind, url: url.into(), options: Default::default() };
        engine.save_connection(c).await.expect("saved");
    }
    // Validation builds the nodes, so both mistakes are explained before anything runs.
    let problem = |connection: &str| {
        let flow = Flow::new("config")
            .with_node("find", "mongodb_find", json!({"connection": connection, "collection": "c"}))
            .with_node("out", "collect", json!({}))
            .with_edge("find", "out");
        let report = engine.validate(&flow);
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        assert_eq!(report.problems[0].node.as_deref(), Some("find"));
        report.problems[0].message.clone()
    };
    let error = problem("no_db");
    assert!(error.contains("no database") && error.contains("`database`"), "{error}");
    let error = problem("pg");
    assert!(error.contains("kind mongodb"), "{error}");
}

#[tokio::test]
async fn test_connection_reports_the_version_or_what_is_wrong() {
    let m = mongo().await;
    let good = flow_mongodb::test_connection(&m.url).await;
    assert!(good.reachable && good.authenticated, "{good:?}");
    assert!(good.server_version.as_deref().is_some_and(|v| !v.is_empty()), "{good:?}");
    assert!(good.message.starts_with("connected to MongoDB"), "{good:?}");

    let started = Instant::now();
    let bad =
        flow_mongodb::test_connection("mongodb://bob:hunter2@127.0.0.1:1/db?directConnection=true").await;
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert!(!bad.reachable && !bad.authenticated && bad.server_version.is_none(), "{bad:?}");
    assert!(bad.message.contains("127.0.0.1:1") && bad.message.contains("server is running"), "{bad:?}");
    assert!(!bad.message.contains("hunter2"), "the password leaked: {bad:?}");

    let wrong = flow_mongodb::test_connection("http://127.0.0.1:27018").await;
    assert!(!wrong.reachable && wrong.message.contains("not a MongoDB URL"), "{wrong:?}");
    m.drop().await;
}
