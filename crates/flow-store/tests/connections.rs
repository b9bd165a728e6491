//! Named connections stay in the SQLite file: still there after reopening the database. Saving,
//! replacing, listing and deleting are in `conformance.rs`.

use flow_model::{Connection, ConnectionKind};
use flow_store::Store;

#[tokio::test]
async fn connections_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    let connection = Connection {
        name: "warehouse".into(),
        kind: ConnectionKind::Postgres,
        url: "postgres://{{ env.USER }}@z/db".into(),
        options: serde_json::Map::new(),
    };
    let store = Store::open(&path).await.expect("open");
    store.save_connection(&connection).await.expect("save");
    drop(store);

    let reopened = Store::open(&path).await.expect("reopen");
    assert_eq!(reopened.list_connections().await.expect("list"), [connection]);
}
