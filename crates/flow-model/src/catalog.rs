//! How node types describe themselves (ports, params schema, output schema) and the catalog that
//! holds them, with each params schema compiled once.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{ConnectionKind, RecordSchema};

/// Palette category of a node type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Category {
    Source,
    Transform,
    Sink,
    Control,
    Testing,
}

/// One input or output port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[ts(export)]
pub struct PortSpec {
    pub name: String,
    pub description: String,
    /// Inputs only: the flow is invalid while a required input is unconnected.
    #[serde(default)]
    pub required: bool,
    /// Inputs only: more than one edge may arrive (their records are interleaved).
    #[serde(default)]
    pub multiple: bool,
}

impl PortSpec {
    pub fn input(name: &str, description: &str) -> Self {
        Self { name: name.into(), description: description.into(), required: true, multiple: false }
    }

    pub fn output(name: &str, description: &str) -> Self {
        Self { name: name.into(), description: description.into(), required: false, multiple: false }
    }

    /// The `error` output that nodes with `on_error: route` send failed records to.
    pub fn error_output() -> Self {
        Self::output("error", "Records the node could not process, with an `_error` field")
    }

    pub fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }
}

/// Everything the UI and validation need to know about a node type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[ts(export)]
pub struct NodeDescriptor {
    #[serde(rename = "type")]
    pub node_type: String,
    pub title: String,
    pub category: Category,
    pub description: String,
    pub inputs: Vec<PortSpec>,
    pub outputs: Vec<PortSpec>,
    /// JSON Schema of the params, with defaults.
    #[ts(type = "Record<string, unknown>")]
    pub params_schema: serde_json::Value,
    /// The records' schema on the data outputs when it does not depend on the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<RecordSchema>,
}

impl NodeDescriptor {
    pub fn input(&self, name: &str) -> Option<&PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
}

/// A field of the incoming records that a node's params refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FieldRef {
    /// The input port the records arrive on.
    pub port: String,
    pub field: String,
    /// JSON pointer of the param that names the field, e.g. `/conditions/0/field`.
    pub param: String,
    /// The node does arithmetic on the field.
    pub numeric: bool,
}

/// The static side of a node type: what validation and the catalog need.
pub trait NodeSpec: Send + Sync {
    fn descriptor(&self) -> NodeDescriptor;

    /// The schema of the records on output `port`, given the params and the schemas arriving on
    /// each input (in descriptor order; `None` where unknown). `None` when it cannot be known.
    fn output_schema(
        &self,
        _port: &str,
        _params: &serde_json::Value,
        _inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        None
    }

    /// Input fields the params refer to; checked against the known upstream schema.
    fn referenced_fields(&self, _params: &serde_json::Value) -> Vec<FieldRef> {
        Vec::new()
    }

    /// The kind of named connection the node's `connection` param names, for node types that
    /// talk to an external system.
    fn connection_kind(&self) -> Option<ConnectionKind> {
        None
    }
}

/// A node type's params schema is itself invalid: a defect in that node type.
#[derive(Debug, thiserror::Error)]
#[error("node type `{node_type}`: invalid params schema: {message}")]
pub struct CatalogError {
    pub node_type: String,
    pub message: String,
}

pub(crate) struct Entry {
    pub(crate) spec: Arc<dyn NodeSpec>,
    pub(crate) descriptor: NodeDescriptor,
    pub(crate) params: jsonschema::Validator,
}

/// All node types known to validation, by type name.
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Catalog {
    pub fn new(specs: impl IntoIterator<Item = Arc<dyn NodeSpec>>) -> Result<Self, CatalogError> {
        let mut entries = BTreeMap::new();
        for spec in specs {
            let descriptor = spec.descriptor();
            let params = jsonschema::validator_for(&descriptor.params_schema).map_err(|e| CatalogError {
                node_type: descriptor.node_type.clone(),
                message: e.to_string(),
            })?;
            entries.insert(descriptor.node_type.clone(), Entry { spec, descriptor, params });
        }
        Ok(Self { entries })
    }

    /// Descriptors of every node type, sorted by type.
    pub fn descriptors(&self) -> Vec<NodeDescriptor> {
        self.entries.values().map(|e| e.descriptor.clone()).collect()
    }

    pub fn descriptor(&self, node_type: &str) -> Option<&NodeDescriptor> {
        self.entries.get(node_type).map(|e| &e.descriptor)
    }

    pub(crate) fn entry(&self, node_type: &str) -> Option<&Entry> {
        self.entries.get(node_type)
    }

    /// The kind of named connection a node type's `connection` param names.
    pub fn connection_kind(&self, node_type: &str) -> Option<ConnectionKind> {
        self.entries.get(node_type).and_then(|e| e.spec.connection_kind())
    }

    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Every way the params break the node type's schema, as (JSON pointer, message). A param
    /// that is a template string is judged after rendering, at run time, not here.
    pub fn check_params(&self, node_type: &str, params: &serde_json::Value) -> Vec<(String, String)> {
        match self.entries.get(node_type) {
            Some(e) => e
                .params
                .iter_errors(params)
                .map(|err| (err.instance_path().to_string(), err.to_string()))
                .filter(|(pointer, _)| {
                    !params.pointer(pointer).and_then(|v| v.as_str()).is_some_and(|s| s.contains("{{"))
                })
                .collect(),
            None => Vec::new(),
        }
    }
}
