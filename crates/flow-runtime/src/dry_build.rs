//! Building every node's operator the way a run does, without running any: what validation uses,
//! so that a flow it calls valid can fail only on its data or on the outside world (templates,
//! expressions and scripts, params the schema cannot judge, connection settings).

use std::collections::BTreeMap;
use std::sync::Arc;

use flow_model::{Flow, FlowNode};

use crate::{NodeError, Resources, Runtime, TemplateError};

/// Why a node's operator could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<BuildError> for NodeError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Template(t) => NodeError::params(t.to_string()),
            BuildError::Node(n) => n,
        }
    }
}

impl Runtime {
    /// Renders the templates of every node for which `include` holds (with the flow's variables
    /// overridden by `vars`) and builds its operator, then drops it unrun. Returns every failure
    /// by node id, not just the first. Nothing is opened: connections are looked up and their
    /// URLs parsed, but no system is contacted.
    pub fn dry_build(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        include: impl Fn(&FlowNode) -> bool,
    ) -> Vec<(String, BuildError)> {
        // Secrets are not fetched to validate: a stand-in takes each one's place.
        let templates = Arc::new(self.templates(flow, vars, "validate", "validate").with_stand_ins());
        let execution_resources = Arc::new(Resources::default());
        flow.nodes
            .iter()
            .filter(|node| include(node))
            .filter_map(|node| {
                let ctx = self.build_context(
                    &node.id,
                    uuid::Uuid::nil(),
                    "validate",
                    &execution_resources,
                    &templates,
                );
                self.build_node(node, &ctx).err().map(|e| (node.id.clone(), e))
            })
            .collect()
    }
}
