//! Typed params plumbing for the PostgreSQL node types: the JSON Schema of a params struct (with
//! defaults, from schemars) and decoding params into it with errors that name the field. The same
//! helpers as in flow-nodes, which this crate cannot depend on (flow-nodes lists these nodes).

use flow_runtime::NodeError;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// The JSON Schema of `P`, inlined so it is self-contained.
pub(crate) fn schema_of<P: JsonSchema>() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let schema = settings.into_generator().into_root_schema_for::<P>();
    serde_json::to_value(schema).unwrap_or_default()
}

/// Decodes params; the error names the offending field.
pub(crate) fn decode<P: DeserializeOwned>(params: &serde_json::Value) -> Result<P, NodeError> {
    serde_path_to_error::deserialize(params)
        .map_err(|e| NodeError::params(format!("params.{}: {}", e.path(), e.inner())))
}

/// Decodes params for static analysis; `None` when they are invalid, which validation reports
/// separately.
pub(crate) fn peek<P: DeserializeOwned>(params: &serde_json::Value) -> Option<P> {
    serde_json::from_value(params.clone()).ok()
}
