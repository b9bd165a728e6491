//! What only the PostgreSQL backend does: errors name the URL without its password, servers
//! starting together migrate once, flows are stored as their canonical JSON. Behaviour both
//! backends share is in `conformance.rs`.

mod common;

use common::{TestSchema, with_postgres};
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
    let options = PostgresOptions { max_connections: 2 };
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
