//! What only the PostgreSQL backend does: errors name the URL without its password, servers
//! starting together migrate once, flows are stored as their canonical JSON, history writes made
//! at the same time share transactions. Behaviour both
//! backends share is in `conformance.rs`.

mod common;

use common::{TestSchema, at, failed_report, new_execution, succeeded_report, with_postgres};
use flow_model::{Flow, redact_url, to_canonical_json};
use flow_runtime::ExecutionState;
use flow_store::{PostgresOptions, Role, Store, StoreError};
use sqlx::Connection;
use uuid::Uuid;

#[tokio::test]
async fn errors_name_the_url_without_its_password() {
    let err =
        Store::connect_postgres("postgres://bob:s3cret@127.0.0.1:notaport/db").await.expect_err("bad url");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("database postgres://bob:***@127.0.0.1:notaport/db: "), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    with_postgres(|store, url| async move {
        let missing = store
            .record_state(Uuid::now_v7(), ExecutionState::Running, None)
            .await
            .expect_err("no such execution");
        let message = missing.to_string();
        assert!(message.starts_with(&format!("database {}: no execution ", redact_url(&url))), "{message}");
    })
    .await;
}

#[tokio::test]
async fn servers_starting_together_migrate_once() {
    let schema = TestSchema::create().await;
    let options = PostgresOptions { max_connections: 2, ..PostgresOptions::default() };
    let (a, b, c) = tokio::join!(
        Store::connect_postgres_with(&schema.url, &options),
        Store::connect_postgres_with(&schema.url, &options),
        Store::connect_postgres(&schema.url),
    );
    for store in [a, b, c] {
        let store = store.expect("connect and migrate");
        assert!(store.list_users().await.expect("the schema is there").is_empty());
    }
    let mut conn = sqlx::PgConnection::connect(&schema.url).await.expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let migrations =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations_pg")).expect("migrations").count();
    assert_eq!(applied, i64::try_from(migrations).expect("a few"));
    conn.close().await.expect("close");
    schema.remove().await;
}

#[tokio::test]
async fn flows_are_stored_as_their_canonical_json() {
    with_postgres(|store, url| async move {
        let owner = store.create_user("ada", "h", Role::User).await.expect("user");
        let flow = Flow::new("orders").with_node(
            "src",
            "generate",
            serde_json::json!({ "count": 3, "b": 1, "a": 2 }),
        );
        let stored = store.create_flow(owner.id, &flow).await.expect("create");
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let text: String = sqlx::query_scalar("SELECT flow::text FROM flows WHERE id = $1")
            .bind(stored.id)
            .fetch_one(&mut conn)
            .await
            .expect("select");
        assert_eq!(text, to_canonical_json(&flow));
        conn.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn concurrent_history_writes_share_transactions_and_each_keeps_its_outcome() {
    with_postgres(|store, url| async move {
        const RUNS: usize = 300;
        // Each run writes as a worker does: queued/started, running, finished, fenced by its
        // delivery. Every tenth also has a stale delivery (fence 1 after fence 2) finish it late,
        // and every run has an unfenced state change of an execution that does not exist.
        let mut tasks = Vec::new();
        for i in 0..RUNS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = Uuid::now_v7();
                let report = if i % 3 == 0 {
                    failed_report(id, "batched", 0)
                } else {
                    succeeded_report(id, "batched", 0, 2)
                };
                let fence = if i % 10 == 0 { 2 } else { 1 };
                let started = flow_store::NewExecution {
                    fence: Some(fence),
                    ..new_execution(&report, ExecutionState::Queued)
                };
                store.record_started(&started).await.expect("record_started");
                store.record_state(id, ExecutionState::Running, Some(fence)).await.expect("record_state");
                if fence == 2 {
                    store
                        .record_finished(&report, Some(1))
                        .await
                        .expect("a stale report is ignored, no error");
                } else {
                    store.record_finished(&report, Some(fence)).await.expect("record_finished");
                }
                let missing = store.record_state(Uuid::now_v7(), ExecutionState::Running, None).await;
                assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
                (report, fence)
            }));
        }
        let mut expected_failed = 0;
        let mut expected_succeeded = 0;
        for task in tasks {
            let (report, fence) = task.await.expect("a run's writes");
            let detail = store.get(report.id).await.expect("get").expect("recorded");
            if fence == 2 {
                assert_eq!(detail.summary.state, ExecutionState::Running, "the stale report wrote nothing");
                assert!(detail.nodes.is_empty());
            } else {
                assert_eq!(detail.summary.state, report.state);
                assert_eq!(detail.nodes.len(), report.nodes.len());
                if report.state == ExecutionState::Failed {
                    expected_failed += 1;
                } else {
                    expected_succeeded += 1;
                }
            }
        }
        let rollups = store.metrics_minutes(at(-60)).await.expect("metrics");
        assert_eq!(rollups.len(), 1, "{rollups:?}");
        assert_eq!(rollups[0].failed, expected_failed);
        assert_eq!(rollups[0].succeeded, expected_succeeded);
        assert_eq!(rollups[0].executions, expected_failed + expected_succeeded);

        // Rows written by one transaction carry its id (xmin): far fewer transactions than runs.
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM executions")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert!(transactions < i64::try_from(RUNS / 3).expect("small"), "{transactions} transactions");
        conn.close().await.expect("close");
    })
    .await;
}

/// Seeds `metrics_minute` as if 1,000,000 executions had finished over the 30 days before
/// `until`: 10 flows, every minute, 2 or 3 executions each (the first 136,000 rows 3), and
/// `metrics_hour` from them.
pub(crate) async fn seed_a_million_executions(url: &str, until: chrono::DateTime<chrono::Utc>) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query(
        "INSERT INTO metrics_minute (minute, flow, executions, succeeded, failed, cancelled, \
             duration_ms_sum, duration_ms_max, records_out, le_100, le_1000) \
         SELECT $1 - (m + 1) * interval '1 minute', 'flow-' || f, n, n - 1, 1, 0, n * 300, 900, n * 10, n - 1, 1 \
         FROM generate_series(0, 43199) AS m, generate_series(0, 9) AS f, \
             LATERAL (SELECT CASE WHEN m * 10 + f < 136000 THEN 3 ELSE 2 END AS n) AS c",
    )
    .bind(until)
    .execute(&mut conn)
    .await
    .expect("seed");
    // What recording them would have added to the hourly rollups.
    sqlx::query(
        "INSERT INTO metrics_hour SELECT date_trunc('hour', minute), flow, sum(executions), sum(succeeded), \
             sum(failed), sum(cancelled), sum(duration_ms_sum), max(duration_ms_max), sum(records_out), \
             sum(le_5), sum(le_10), sum(le_25), sum(le_50), sum(le_100), sum(le_250), sum(le_500), \
             sum(le_1000), sum(le_2500), sum(le_5000), sum(le_10000), sum(le_30000), sum(le_60000), \
             sum(le_300000), sum(le_1800000), sum(le_inf) \
         FROM metrics_minute GROUP BY 1, 2",
    )
    .execute(&mut conn)
    .await
    .expect("seed the hours");
    sqlx::query("ANALYZE metrics_minute").execute(&mut conn).await.expect("analyze");
    sqlx::query("ANALYZE metrics_hour").execute(&mut conn).await.expect("analyze");
    conn.close().await.expect("close");
}

#[tokio::test]
async fn the_dashboard_of_a_million_executions_reads_the_window_from_the_index() {
    // Midnight: 30 one-day steps.
    let until = chrono::DateTime::from_timestamp(20_254 * 86_400, 0).expect("valid time");
    with_postgres(move |store, url| async move {
        seed_a_million_executions(&url, until).await;
        let all = flow_store::MetricsWindow { since: until - chrono::Duration::days(30), until };
        let month = store.dashboard(&all, 1_440).await.expect("dashboard");
        assert_eq!((month.executions, month.failed, month.points.len()), (1_000_000, 432_000, 30));
        let plan = store.explain_dashboard(&all, 1_440).await.expect("explain");
        assert!(plan.contains("on metrics_hour"), "whole days read the hourly rollups:\n{plan}");

        let day = flow_store::MetricsWindow { since: until - chrono::Duration::days(1), until };
        let plan = store.explain_dashboard(&day, 15).await.expect("explain");
        assert!(plan.contains("metrics_minute_pkey"), "the window is a range of the primary key:\n{plan}");
        let dashboard = store.dashboard(&day, 15).await.expect("dashboard");
        // The last day is 14,400 rows of the first 136,000: 3 executions each.
        assert_eq!((dashboard.executions, dashboard.points.len()), (43_200, 96));
        assert_eq!((dashboard.duration.p50_ms, dashboard.duration.p99_ms), (Some(100), Some(900)));
    })
    .await;
}
