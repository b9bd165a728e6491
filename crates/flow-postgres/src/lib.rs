//! PostgreSQL connector for Flow Platform: the `postgres_query` source (streams a query's rows,
//! params bound, never spliced), the `postgres_insert`, `postgres_upsert` and `postgres_update`
//! sinks (batched, COPY for large loads, all writes of an execution to one database in one
//! transaction that commits only when the whole execution succeeded), and [`test_connection`].
//! Values cross between PostgreSQL types and records as docs/types.md describes.

use std::sync::Arc;

use flow_runtime::NodeType;

mod connect;
mod db;
mod error;
mod load;
mod params;
mod query;
mod sink;
mod tx;
mod types;

pub use connect::test_connection;

/// The PostgreSQL node types, for the engine's catalog.
pub fn node_types() -> Vec<Arc<dyn NodeType>> {
    vec![
        Arc::new(query::PostgresQuery),
        Arc::new(sink::PostgresInsert),
        Arc::new(sink::PostgresUpsert),
        Arc::new(sink::PostgresUpdate),
    ]
}
