//! Limit: passes the first `count` records (after skipping `offset`) and drops the rest.

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec, RecordSchema};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Records to pass.
    #[schemars(range(min = 0))]
    count: u64,
    /// Records to skip first.
    #[serde(default)]
    #[schemars(range(min = 0))]
    offset: u64,
}

pub(crate) struct Limit;

impl NodeSpec for Limit {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "limit".into(),
            title: "Limit".into(),
            category: Category::Transform,
            description: "Passes the first N records (after an optional offset) and drops the rest.".into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "At most `count` records")],
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

impl NodeType for Limit {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(LimitOp { skip: p.offset, left: p.count }))
    }
}

struct LimitOp {
    skip: u64,
    left: u64,
}

#[async_trait]
impl Operator for LimitOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let mut b = std::mem::take(batch);
        let skip = self.skip.min(b.len() as u64) as usize;
        self.skip -= skip as u64;
        b.drain(..skip);
        b.truncate(self.left.min(b.len() as u64) as usize);
        self.left -= b.len() as u64;
        out.emit_batch(b);
        Ok(())
    }
}
