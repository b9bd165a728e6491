//! The flow model: records and values, the versioned flow file, node descriptors and the
//! validation of a flow against a catalog. Pure: no I/O beyond reading a flow file, no async.

mod catalog;
mod connection;
mod file;
mod flow;
mod schema;
mod validate;
mod value;

pub use catalog::{Catalog, CatalogError, Category, FieldRef, NodeDescriptor, NodeSpec, PortSpec};
pub use connection::{Connection, ConnectionKind, ConnectionTest, redact_url};
pub use file::{FlowFileError, load_flow, parse_flow, save_flow, to_canonical_json};
pub use flow::{Edge, Endpoint, Flow, FlowNode, NodeSettings, OnError, Position, RetrySettings};
pub use schema::{FieldSchema, FieldType, RecordSchema};
pub use validate::{Problem, ProblemKind, Suggestion, ValidationReport};
pub use value::{Batch, Record, Value};

/// The flow file version this build reads and writes.
pub const FLOW_FILE_VERSION: u32 = 1;
