//! Named connections are kept in the store: saved, replaced, listed by name, deleted, and still
//! there after reopening the database.

use flow_model::{Connection, ConnectionKind};
use flow_store::Store;

fn connection(name: &str, url: &str) -> Connection {
    let mut options = serde_json::Map::new();
    options.insert("max_connections".into(), serde_json::json!(4));
    Connection { name: name.into(), kind: ConnectionKind::Postgres, url: url.into(), options }
}

#[tokio::test]
async fn connections_are_saved_replaced_listed_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    let store = Store::open(&path).await.expect("open");
    store.save_connection(&connection("warehouse", "postgres://a@x/db")).await.expect("save");
    store.save_connection(&connection("crm", "postgres://b@y/db")).await.expect("save");
    store.save_connection(&connection("warehouse", "postgres://{{ env.USER }}@z/db")).await.expect("replace");

    let listed = store.list_connections().await.expect("list");
    assert_eq!(
        listed,
        vec![
            connection("crm", "postgres://b@y/db"),
            connection("warehouse", "postgres://{{ env.USER }}@z/db")
        ]
    );

    assert!(store.delete_connection("crm").await.expect("delete"));
    assert!(!store.delete_connection("crm").await.expect("delete again"));
    drop(store);

    let reopened = Store::open(&path).await.expect("reopen");
    let names: Vec<String> =
        reopened.list_connections().await.expect("list").into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["warehouse"]);
}
