//! Merge: the union of every edge connected to its input, records interleaved as they arrive.

use flow_model::{Category, NodeDescriptor, NodeSpec, PortSpec, RecordSchema};
use flow_runtime::{BuildContext, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {}

pub(crate) struct Merge;

impl NodeSpec for Merge {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "merge".into(),
            title: "Merge".into(),
            category: Category::Transform,
            description: "Union of all incoming edges; connect any number of edges to its input.".into(),
            inputs: vec![PortSpec::input("in", "Records from any number of edges").multiple()],
            outputs: vec![PortSpec::output("out", "All records")],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }

    fn output_schema(
        &self,
        _port: &str,
        _params: &serde_json::Value,
        inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        inputs.first().cloned().flatten()
    }
}

struct MergeOp;

impl Operator for MergeOp {}

impl NodeType for Merge {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let _: Params = decode(&params)?;
        Ok(Box::new(MergeOp))
    }
}
