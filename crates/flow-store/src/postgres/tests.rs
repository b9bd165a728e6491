//! Listing stays an index range at a million executions: the exact query `list` builds is
//! explained, per filter, on a table filled by one `INSERT ... SELECT FROM generate_series`.
//! And the history writers, which keep their connections, carry on when those are killed.

use std::future::Future;

use chrono::Utc;
use flow_runtime::ExecutionState;
use sqlx::{Connection, PgConnection, QueryBuilder};
use uuid::Uuid;

use super::PgStore;
use crate::{ListQuery, NewExecution, PostgresOptions};

const ROWS: i64 = 1_000_000;

/// The n-th execution's id: ordered like n, as UUID v7 ids are ordered like start times.
fn nth_id(n: i64) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0000 | n as u128)
}

/// Owner and stored flow ids cycle through a hundred and a thousand values.
fn nth_owner(n: i64) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | (n % 100) as u128)
}

fn nth_flow_id(n: i64) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_9000_0000_0000_0000 | (n % 1000) as u128)
}

/// Every tenth execution is a sub-flow's, of one of a hundred parents, a thousand children each
/// (as many as a stored flow has executions: with only a few, a sort of them all is as cheap as
/// the index order, and the planner may choose either); the others have none.
fn nth_parent(n: i64) -> Option<Uuid> {
    (n % 10 == 0).then(|| Uuid::from_u128(0x0000_0000_0000_4000_a000_0000_0000_0000 | (n % 1000) as u128))
}

/// Runs `test` with a store in a schema of its own (dropped afterwards, also when `test`
/// panics), whose connections are named `application` in `pg_stat_activity`.
async fn in_schema<F, Fut>(application: &str, test: F)
where
    F: FnOnce(PgStore, PgConnection) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let url = std::env::var("POSTGRESQL_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url =
        format!("{url}{separator}options=-c%20search_path%3D{schema}&application_name={application}");
    let other_admin = PgConnection::connect(&url).await.expect("connect to PostgreSQL");
    let outcome = tokio::spawn(async move {
        let store = PgStore::connect(&schema_url, &PostgresOptions::default()).await.expect("connect");
        test(store, other_admin).await;
    })
    .await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.expect("drop schema");
    admin.close().await.expect("close");
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

#[tokio::test]
async fn keyset_pages_use_an_index_at_a_million_executions() {
    in_schema("flow_store_pages", |store, _| async move {
        fill(&store).await;
        check_pages(&store).await;
    })
    .await;
}

/// The writers keep their connections between batches; when PostgreSQL ends those (a restart),
/// the next writes still commit, each on a new connection, and none is lost.
#[tokio::test]
async fn history_writes_go_on_after_the_writers_connections_are_killed() {
    let application = format!("flow_store_{}", Uuid::new_v4().simple());
    let name = application.clone();
    in_schema(&application, |store, mut admin| async move {
        let queued = |id| NewExecution {
            id,
            correlation_id: id.to_string(),
            flow: "kept".into(),
            state: ExecutionState::Queued,
            started_at: Utc::now(),
            owner: None,
            flow_id: None,
            parent_id: None,
            fence: None,
        };
        let write_all = |ids: Vec<Uuid>| {
            let store = store.clone();
            async move {
                let writes = ids.into_iter().map(|id| {
                    let store = store.clone();
                    async move { store.record_started(&queued(id)).await }
                });
                for outcome in futures::future::join_all(writes).await {
                    outcome.expect("a history write");
                }
            }
        };
        let before: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
        write_all(before.clone()).await;
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .expect("terminate the store's connections");
        assert!(!killed.is_empty() && killed.iter().all(|k| *k), "no connection killed: {killed:?}");

        let after: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
        write_all(after.clone()).await;
        for id in before.iter().chain(&after) {
            let detail = store.get(*id).await.expect("read").expect("the execution is stored");
            assert_eq!(detail.summary.state, ExecutionState::Queued);
        }
        admin.close().await.expect("close");
    })
    .await;
}

async fn fill(store: &PgStore) {
    // Same shapes as nth_id, nth_owner, nth_flow_id and nth_parent, computed by the server.
    sqlx::query(
        "INSERT INTO executions \
             (id, correlation_id, flow, state, started_at, finished_at, records_out, owner, flow_id, \
              parent_id) \
         SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, \
                'corr-' || n, \
                'flow-' || (n % 50), \
                (ARRAY['succeeded', 'failed', 'cancelled', 'succeeded', 'running'])[n % 5 + 1], \
                timestamptz '2025-01-01 00:00:00Z' + n * interval '1 second', \
                timestamptz '2025-01-01 00:00:02Z' + n * interval '1 second', \
                n % 1000, \
                ('00000000-0000-4000-8000-' || lpad(to_hex(n % 100), 12, '0'))::uuid, \
                ('00000000-0000-4000-9000-' || lpad(to_hex(n % 1000), 12, '0'))::uuid, \
                CASE WHEN n % 10 = 0 \
                    THEN ('00000000-0000-4000-a000-' || lpad(to_hex(n % 1000), 12, '0'))::uuid END \
         FROM generate_series(1, $1::bigint) AS n",
    )
    .bind(ROWS)
    .execute(&store.pool)
    .await
    .expect("insert a million executions");
    // What autovacuum would do soon after such a load: the planner needs the statistics.
    sqlx::query("ANALYZE executions").execute(&store.pool).await.expect("analyze");
}

async fn check_pages(store: &PgStore) {
    let before = nth_id(ROWS / 2);
    let page = ListQuery { before: Some(before), limit: Some(50), ..ListQuery::default() };
    let queries = [
        ("no filter", page.clone()),
        ("owner", ListQuery { owner: Some(nth_owner(7)), ..page.clone() }),
        ("flow_id", ListQuery { flow_id: Some(nth_flow_id(7)), ..page.clone() }),
        ("parent", ListQuery { parent: nth_parent(70), ..page.clone() }),
        ("state", ListQuery { state: Some(ExecutionState::Failed), ..page.clone() }),
        ("flow name", ListQuery { flow: Some("flow-7".to_owned()), ..page.clone() }),
        // Owner 7's executions are all cancelled (n % 5 == 2): the combination matches.
        (
            "owner and state",
            ListQuery { owner: Some(nth_owner(7)), state: Some(ExecutionState::Cancelled), ..page.clone() },
        ),
    ];
    for (what, query) in &queries {
        let mut explain = QueryBuilder::new("EXPLAIN ");
        store.push_list(&mut explain, query).expect("build the query");
        let plan: Vec<String> = explain.build_query_scalar().fetch_all(&store.pool).await.expect("explain");
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{what}: a sequential scan:\n{plan}");
        assert!(
            plan.contains("Index Scan Backward") || plan.contains("Index Scan"),
            "{what}: no index scan:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{what}: sorts instead of reading the index in order:\n{plan}");

        let listed = store.list(query).await.expect("list");
        assert!(!listed.is_empty(), "{what}: an empty page");
        assert!(listed.len() <= 50);
        assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "{what}: not newest first");
        assert!(listed.iter().all(|e| e.id < before), "{what}: a row not before the key");
        if let Some(owner) = query.owner {
            assert!(listed.iter().all(|e| e.owner == Some(owner)), "{what}: another owner's row");
        }
        if let Some(parent) = query.parent {
            assert!(listed.iter().all(|e| e.parent_id == Some(parent)), "{what}: another parent's child");
        }
        if let Some(state) = query.state {
            assert!(listed.iter().all(|e| e.state == state), "{what}: a row in another state");
        }
    }
    // The unfiltered page is exactly the 50 ids below the key.
    let listed = store.list(&queries[0].1).await.expect("list");
    let expected: Vec<Uuid> = (ROWS / 2 - 50..ROWS / 2).rev().map(nth_id).collect();
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
}
