//! MongoDB connector: the `mongodb_find` and `mongodb_aggregate` sources (streaming the server
//! cursor), the `mongodb_insert` and `mongodb_update` sinks (all-or-nothing per execution, by
//! compensation or in a transaction), the BSON <-> record value mapping, and the connection test.
//! One driver client per connection URL is shared engine-wide.

use std::sync::Arc;

use flow_runtime::NodeType;

mod bson_value;
mod connect;
mod health;
mod insert;
mod params;
mod source;
mod update;
mod write;

pub use health::test_connection;

/// The MongoDB node types, for the engine's catalog.
pub fn node_types() -> Vec<Arc<dyn NodeType>> {
    vec![
        Arc::new(source::Find),
        Arc::new(source::Aggregate),
        Arc::new(insert::Insert),
        Arc::new(update::Update),
    ]
}
