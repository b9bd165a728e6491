//! Static Data: records written inline in the flow.

use async_trait::async_trait;
use flow_model::{Category, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, peek, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The records, as JSON objects.
    records: Vec<serde_json::Map<String, serde_json::Value>>,
}

pub(crate) struct StaticData;

fn records(p: &Params) -> Vec<Record> {
    p.records.iter().filter_map(|m| Record::from_json(&serde_json::Value::Object(m.clone()))).collect()
}

impl NodeSpec for StaticData {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "static_data".into(),
            title: "Static Data".into(),
            category: Category::Source,
            description: "Emits records written inline in the flow.".into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "The records")],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }

    fn output_schema(
        &self,
        _port: &str,
        params: &serde_json::Value,
        _inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        let p: Params = peek(params)?;
        Some(RecordSchema::infer(&records(&p)))
    }
}

impl NodeType for StaticData {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        let mut pending = records(&p);
        pending.reverse();
        Ok(Box::new(StaticOp { pending, batch_size: ctx.batch_size.max(1) }))
    }
}

struct StaticOp {
    /// Reversed, so batches are split off the end without shifting.
    pending: Vec<Record>,
    batch_size: usize,
}

#[async_trait]
impl Operator for StaticOp {
    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        let take = self.batch_size.min(self.pending.len());
        let mut batch = self.pending.split_off(self.pending.len() - take);
        batch.reverse();
        out.emit_batch(batch);
        Ok(!self.pending.is_empty())
    }
}
