//! Sort: orders records by one or more fields. Sorting needs the whole input, so this node holds
//! it in memory, up to `max_records` (default 1,000,000); a larger input fails the node with a
//! clear error instead of exhausting memory.

use std::cmp::Ordering;

use async_trait::async_trait;
use flow_model::{Batch, Category, FieldRef, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, peek, schema_of};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SortKey {
    field: String,
    #[serde(default)]
    order: Order,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Sort keys, most significant first. Missing fields sort as null (first).
    #[schemars(length(min = 1))]
    by: Vec<SortKey>,
    /// Most records held in memory.
    #[serde(default = "default_max")]
    #[schemars(range(min = 1))]
    max_records: u64,
}

fn default_max() -> u64 {
    1_000_000
}

pub(crate) struct Sort;

impl NodeSpec for Sort {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "sort".into(),
            title: "Sort".into(),
            category: Category::Transform,
            description: "Orders records by fields (stable). Holds its whole input in memory, up to max_records (default 1,000,000).".into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "Sorted records")],
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

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<Params>(params) else { return Vec::new() };
        p.by.iter()
            .enumerate()
            .map(|(i, k)| FieldRef {
                port: "in".into(),
                field: k.field.clone(),
                param: format!("/by/{i}/field"),
                numeric: false,
            })
            .collect()
    }
}

impl NodeType for Sort {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(SortOp { params: p, held: Vec::new() }))
    }
}

struct SortOp {
    params: Params,
    held: Vec<Record>,
}

#[async_trait]
impl Operator for SortOp {
    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        if (self.held.len() + batch.len()) as u64 > self.params.max_records {
            return Err(NodeError::permanent(format!(
                "input exceeds max_records ({}); raise params.max_records or filter before sorting",
                self.params.max_records
            )));
        }
        self.held.append(batch);
        Ok(())
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        let keys = &self.params.by;
        self.held.sort_by(|a, b| {
            for k in keys {
                let null = flow_model::Value::Null;
                let o = a.get(&k.field).unwrap_or(&null).total_cmp(b.get(&k.field).unwrap_or(&null));
                let o = if k.order == Order::Desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        out.emit_batch(std::mem::take(&mut self.held));
        Ok(())
    }
}
