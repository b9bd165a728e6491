//! The flow itself: nodes, edges, variables and settings, exactly as stored in a flow file.
//! Field declaration order is the key order on disk; maps are ordered. Together they make
//! load -> save byte-identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::FLOW_FILE_VERSION;

/// A flow: nodes joined by edges, plus flow-level variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Flow {
    /// File format version; only [`FLOW_FILE_VERSION`] is read.
    pub version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Static variables, available to templates as `{{ vars.NAME }}`; run parameters override them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(type = "Record<string, unknown>", optional)]
    pub variables: BTreeMap<String, serde_json::Value>,
    pub nodes: Vec<FlowNode>,
    #[serde(default)]
    pub edges: Vec<Edge>,
}

impl Flow {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            version: FLOW_FILE_VERSION,
            name: name.into(),
            description: String::new(),
            variables: BTreeMap::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
        }
    }

    pub fn node(&self, id: &str) -> Option<&FlowNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Adds a node with the given params and returns `self`, for building flows in code.
    pub fn with_node(mut self, id: &str, node_type: &str, params: serde_json::Value) -> Self {
        self.nodes.push(FlowNode::new(id, node_type, params));
        self
    }

    /// Connects `from` (node or `node.port`) to `to` (node or `node.port`); the default ports are
    /// `out` and `in`.
    pub fn with_edge(mut self, from: &str, to: &str) -> Self {
        self.edges.push(Edge::parse(from, to));
        self
    }
}

/// One node of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct FlowNode {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    #[ts(type = "Record<string, unknown>")]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    #[serde(default, skip_serializing_if = "NodeSettings::is_default")]
    pub settings: NodeSettings,
}

impl FlowNode {
    pub fn new(id: &str, node_type: &str, params: serde_json::Value) -> Self {
        let params = match params {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        Self {
            id: id.to_owned(),
            node_type: node_type.to_owned(),
            name: String::new(),
            params,
            position: None,
            settings: NodeSettings::default(),
        }
    }

    /// The name shown to people: the given name, or the id.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() { &self.id } else { &self.name }
    }
}

/// Canvas position of a node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

/// Per-node execution settings; unset values fall back to the engine's defaults
/// (NODE_EXECUTION_TIMEOUT, RETRY_ATTEMPTS).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct NodeSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    #[serde(default, skip_serializing_if = "OnError::is_fail")]
    pub on_error: OnError,
}

impl NodeSettings {
    pub fn is_default(&self) -> bool {
        self == &NodeSettings::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
}

/// What a node does with a record it cannot process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum OnError {
    /// The node, and with it the execution, fails.
    #[default]
    Fail,
    /// The record goes to the node's `error` output with an `_error` field; the node goes on.
    Route,
}

impl OnError {
    fn is_fail(&self) -> bool {
        *self == OnError::Fail
    }
}

/// An edge from an output port to an input port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Edge {
    pub from: Endpoint,
    pub to: Endpoint,
}

impl Edge {
    fn parse(from: &str, to: &str) -> Self {
        Edge { from: Endpoint::parse(from, "out"), to: Endpoint::parse(to, "in") }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Endpoint {
    pub node: String,
    pub port: String,
}

impl Endpoint {
    fn parse(s: &str, default_port: &str) -> Self {
        match s.split_once('.') {
            Some((node, port)) => Endpoint { node: node.to_owned(), port: port.to_owned() },
            None => Endpoint { node: s.to_owned(), port: default_port.to_owned() },
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.node, self.port)
    }
}
