//! Fail: a pass-through that fails on purpose, for tests and demos. It can fail its first K
//! attempts to start (a transient error, so the retry policy applies), or fail for good once N
//! records have passed.

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec, RecordSchema};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Fail (permanently) once this many records have passed.
    #[serde(default)]
    after_records: Option<u64>,
    /// Fail the first K attempts to start, with a transient error.
    #[serde(default)]
    fail_attempts: u32,
    /// The error message.
    #[serde(default = "default_message")]
    message: String,
    /// Circuit-breaker key, standing in for an external system.
    #[serde(default)]
    target: Option<String>,
}

fn default_message() -> String {
    "failed on purpose".into()
}

pub(crate) struct Fail;

impl NodeSpec for Fail {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "fail".into(),
            title: "Fail".into(),
            category: Category::Testing,
            description: "Passes records through but fails on purpose: its first K start attempts (transient) or after N records (permanent).".into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "The records, until it fails")],
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

impl NodeType for Fail {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(FailOp { params: p, attempts: 0, passed: 0 }))
    }
}

struct FailOp {
    params: Params,
    attempts: u32,
    passed: u64,
}

#[async_trait]
impl Operator for FailOp {
    async fn open(&mut self) -> Result<(), NodeError> {
        self.attempts += 1;
        if self.attempts <= self.params.fail_attempts {
            return Err(NodeError::transient(format!("{} (attempt {})", self.params.message, self.attempts)));
        }
        Ok(())
    }

    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let mut b = std::mem::take(batch);
        if let Some(limit) = self.params.after_records {
            let room = limit.saturating_sub(self.passed) as usize;
            if b.len() >= room {
                b.truncate(room);
                self.passed += b.len() as u64;
                out.emit_batch(b);
                return Err(NodeError::permanent(format!(
                    "{} after {} records",
                    self.params.message, self.passed
                )));
            }
        }
        self.passed += b.len() as u64;
        out.emit_batch(b);
        Ok(())
    }

    fn target(&self) -> Option<String> {
        self.params.target.clone()
    }
}
