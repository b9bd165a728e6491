//! PostgreSQL end to end, against the machine's server (`POSTGRESQL_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): the SPEC cases with exact rows, all-or-nothing
//! writes on failure and cancel, timeouts that cancel the server-side query, clear connection
//! errors and the breaker, inert params, upsert/update semantics, a COPY load, the connection test
//! and schema checks. Every test makes its own tables (random suffix) and drops them at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flow_engine::{
    BreakerConfig, Connection, ConnectionKind, Engine, ErrorKind, EventKind, ExecutionReport, ExecutionState,
    Flow, FlowOrigin, NodeState, ProblemKind, RunOptions, SinkOutcome,
};
use flow_model::{FlowNode, RetrySettings};
use serde_json::{Value as Json, json};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, PgPool, Postgres};

fn url() -> String {
    std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The same server, as another user; `user:password@` replaces the URL's user part.
fn url_as(userinfo: &str) -> String {
    let url = url();
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{userinfo}@{host}")
}

/// The same URL pointed at another port.
fn url_on_port(port: u16) -> String {
    let url = url();
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
    let path = host.find('/').map_or("", |i| &host[i..]);
    let at = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
    format!("{scheme}://{at}127.0.0.1:{port}{path}")
}

/// The same URL naming another database.
fn url_with_database(database: &str) -> String {
    let url = url();
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{host}/{database}")
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Table names for one test, each with the same random suffix.
struct Db {
    pool: PgPool,
    tables: Vec<String>,
}

impl Db {
    async fn new() -> Db {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url())
            .await
            .expect("PostgreSQL of this machine (set POSTGRESQL_URL)");
        Db { pool, tables: Vec::new() }
    }

    /// Creates a table `prefix_<suffix>` from its column definitions and returns its name.
    async fn table(&mut self, prefix: &str, columns: &str) -> String {
        let name = format!("{prefix}_{:08x}", fastrand::u32(..));
        self.exec(&format!("CREATE TABLE {name} ({columns})")).await;
        self.tables.push(name.clone());
        name
    }

    /// Another session's ACCESS EXCLUSIVE lock on `table`, held until `COMMIT` on the returned
    /// connection.
    async fn lock(&self, table: &str) -> PoolConnection<Postgres> {
        let mut locker = self.pool.acquire().await.expect("connection");
        sqlx::raw_sql(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *locker)
            .await
            .expect("lock");
        locker
    }

    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows of a query as JSON objects.
    async fn rows(&self, sql: &str) -> Json {
        sqlx::query_scalar::<_, Json>(&format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t"))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

impl Drop for Db {
    /// Drops the test's tables, after a failed assertion too: on a thread and runtime of its own,
    /// since the test's runtime may be unwinding.
    fn drop(&mut self) {
        let tables = std::mem::take(&mut self.tables);
        if tables.is_empty() {
            return;
        }
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url()).await?;
                sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {}", tables.join(", ")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test's tables: {dropped:?}");
        }
    }
}

/// A test engine with the named connection `pg` to the machine's server.
async fn engine() -> Engine {
    with_connection(flow_tests::engine().await, "pg", &url(), json!({"max_connections": 4})).await
}

async fn with_connection(engine: Engine, name: &str, url: &str, options: Json) -> Engine {
    let options = options.as_object().cloned().unwrap_or_default();
    engine
        .save_connection(Connection {
            name: name.into(),
            kind: ConnectionKind::Postgres,
            url: url.into(),
            options,
        })
        .await
        .expect("connection saved");
    engine
}

async fn run(engine: &Engine, flow: Flow) -> std::sync::Arc<ExecutionReport> {
    engine.run(flow, RunOptions::default()).await.expect("flow starts")
}

fn node<'f>(flow: &'f mut Flow, id: &str) -> &'f mut FlowNode {
    flow.nodes.iter_mut().find(|n| n.id == id).expect("node")
}

fn assert_succeeded(report: &ExecutionReport) {
    assert_eq!(report.state, ExecutionState::Succeeded, "{:?} {:#?}", report.error, report.nodes);
}

/// Six users: two drafts, three active, one inactive.
async fn users(db: &mut Db) -> String {
    let users =
        db.table("users", "id int PRIMARY KEY, name text NOT NULL, status text NOT NULL, age int").await;
    db.exec(&format!(
        "INSERT INTO {users} VALUES (1, 'Ana', 'active', 30), (2, 'Bo', 'inactive', 40), (3, 'Cy', 'active', 22), \
         (4, 'Di', 'draft', 35), (5, 'Ed', 'draft', 28), (6, 'Fay', 'active', 51)"
    ))
    .await;
    users
}

fn status_is(status: &str) -> Json {
    json!({"conditions": [{"field": "status", "op": "eq", "value": status}]})
}

fn rename_name() -> Json {
    json!({"operations": [{"op": "rename", "from": "name", "to": "full_name"}]})
}

#[tokio::test]
async fn case_1_active_users_are_renamed_and_inserted() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let processed = db
        .table("processed_users", "id int PRIMARY KEY, full_name text NOT NULL, status text, age int")
        .await;
    let flow = Flow::new("case-1")
        .with_node(
            "users",
            "postgres_query",
            json!({"connection": "pg", "query": format!("SELECT id, name, status, age FROM {users} ORDER BY id")}),
        )
        .with_node("active", "filter", status_is("active"))
        .with_node("mapper", "field_mapper", rename_name())
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": processed}))
        .with_edge("users", "active")
        .with_edge("active", "mapper")
        .with_edge("mapper", "insert");
    let report = run(&engine().await, flow).await;
    assert_succeeded(&report);
    assert_eq!(report.node("users").map(|n| n.counters.records_out), Some(6));
    assert_eq!(report.node("insert").and_then(|n| n.sink), Some(SinkOutcome::Committed));
    assert_eq!(
        db.rows(&format!("SELECT * FROM {processed} ORDER BY id")).await,
        json!([
            {"id": 1, "full_name": "Ana", "status": "active", "age": 30},
            {"id": 3, "full_name": "Cy", "status": "active", "age": 22},
            {"id": 6, "full_name": "Fay", "status": "active", "age": 51},
        ])
    );
}

#[tokio::test]
async fn case_3_branches_insert_the_active_and_update_the_drafts() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let processed = db
        .table("processed_users", "id int PRIMARY KEY, full_name text NOT NULL, status text, age int")
        .await;
    let flow = Flow::new("case-3")
        .with_node(
            "users",
            "postgres_query",
            json!({"connection": "pg", "query": format!("SELECT id, name, status, age FROM {users} ORDER BY id")}),
        )
        .with_node("active", "filter", status_is("active"))
        .with_node("to_processed", "field_mapper", rename_name())
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": processed}))
        .with_node("draft", "filter", status_is("draft"))
        .with_node(
            "review",
            "field_mapper",
            json!({"operations": [{"op": "compute", "field": "status", "expression": "\"reviewed\""}],
                   "keep_only": ["id", "status"]}),
        )
        .with_node("update", "postgres_update", json!({"connection": "pg", "table": users, "key_columns": ["id"]}))
        .with_edge("users", "active")
        .with_edge("active", "to_processed")
        .with_edge("to_processed", "insert")
        .with_edge("users", "draft")
        .with_edge("draft", "review")
        .with_edge("review", "update");
    let report = run(&engine().await, flow).await;
    assert_succeeded(&report);
    for sink in ["insert", "update"] {
        assert_eq!(report.node(sink).and_then(|n| n.sink), Some(SinkOutcome::Committed), "{sink}");
    }
    assert_eq!(
        db.rows(&format!("SELECT id, full_name, status FROM {processed} ORDER BY id")).await,
        json!([
            {"id": 1, "full_name": "Ana", "status": "active"},
            {"id": 3, "full_name": "Cy", "status": "active"},
            {"id": 6, "full_name": "Fay", "status": "active"},
        ])
    );
    assert_eq!(
        db.rows(&format!("SELECT id, name, status, age FROM {users} ORDER BY id")).await,
        json!([
            {"id": 1, "name": "Ana", "status": "active", "age": 30},
            {"id": 2, "name": "Bo", "status": "inactive", "age": 40},
            {"id": 3, "name": "Cy", "status": "active", "age": 22},
            {"id": 4, "name": "Di", "status": "reviewed", "age": 35},
            {"id": 5, "name": "Ed", "status": "reviewed", "age": 28},
            {"id": 6, "name": "Fay", "status": "active", "age": 51},
        ])
    );
}

#[tokio::test]
async fn a_node_failing_mid_stream_leaves_every_target_table_as_it_was() {
    let mut db = Db::new().await;
    let inserted = db.table("fail_insert", "id int PRIMARY KEY, name text, status text, age int").await;
    let upserted = db.table("fail_upsert", "id int PRIMARY KEY, name text, status text, age int").await;
    let updated = users(&mut db).await;
    db.exec(&format!("INSERT INTO {inserted} VALUES (9001, 'kept', 'x', 1)")).await;
    db.exec(&format!("INSERT INTO {upserted} VALUES (1, 'kept', 'x', 1)")).await;
    let before: Vec<Json> = [
        db.rows(&format!("SELECT * FROM {inserted} ORDER BY id")).await,
        db.rows(&format!("SELECT * FROM {upserted} ORDER BY id")).await,
        db.rows(&format!("SELECT * FROM {updated} ORDER BY id")).await,
    ]
    .into();

    let flow = Flow::new("fails-mid-stream")
        .with_node("many", "generate_rows", flow_tests::users(1000))
        .with_node("slow", "delay", json!({"ms": 30}))
        .with_node("breaks", "fail", json!({"after_records": 600}))
        .with_node(
            "insert",
            "postgres_insert",
            json!({"connection": "pg", "table": inserted, "method": "insert"}),
        )
        .with_node("few", "generate_rows", flow_tests::users(300))
        .with_node(
            "upsert",
            "postgres_upsert",
            json!({"connection": "pg", "table": upserted, "conflict_columns": ["id"]}),
        )
        .with_node("drafts", "generate_rows", flow_tests::users(6))
        .with_node(
            "retire",
            "field_mapper",
            json!({"operations": [{"op": "compute", "field": "status", "expression": "\"retired\""}],
                   "keep_only": ["id", "status"]}),
        )
        .with_node(
            "update",
            "postgres_update",
            json!({"connection": "pg", "table": updated, "key_columns": ["id"]}),
        )
        .with_edge("many", "slow")
        .with_edge("slow", "breaks")
        .with_edge("breaks", "insert")
        .with_edge("few", "upsert")
        .with_edge("drafts", "retire")
        .with_edge("retire", "update");
    let report = run(&engine().await, flow).await;
    assert_eq!(report.state, ExecutionState::Failed);
    assert!(report.error.as_deref().is_some_and(|e| e.contains("`breaks`")), "{:?}", report.error);
    assert!(
        report.node("insert").is_some_and(|n| n.counters.records_in >= 300),
        "the sink wrote before the failure"
    );
    assert!(report.node("upsert").is_some_and(|n| n.counters.records_in == 300));
    for sink in ["insert", "upsert", "update"] {
        assert_eq!(report.node(sink).and_then(|n| n.sink), Some(SinkOutcome::RolledBack), "{sink}");
    }
    let after: Vec<Json> = [
        db.rows(&format!("SELECT * FROM {inserted} ORDER BY id")).await,
        db.rows(&format!("SELECT * FROM {upserted} ORDER BY id")).await,
        db.rows(&format!("SELECT * FROM {updated} ORDER BY id")).await,
    ]
    .into();
    assert_eq!(after, before);
}

/// A parent that inserts `count` generated users into `parent_table` after a sub-flow (file
/// `child.json` in `dir`) that inserts them into `child_table` and passes them on; with
/// `fail_after`, a Fail node in the child breaks the stream after that many records.
fn tree(
    dir: &std::path::Path,
    parent_table: &str,
    child_table: &str,
    count: u64,
    fail_after: Option<u64>,
) -> Flow {
    let mut child = Flow::new("child-writes")
        .with_node("in", "input", json!({}))
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": child_table}))
        .with_node("out", "output", json!({}))
        .with_edge("in", "insert")
        .with_edge("in", "out");
    if let Some(after) = fail_after {
        child = child.with_node("breaks", "fail", json!({"after_records": after})).with_edge("in", "breaks");
    }
    flow_engine::save_flow(&child, &dir.join("child.json")).expect("child written");
    Flow::new("parent-writes")
        .with_node("many", "generate_rows", flow_tests::users(count))
        .with_node("slow", "delay", json!({"ms": 10}))
        .with_node("sub", "subflow", json!({"flow": "child.json"}))
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": parent_table}))
        .with_edge("many", "slow")
        .with_edge("slow", "sub")
        .with_edge("sub", "insert")
}

fn in_dir(dir: &std::path::Path) -> RunOptions {
    RunOptions { origin: FlowOrigin::File(dir.join("parent.json")), ..RunOptions::default() }
}

#[tokio::test]
async fn a_sub_flow_tree_commits_the_child_and_parent_writes_together() {
    let mut db = Db::new().await;
    let parent_table = db.table("tree_parent", "id int PRIMARY KEY, name text, status text, age int").await;
    let child_table = db.table("tree_child", "id int PRIMARY KEY, name text, status text, age int").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = tree(dir.path(), &parent_table, &child_table, 2_000, None);
    let report = engine().await.run(flow, in_dir(dir.path())).await.expect("starts");
    assert_succeeded(&report);
    assert_eq!(report.node("insert").and_then(|n| n.sink), Some(SinkOutcome::Committed));
    let child = &report.children[0];
    assert_eq!(child.state, ExecutionState::Succeeded);
    assert_eq!(child.node("insert").and_then(|n| n.sink), Some(SinkOutcome::Committed));
    assert_eq!((db.count(&parent_table).await, db.count(&child_table).await), (2_000, 2_000));
}

#[tokio::test]
async fn a_child_failing_mid_stream_leaves_no_rows_in_any_target_of_the_tree() {
    let mut db = Db::new().await;
    let parent_table = db.table("tree_parent", "id int PRIMARY KEY, name text, status text, age int").await;
    let child_table = db.table("tree_child", "id int PRIMARY KEY, name text, status text, age int").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = tree(dir.path(), &parent_table, &child_table, 2_000, Some(1_200));
    let report = engine().await.run(flow, in_dir(dir.path())).await.expect("starts");
    assert_eq!(report.state, ExecutionState::Failed);
    let error = report.error.as_deref().unwrap_or_default();
    assert!(error.contains("`sub`") && error.contains("`breaks`"), "the chain is named: {error}");
    let child = &report.children[0];
    assert_eq!(child.state, ExecutionState::Failed);
    // Both sinks had written before the failure, and both were rolled back.
    assert!(
        child.node("insert").is_some_and(|n| n.counters.records_in >= 1_000),
        "{:?}",
        child.node("insert")
    );
    assert!(
        report.node("insert").is_some_and(|n| n.counters.records_in >= 100),
        "{:?}",
        report.node("insert")
    );
    assert_eq!(child.node("insert").and_then(|n| n.sink), Some(SinkOutcome::RolledBack));
    assert_eq!(report.node("insert").and_then(|n| n.sink), Some(SinkOutcome::RolledBack));
    assert_eq!((db.count(&parent_table).await, db.count(&child_table).await), (0, 0));
}

#[tokio::test]
async fn cancel_mid_load_leaves_the_table_as_it_was() {
    let mut db = Db::new().await;
    let target = db.table("cancel_load", "id int PRIMARY KEY, name text, status text, age int").await;
    db.exec(&format!("INSERT INTO {target} VALUES (0, 'kept', 'x', 1)")).await;
    let flow = Flow::new("cancelled-load")
        .with_node("many", "generate_rows", flow_tests::users(1_000_000))
        .with_node("slow", "delay", json!({"ms": 20}))
        // Batches of 1,000 go out by COPY in the background: the cancel meets loads in flight.
        .with_node(
            "insert",
            "postgres_insert",
            json!({"connection": "pg", "table": target, "batch_size": 1000}),
        )
        .with_edge("many", "slow")
        .with_edge("slow", "insert");
    let engine = engine().await;
    let mut events = engine.subscribe(None);
    let id = engine.start(flow, RunOptions::default()).await.expect("starts");
    while let Some(e) = events.next().await {
        if let EventKind::NodeProgress { node, counters, .. } = &e.kind
            && node == "insert"
            && counters.records_in >= 3000
        {
            break;
        }
    }
    engine.cancel(id).expect("cancel");
    let report = engine.wait(id).await.expect("ends");
    assert_eq!(report.state, ExecutionState::Cancelled);
    assert_eq!(report.node("insert").and_then(|n| n.sink), Some(SinkOutcome::RolledBack));
    assert_eq!(
        db.rows(&format!("SELECT * FROM {target}")).await,
        json!([{"id": 0, "name": "kept", "status": "x", "age": 1}])
    );
}

#[tokio::test]
async fn a_query_beyond_its_timeout_is_cancelled_on_the_server_and_retried() {
    let db = Db::new().await;
    let marker = format!("flow_timeout_{:08x}", fastrand::u32(..));
    let mut flow = Flow::new("slow-query")
        .with_node(
            "sleepy",
            "postgres_query",
            json!({"connection": "pg", "query": format!("SELECT pg_sleep(5) AS {marker}")}),
        )
        .with_node("out", "collect", json!({}))
        .with_edge("sleepy", "out");
    node(&mut flow, "sleepy").settings.timeout_ms = Some(300);
    node(&mut flow, "sleepy").settings.retry =
        Some(RetrySettings { attempts: Some(2), base_delay_ms: Some(10), max_delay_ms: Some(50) });
    let started = Instant::now();
    let report = run(&engine().await, flow).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 5 s sleeps were not awaited: {:?}",
        started.elapsed()
    );
    let sleepy = report.node("sleepy").expect("node");
    assert_eq!(report.state, ExecutionState::Failed);
    assert_eq!(sleepy.state, NodeState::Failed);
    assert_eq!(sleepy.error_kind, Some(ErrorKind::Timeout), "{:?}", sleepy.error);
    assert_eq!(sleepy.attempts, 3, "the first try and two retries");
    assert!(
        sleepy.error.as_deref().is_some_and(|e| e.contains("timed out after 300 ms")),
        "{:?}",
        sleepy.error
    );

    // Every attempt's pg_sleep was cancelled on the server (cancels go out in the background).
    let running = || async {
        db.rows(&format!(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
             AND query LIKE '%{marker}%' AND query LIKE '%pg_sleep%'"
        ))
        .await
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while running().await != json!([]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(running().await, json!([]), "pg_sleep queries still running");
}

/// A flow reading one row through connection `name`.
fn probe(name: &str) -> Flow {
    Flow::new("probe")
        .with_node("read", "postgres_query", json!({"connection": name, "query": "SELECT 1 AS one"}))
        .with_node("out", "collect", json!({}))
        .with_edge("read", "out")
}

#[tokio::test]
async fn a_refused_user_fails_at_once_with_a_clear_message_naming_the_connection() {
    let suffix = format!("{:08x}", fastrand::u32(..));
    let password = format!("s3cret-{suffix}");
    let url = url_as(&format!("nobody_{suffix}:{password}"));
    let engine = with_connection(flow_tests::engine().await, "badpw", &url, json!({})).await;
    let report = run(&engine, probe("badpw")).await;
    let read = report.node("read").expect("node");
    assert_eq!(read.state, NodeState::Failed);
    assert_eq!(read.error_kind, Some(ErrorKind::Permanent), "{:?}", read.error);
    assert_eq!(read.attempts, 1, "a refused user is not retried");
    let message = read.error.clone().unwrap_or_default();
    for expected in
        ["connection `badpw`", &format!("nobody_{suffix}:***@"), "does not exist", "user name and password"]
    {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }
    assert!(!message.contains(&password), "{message}");
}

#[tokio::test]
async fn a_closed_port_is_named_retried_and_opens_the_breaker() {
    let port = closed_port();
    let engine = engine_with_breaker().await;
    let engine =
        with_connection(engine, "closed", &url_on_port(port), json!({"acquire_timeout_ms": 200})).await;
    let attempts = |flow: &mut Flow, n: u32| {
        node(flow, "read").settings.retry =
            Some(RetrySettings { attempts: Some(n), base_delay_ms: Some(1), max_delay_ms: Some(2) });
    };

    let mut once = probe("closed");
    attempts(&mut once, 0);
    let report = run(&engine, once).await;
    let read = report.node("read").expect("node");
    assert_eq!(read.error_kind, Some(ErrorKind::Transient), "{:?}", read.error);
    let message = read.error.clone().unwrap_or_default();
    for expected in
        ["connection `closed`", &format!("127.0.0.1:{port}"), "connection refused", "start PostgreSQL"]
    {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }

    // One failure so far; two more reach the threshold of 3 and the next attempt is refused.
    let mut retried = probe("closed");
    attempts(&mut retried, 5);
    let report = run(&engine, retried).await;
    let read = report.node("read").expect("node");
    assert_eq!(read.error_kind, Some(ErrorKind::CircuitOpen), "{:?}", read.error);
    assert_eq!(read.attempts, 3);
    let target = format!("postgres://127.0.0.1:{port}/");
    assert!(read.error.as_deref().is_some_and(|e| e.contains(&target)), "{:?}", read.error);

    let report = run(&engine, probe("closed")).await;
    let read = report.node("read").expect("node");
    assert_eq!(read.error_kind, Some(ErrorKind::CircuitOpen));
    assert_eq!(read.attempts, 1, "an open breaker fails fast");
}

async fn engine_with_breaker() -> Engine {
    flow_tests::engine_with(|c| c.breaker = BreakerConfig { threshold: 3, cooldown: Duration::from_secs(60) })
        .await
}

#[tokio::test]
async fn a_hostile_variable_is_bound_as_a_value_and_stored_literally() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let notes = db.table("notes", "id int PRIMARY KEY, name text, note text").await;
    let hostile = format!("'; DROP TABLE {users}; --");
    let flow = Flow::new("inert")
        .with_node(
            "users",
            "postgres_query",
            json!({"connection": "pg",
                   "query": format!("SELECT id, name, $1::text AS note FROM {users} WHERE status <> $1 ORDER BY id"),
                   "params": ["{{ vars.status }}"]}),
        )
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": notes}))
        .with_edge("users", "insert");
    let options =
        RunOptions { vars: BTreeMap::from([("status".into(), json!(hostile))]), ..Default::default() };
    let report = engine().await.run(flow, options).await.expect("starts");
    assert_succeeded(&report);
    assert_eq!(db.count(&users).await, 6, "the users table is still there");
    assert_eq!(
        db.rows(&format!("SELECT DISTINCT note FROM {notes}")).await,
        json!([{"note": hostile}]),
        "the value is stored literally"
    );
    assert_eq!(db.count(&notes).await, 6);
}

#[tokio::test]
async fn test_connection_tells_what_works_and_what_is_wrong() {
    let good = flow_postgres::test_connection(&url()).await;
    assert!(good.reachable && good.authenticated, "{good:?}");
    assert!(good.server_version.as_deref().is_some_and(|v| v.starts_with(char::is_numeric)), "{good:?}");
    assert!(good.message.starts_with("connected to PostgreSQL"), "{}", good.message);

    let port = closed_port();
    let closed = flow_postgres::test_connection(&url_on_port(port)).await;
    assert!(!closed.reachable && !closed.authenticated, "{closed:?}");
    assert!(
        closed.message.contains(&format!("nothing is listening on 127.0.0.1:{port}")),
        "{}",
        closed.message
    );

    let suffix = format!("{:08x}", fastrand::u32(..));
    let password = format!("pw-{suffix}");
    let refused = flow_postgres::test_connection(&url_as(&format!("nobody_{suffix}:{password}"))).await;
    assert!(refused.reachable && !refused.authenticated, "{refused:?}");
    assert!(refused.message.contains(&format!("refused user `nobody_{suffix}`")), "{}", refused.message);
    assert!(refused.message.contains("***") && !refused.message.contains(&password), "{}", refused.message);

    let missing = flow_postgres::test_connection(&url_with_database(&format!("nodb_{suffix}"))).await;
    assert!(missing.reachable && !missing.message.contains("refused user"), "{missing:?}");
    assert!(
        missing.message.contains("does not exist") && missing.message.contains("create the database"),
        "{}",
        missing.message
    );

    let unknown = flow_postgres::test_connection("postgres://postgres@no-such-host.invalid:5432/test").await;
    assert!(!unknown.reachable && unknown.message.contains("host `no-such-host.invalid`"), "{unknown:?}");

    let not_a_url = flow_postgres::test_connection("postgres://db.example:notaport/x").await;
    assert!(!not_a_url.reachable && not_a_url.message.contains("expected postgres://"), "{not_a_url:?}");
}

/// Records written inline.
fn records(rows: Json) -> Json {
    json!({"records": rows})
}

#[tokio::test]
async fn upsert_inserts_new_keys_and_updates_existing_ones_with_either_method() {
    let mut db = Db::new().await;
    for method in ["insert", "copy"] {
        let table = db.table("upsert", "id int PRIMARY KEY, name text, n int, note text DEFAULT 'new'").await;
        db.exec(&format!("INSERT INTO {table} VALUES (1, 'a', 1, 'kept'), (2, 'b', 2, 'kept')")).await;
        let flow = Flow::new("upsert")
            .with_node(
                "rows",
                "static_data",
                records(json!([
                    {"id": 1, "name": "A", "n": 10},
                    {"id": 3, "name": "c", "n": 3},
                    {"id": 3, "name": "C", "n": 30},
                ])),
            )
            .with_node(
                "upsert",
                "postgres_upsert",
                json!({"connection": "pg", "table": table, "conflict_columns": ["id"], "method": method}),
            )
            .with_edge("rows", "upsert");
        let report = run(&engine().await, flow).await;
        assert_succeeded(&report);
        assert_eq!(
            db.rows(&format!("SELECT * FROM {table} ORDER BY id")).await,
            json!([
                {"id": 1, "name": "A", "n": 10, "note": "kept"},
                {"id": 2, "name": "b", "n": 2, "note": "kept"},
                {"id": 3, "name": "C", "n": 30, "note": "new"},
            ]),
            "method {method}"
        );
    }
}

#[tokio::test]
async fn update_sets_only_the_chosen_columns_of_matching_rows() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let flow = Flow::new("update")
        .with_node(
            "rows",
            "static_data",
            records(json!([
                {"id": 1, "status": "gone", "age": 99},
                {"id": 42, "status": "nobody", "age": 1},
                {"id": 2, "status": "first", "age": 98},
                {"id": 2, "status": "last", "age": 97},
            ])),
        )
        .with_node(
            "update",
            "postgres_update",
            json!({"connection": "pg", "table": users, "key_columns": ["id"], "columns": ["status"]}),
        )
        .with_edge("rows", "update");
    let report = run(&engine().await, flow).await;
    assert_succeeded(&report);
    assert_eq!(
        db.rows(&format!("SELECT id, name, status, age FROM {users} WHERE id <= 3 ORDER BY id")).await,
        json!([
            {"id": 1, "name": "Ana", "status": "gone", "age": 30},
            {"id": 2, "name": "Bo", "status": "last", "age": 40},
            {"id": 3, "name": "Cy", "status": "active", "age": 22},
        ])
    );
    assert_eq!(db.count(&users).await, 6, "no row was added");
}

#[tokio::test]
async fn a_copy_load_of_50k_rows_arrives_whole_and_exact() {
    let mut db = Db::new().await;
    let table =
        db.table("copy_load", "id bigint PRIMARY KEY, name text NOT NULL, status text, age int").await;
    let mut rows = flow_tests::users(50_000);
    // Tabs, backslashes and newlines must survive COPY's text format.
    rows["fields"]["name"] = json!({"pattern": "User\t{n}\\\n"});
    let flow = Flow::new("copy-load")
        .with_node("rows", "generate_rows", rows)
        .with_node(
            "load",
            "postgres_insert",
            json!({"connection": "pg", "table": table, "method": "copy", "batch_size": 5000}),
        )
        .with_edge("rows", "load");
    let started = Instant::now();
    let report = run(&engine().await, flow).await;
    assert_succeeded(&report);
    assert_eq!(report.node("load").map(|n| n.counters.records_in), Some(50_000));
    assert_eq!(
        db.rows(&format!("SELECT count(*) AS n, sum(id) AS ids, count(DISTINCT name) AS names FROM {table}"))
            .await,
        json!([{"n": 50_000, "ids": 1_250_025_000, "names": 50_000}])
    );
    assert_eq!(
        db.rows(&format!("SELECT * FROM {table} WHERE id IN (1, 12345) ORDER BY id")).await,
        json!([
            {"id": 1, "name": "User\t0\\\n", "status": "active", "age": 20},
            {"id": 12345, "name": "User\t12344\\\n", "status": "draft", "age": 20},
        ])
    );
    eprintln!("COPY of 50k rows took {:?}", started.elapsed());
}

#[tokio::test]
async fn check_flags_a_filter_on_a_column_the_query_does_not_return() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let flow = |field: &str| {
        Flow::new("schema")
            .with_node(
                "users",
                "postgres_query",
                json!({"connection": "pg", "query": format!("SELECT id, name, status FROM {users}")}),
            )
            .with_node("filter", "filter", json!({"conditions": [{"field": field, "op": "eq", "value": 1}]}))
            .with_node("out", "collect", json!({}))
            .with_edge("users", "filter")
            .with_edge("filter", "out")
    };
    let engine = engine().await;
    let report = engine.check(&flow("nmae"), &BTreeMap::new(), &FlowOrigin::Unsaved).await;
    let problem = report.problems.iter().find(|p| p.kind == ProblemKind::MissingField).expect("MissingField");
    assert_eq!(problem.node.as_deref(), Some("filter"));
    assert!(problem.message.contains("id, name, status"), "{}", problem.message);
    assert!(!problem.suggestions.is_empty(), "a fix is suggested: {problem:?}");
    assert!(engine.check(&flow("name"), &BTreeMap::new(), &FlowOrigin::Unsaved).await.problems.is_empty());
}

#[tokio::test]
async fn validation_flags_sink_columns_missing_upstream() {
    let engine = engine().await;
    let flow = Flow::new("sink-fields")
        .with_node("rows", "generate_rows", json!({"count": 1, "fields": {"id": {"value": 1}, "name": {"value": "x"}}}))
        .with_node(
            "insert",
            "postgres_upsert",
            json!({"connection": "pg", "table": "t", "conflict_columns": ["id"], "columns": ["id", "full_name"]}),
        )
        .with_edge("rows", "insert");
    let report = engine.validate(&flow);
    let problem = report.problems.iter().find(|p| p.kind == ProblemKind::MissingField).expect("MissingField");
    assert_eq!((problem.node.as_deref(), problem.field.as_deref()), (Some("insert"), Some("/columns/1")));
}

#[tokio::test]
async fn a_sink_batch_beyond_its_timeout_is_cancelled_undone_and_retried_once() {
    let mut db = Db::new().await;
    let target = db.table("locked", "id int PRIMARY KEY, name text, status text, age int").await;
    // Another session locks the table, so the first attempts' INSERT waits past the node timeout.
    let mut locker = db.lock(&target).await;
    let mut flow = Flow::new("locked")
        .with_node("rows", "generate_rows", flow_tests::users(250))
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": target}))
        .with_edge("rows", "insert");
    node(&mut flow, "insert").settings.timeout_ms = Some(300);
    node(&mut flow, "insert").settings.retry =
        Some(RetrySettings { attempts: Some(10), base_delay_ms: Some(100), max_delay_ms: Some(200) });
    let engine = engine().await;
    let unlock = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        sqlx::raw_sql("COMMIT").execute(&mut *locker).await.expect("unlock");
    };
    let (report, ()) = tokio::join!(run(&engine, flow), unlock);
    assert_succeeded(&report);
    let insert = report.node("insert").expect("node");
    assert!(insert.attempts >= 2, "the locked batch timed out at least once: {insert:?}");
    assert_eq!(
        db.rows(&format!("SELECT count(*) AS n, count(DISTINCT id) AS ids, sum(id) AS total FROM {target}"))
            .await,
        json!([{"n": 250, "ids": 250, "total": 31_375}])
    );
    let waiting = db
        .rows(&format!(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
             AND query LIKE '%INSERT INTO%{target}%'"
        ))
        .await;
    assert_eq!(waiting, json!([]));
}

#[tokio::test]
async fn a_sink_batch_beyond_its_timeout_is_cancelled_on_the_server() {
    // 10 records go out as one INSERT at the end of input; 2,500 in batches of 1,000 go out by
    // COPY in the background, and the call waiting for the first load times out.
    for (records, statement) in [(10, "INSERT INTO"), (2500, "COPY")] {
        let mut db = Db::new().await;
        let target = db.table("locked", "id int PRIMARY KEY, name text, status text, age int").await;
        let mut locker = db.lock(&target).await;
        let mut flow = Flow::new("locked")
            .with_node("rows", "generate_rows", flow_tests::users(records))
            .with_node(
                "insert",
                "postgres_insert",
                json!({"connection": "pg", "table": target, "batch_size": 1000}),
            )
            .with_edge("rows", "insert");
        node(&mut flow, "insert").settings.timeout_ms = Some(300);
        node(&mut flow, "insert").settings.retry =
            Some(RetrySettings { attempts: Some(0), ..Default::default() });
        let report = run(&engine().await, flow).await;
        let insert = report.node("insert").expect("node");
        assert_eq!(insert.error_kind, Some(ErrorKind::Timeout), "{statement}: {:?}", insert.error);
        assert_eq!(insert.sink, Some(SinkOutcome::RolledBack), "{statement}");

        // The lock is still held: only a cancel can have ended the waiting statement.
        let waiting = || async {
            db.rows(&format!(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
                 AND query LIKE '{statement}%{target}%'"
            ))
            .await
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        while waiting().await != json!([]) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(waiting().await, json!([]), "the {statement} still waits on the server");
        sqlx::raw_sql("COMMIT").execute(&mut *locker).await.expect("unlock");
        drop(locker);
        assert_eq!(db.count(&target).await, 0, "{statement}");
    }
}

#[tokio::test]
async fn a_background_copy_load_waited_on_beyond_the_timeout_is_cancelled_and_sent_again() {
    let mut db = Db::new().await;
    let target = db.table("locked", "id int PRIMARY KEY, name text, status text, age int").await;
    let mut locker = db.lock(&target).await;
    let mut flow = Flow::new("locked-copy")
        .with_node("rows", "generate_rows", flow_tests::users(3500))
        .with_node(
            "insert",
            "postgres_insert",
            json!({"connection": "pg", "table": target, "method": "copy", "batch_size": 1000}),
        )
        .with_edge("rows", "insert");
    node(&mut flow, "insert").settings.timeout_ms = Some(300);
    node(&mut flow, "insert").settings.retry =
        Some(RetrySettings { attempts: Some(20), base_delay_ms: Some(50), max_delay_ms: Some(100) });
    let engine = engine().await;
    // While the table is locked, each attempt's COPY waits on the server; a cancelled load is
    // started again by the retry, so the waiting COPY changes (its query_start moves on).
    let watch_then_unlock = async {
        let mut starts = std::collections::BTreeSet::new();
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            let waiting = db
                .rows(&format!(
                    "SELECT query_start::text AS start FROM pg_stat_activity WHERE state = 'active' \
                     AND pid <> pg_backend_pid() AND query LIKE 'COPY%{target}%'"
                ))
                .await;
            if let Some(rows) = waiting.as_array() {
                assert!(rows.len() <= 1, "one load at a time: {waiting}");
                starts.extend(rows.iter().map(|r| r["start"].to_string()));
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        sqlx::raw_sql("COMMIT").execute(&mut *locker).await.expect("unlock");
        starts
    };
    let (report, starts) = tokio::join!(run(&engine, flow), watch_then_unlock);
    assert_succeeded(&report);
    let insert = report.node("insert").expect("node");
    assert!(insert.attempts >= 2, "the call waiting for the load timed out: {insert:?}");
    assert!(starts.len() >= 2, "the timed-out load was cancelled and sent again: {starts:?}");
    assert_eq!(
        db.rows(&format!("SELECT count(*) AS n, count(DISTINCT id) AS ids, sum(id) AS total FROM {target}"))
            .await,
        json!([{"n": 3500, "ids": 3500, "total": 6_126_750}])
    );
}

#[tokio::test]
async fn constraint_and_type_errors_are_permanent_and_say_where() {
    let mut db = Db::new().await;
    let users = users(&mut db).await;
    let write = |rows: Json| {
        Flow::new("bad-rows")
            .with_node("rows", "static_data", records(rows))
            .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": users}))
            .with_edge("rows", "insert")
    };
    let engine = engine().await;

    let duplicate = run(
        &engine,
        write(json!([{"id": 7, "name": "G", "status": "x"}, {"id": 1, "name": "A", "status": "x"}])),
    )
    .await;
    let insert = duplicate.node("insert").expect("node");
    assert_eq!((insert.error_kind, insert.attempts), (Some(ErrorKind::Permanent), 1), "{:?}", insert.error);
    let message = insert.error.clone().unwrap_or_default();
    for expected in ["connection `pg`", &format!("table `{users}`"), "duplicate key value", "SQLSTATE 23505"]
    {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }

    let by_copy = Flow::new("bad-copy")
        .with_node(
            "rows",
            "static_data",
            records(json!([{"id": 7, "name": "G", "status": "x"}, {"id": 1, "name": "A", "status": "x"}])),
        )
        .with_node("insert", "postgres_insert", json!({"connection": "pg", "table": users, "method": "copy"}))
        .with_edge("rows", "insert");
    let duplicate = run(&engine, by_copy).await;
    let insert = duplicate.node("insert").expect("node");
    assert_eq!((insert.error_kind, insert.attempts), (Some(ErrorKind::Permanent), 1), "{:?}", insert.error);
    let message = insert.error.clone().unwrap_or_default();
    for expected in
        [&format!("writing records 1-2 to table `{users}`"), "duplicate key value", "SQLSTATE 23505"]
    {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }

    let mistyped = run(&engine, write(json!([{"id": "seven", "name": "G", "status": "x"}]))).await;
    let insert = mistyped.node("insert").expect("node");
    assert_eq!((insert.error_kind, insert.attempts), (Some(ErrorKind::Record), 1), "{:?}", insert.error);
    assert!(
        insert.error.as_deref().is_some_and(
            |e| e.contains("record 1, column `id`: string \"seven\" does not convert to integer")
        ),
        "{:?}",
        insert.error
    );

    let unknown = run(&engine, write(json!([{"id": 8, "nickname": "G"}]))).await;
    let insert = unknown.node("insert").expect("node");
    assert_eq!(insert.error_kind, Some(ErrorKind::Permanent));
    assert!(
        insert.error.as_deref().is_some_and(
            |e| e.contains("column `nickname` is not in the table (its columns: id, name, status, age)")
        ),
        "{:?}",
        insert.error
    );

    let missing = Flow::new("no-table")
        .with_node("rows", "static_data", records(json!([{"id": 1}])))
        .with_node(
            "insert",
            "postgres_insert",
            json!({"connection": "pg", "table": format!("{users}_missing")}),
        )
        .with_edge("rows", "insert");
    let report = run(&engine, missing).await;
    let insert = report.node("insert").expect("node");
    assert_eq!(
        (insert.error_kind, insert.counters.records_in),
        (Some(ErrorKind::Permanent), 0),
        "fails when it opens"
    );
    assert!(insert.error.as_deref().is_some_and(|e| e.contains("no such table")), "{:?}", insert.error);

    assert_eq!(db.count(&users).await, 6, "nothing was written");
}

#[tokio::test]
async fn a_lock_timeout_is_undone_to_the_savepoint_and_retried_without_losing_other_writes() {
    let mut db = Db::new().await;
    let free = db.table("free", "id int PRIMARY KEY, name text, status text, age int").await;
    let locked = db.table("locked", "id int PRIMARY KEY, name text, status text, age int").await;
    // Statements give up waiting for a lock after 200 ms (SQLSTATE 55P03): a retriable failure.
    let separator = if url().contains('?') { '&' } else { '?' };
    let impatient = format!("{}{separator}options=-c%20lock_timeout%3D200", url());
    let engine = with_connection(engine().await, "impatient", &impatient, json!({})).await;
    let mut locker = db.lock(&locked).await;
    let mut flow = Flow::new("lock-timeout")
        .with_node("a", "generate_rows", flow_tests::users(300))
        .with_node("to_free", "postgres_insert", json!({"connection": "impatient", "table": free}))
        // 3,500 records in batches of 1,000: the first COPY, loading in the background, fails
        // its lock wait; the next call reports it, and its retry sends the same batch again.
        .with_node("b", "generate_rows", flow_tests::users(3500))
        .with_node(
            "to_locked",
            "postgres_insert",
            json!({"connection": "impatient", "table": locked, "batch_size": 1000}),
        )
        .with_edge("a", "to_free")
        .with_edge("b", "to_locked");
    node(&mut flow, "to_locked").settings.retry =
        Some(RetrySettings { attempts: Some(10), base_delay_ms: Some(100), max_delay_ms: Some(200) });
    let unlock = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        sqlx::raw_sql("COMMIT").execute(&mut *locker).await.expect("unlock");
    };
    let (report, ()) = tokio::join!(run(&engine, flow), unlock);
    assert_succeeded(&report);
    assert!(report.node("to_locked").is_some_and(|n| n.attempts >= 2), "{:#?}", report.node("to_locked"));
    for (table, n) in [(&free, 300), (&locked, 3500)] {
        assert_eq!(
            db.rows(&format!("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {table}")).await,
            json!([{"n": n, "ids": n}]),
            "{table}"
        );
    }
}
