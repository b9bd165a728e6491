//! Delay: waits before passing each batch on. For demos, and for testing timeouts, pause and
//! cancel on a flow that takes a while.

use std::time::Duration;

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec, RecordSchema};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Wait before passing each batch, in milliseconds.
    #[schemars(range(min = 0))]
    ms: u64,
}

pub(crate) struct Delay;

impl NodeSpec for Delay {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "delay".into(),
            title: "Delay".into(),
            category: Category::Testing,
            description: "Waits `ms` milliseconds before passing each batch on.".into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "The same records, later")],
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

impl NodeType for Delay {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(DelayOp { delay: Duration::from_millis(p.ms) }))
    }
}

struct DelayOp {
    delay: Duration,
}

#[async_trait]
impl Operator for DelayOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        // The batch is taken only after the wait, so a timed-out call can be retried with it.
        tokio::time::sleep(self.delay).await;
        out.emit_batch(std::mem::take(batch));
        Ok(())
    }
}
