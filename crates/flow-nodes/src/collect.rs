//! Collect / Log sink: counts every record, keeps the first `max_records` as the execution's
//! result, and optionally logs each record. Its kept records become the result only on commit;
//! a rollback discards them, like a database sink's writes.

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec, Record};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Records kept as the execution's result (the rest are only counted).
    #[serde(default = "default_max")]
    #[schemars(range(min = 0))]
    max_records: usize,
    /// Log every record (tracing, level info).
    #[serde(default)]
    log: bool,
}

fn default_max() -> usize {
    1000
}

pub(crate) struct Collect;

impl NodeSpec for Collect {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "collect".into(),
            title: "Collect / Log".into(),
            category: Category::Sink,
            description: "Counts records, keeps the first max_records as the execution's result, optionally logs each one.".into(),
            inputs: vec![PortSpec::input("in", "Records").multiple()],
            outputs: vec![],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for Collect {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(CollectOp { node: ctx.node_id.clone(), params: p, kept: Vec::new(), committed: None }))
    }
}

struct CollectOp {
    node: String,
    params: Params,
    kept: Vec<Record>,
    committed: Option<Vec<Record>>,
}

#[async_trait]
impl Operator for CollectOp {
    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        if self.params.log {
            for r in batch.iter() {
                tracing::info!(node = %self.node, record = %r.to_json(), "record");
            }
        }
        let room = self.params.max_records.saturating_sub(self.kept.len());
        self.kept.extend(batch.drain(..).take(room));
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), NodeError> {
        self.committed = Some(std::mem::take(&mut self.kept));
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), NodeError> {
        self.kept.clear();
        Ok(())
    }

    fn take_results(&mut self) -> Option<Vec<Record>> {
        self.committed.take()
    }
}
