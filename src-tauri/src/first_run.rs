//! The first start on a store without named connections: the connections the example flows use,
//! `postgres` and `mongodb`, are created from POSTGRESQL_URL and MONGODB_URL, or the documented
//! local defaults, so an example is one click from running. A store that has any connection is
//! the user's own and is left alone. What was done comes back as lines for the UI's notices.

use flow_engine::{Connection, ConnectionKind, Engine};

/// The machine's own PostgreSQL (trust auth, database `test`).
pub(crate) const DEFAULT_POSTGRESQL_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The local MongoDB-wire server `scripts/start-mongodb` starts.
pub(crate) const DEFAULT_MONGODB_URL: &str = "mongodb://127.0.0.1:27018/sample?directConnection=true";

/// Creates the example connections when the store has none; returns what it did.
pub(crate) async fn create_example_connections(engine: &Engine) -> Vec<String> {
    if !engine.list_connections().is_empty() {
        return Vec::new();
    }
    let wanted = [
        ("postgres", ConnectionKind::Postgres, "POSTGRESQL_URL", DEFAULT_POSTGRESQL_URL),
        ("mongodb", ConnectionKind::Mongodb, "MONGODB_URL", DEFAULT_MONGODB_URL),
    ];
    let mut notes = Vec::new();
    for (name, kind, variable, default) in wanted {
        let (url, from) = match std::env::var(variable) {
            Ok(url) if !url.trim().is_empty() => (url, variable),
            _ => (default.to_owned(), "the local default"),
        };
        let connection = Connection { name: name.to_owned(), kind, url, options: serde_json::Map::new() };
        let redacted = connection.redacted_url();
        notes.push(match engine.save_connection(connection).await {
            Ok(()) => format!(
                "Created connection `{name}` ({redacted}) from {from} for the example flows; edit it in Connections."
            ),
            Err(e) => format!("Could not create connection `{name}` for the example flows: {e}"),
        });
    }
    for note in &notes {
        tracing::info!("{note}");
    }
    notes
}

#[cfg(test)]
mod tests {
    use flow_engine::{EngineConfig, HistoryLocation};

    use super::*;

    async fn engine() -> Engine {
        let config = EngineConfig { history: HistoryLocation::InMemory, ..EngineConfig::default() };
        Engine::open(config).await.expect("engine")
    }

    #[tokio::test]
    async fn an_empty_store_gets_both_connections_once() {
        let engine = engine().await;
        let notes = create_example_connections(&engine).await;
        assert_eq!(notes.len(), 2, "{notes:?}");
        let names: Vec<String> = engine.list_connections().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["mongodb", "postgres"]);
        assert!(create_example_connections(&engine).await.is_empty(), "created twice");
    }

    #[tokio::test]
    async fn a_store_with_connections_is_left_alone() {
        let engine = engine().await;
        let mine = Connection {
            name: "warehouse".into(),
            kind: ConnectionKind::Postgres,
            url: "postgres://me@db/warehouse".into(),
            options: serde_json::Map::new(),
        };
        engine.save_connection(mine).await.expect("saved");
        assert!(create_example_connections(&engine).await.is_empty());
        assert_eq!(engine.list_connections().len(), 1);
    }
}
