//! Sub-flows: `subflow` runs another flow as a child execution (see `flow_runtime::SubflowScope`);
//! inside the child, `input` yields the records the parent's `subflow` node receives and `output`
//! sends records back out of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec};
use flow_runtime::{BuildContext, ChildRun, Emitter, NodeError, NodeType, Operator, SubflowScope, Templates};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::params::{decode, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The flow to run: a file path, relative to this flow's file (CLI, desktop), or a stored
    /// flow's id (server).
    #[schemars(length(min = 1))]
    flow: String,
    /// Variables for the child, over the ones it inherits from this execution.
    #[serde(default)]
    vars: BTreeMap<String, serde_json::Value>,
}

pub(crate) struct Subflow;

impl NodeSpec for Subflow {
    fn descriptor(&self) -> NodeDescriptor {
        let mut input = PortSpec::input("in", "Records for the sub-flow's Flow Input node");
        input.required = false;
        NodeDescriptor {
            node_type: "subflow".into(),
            title: "Sub-flow".into(),
            category: Category::Control,
            description:
                "Runs another flow as a child execution: records arriving here go to its Flow Input node, \
                          records its Flow Output node receives leave here. Its writes commit only when this \
                          whole execution succeeds."
                    .into(),
            inputs: vec![input],
            outputs: vec![PortSpec::output("out", "What the sub-flow's Flow Output node receives")],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for Subflow {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(SubflowOp {
            node_id: ctx.node_id.clone(),
            reference: p.flow,
            vars: p.vars,
            scope: ctx.subflow.clone(),
            templates: Arc::clone(&ctx.templates),
            child: None,
        }))
    }
}

struct SubflowOp {
    node_id: String,
    reference: String,
    vars: BTreeMap<String, serde_json::Value>,
    scope: SubflowScope,
    templates: Arc<Templates>,
    child: Option<ChildRun>,
}

impl SubflowOp {
    fn child(&mut self) -> Result<&mut ChildRun, NodeError> {
        self.child.as_mut().ok_or_else(|| NodeError::permanent("the sub-flow was not started"))
    }
}

#[async_trait]
impl Operator for SubflowOp {
    async fn open(&mut self) -> Result<(), NodeError> {
        // Every node of the parent is built by now: the child gets every secret it fetched.
        let secrets = self.templates.fetched();
        self.child =
            Some(self.scope.start_child(&self.node_id, &self.reference, self.vars.clone(), secrets)?);
        Ok(())
    }

    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        self.child()?.produce(out).await
    }

    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        self.child()?.send(batch, out).await
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        self.child()?.finish(out).await
    }

    async fn commit(&mut self) -> Result<(), NodeError> {
        match &mut self.child {
            Some(child) => child.conclude(true).await,
            None => Ok(()),
        }
    }

    async fn rollback(&mut self) -> Result<(), NodeError> {
        match &mut self.child {
            Some(child) => child.conclude(false).await,
            None => Ok(()),
        }
    }

    fn untimed(&self) -> bool {
        true
    }
}

/// No params.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub(crate) struct FlowInput;

impl NodeSpec for FlowInput {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "input".into(),
            title: "Flow Input".into(),
            category: Category::Source,
            description:
                "In a flow run as a sub-flow: the records its parent's Sub-flow node receives. Run on its \
                          own, the flow's input is empty."
                    .into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "The parent's records")],
            params_schema: schema_of::<NoParams>(),
            output_schema: None,
        }
    }
}

impl NodeType for FlowInput {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let _: NoParams = decode(&params)?;
        Ok(Box::new(InputOp { scope: ctx.subflow.clone(), records: None }))
    }
}

struct InputOp {
    scope: SubflowScope,
    records: Option<mpsc::Receiver<Batch>>,
}

#[async_trait]
impl Operator for InputOp {
    async fn open(&mut self) -> Result<(), NodeError> {
        self.records = self.scope.take_input();
        Ok(())
    }

    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        let Some(records) = &mut self.records else { return Ok(false) };
        match records.recv().await {
            Some(batch) => {
                out.emit_batch(batch);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn untimed(&self) -> bool {
        true
    }
}

pub(crate) struct FlowOutput;

impl NodeSpec for FlowOutput {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "output".into(),
            title: "Flow Output".into(),
            category: Category::Sink,
            description:
                "In a flow run as a sub-flow: sends its records out of the parent's Sub-flow node. Run on \
                          its own, the records are counted and dropped."
                    .into(),
            inputs: vec![PortSpec::input("in", "Records for the parent").multiple()],
            outputs: vec![],
            params_schema: schema_of::<NoParams>(),
            output_schema: None,
        }
    }
}

impl NodeType for FlowOutput {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let _: NoParams = decode(&params)?;
        Ok(Box::new(OutputOp { scope: ctx.subflow.clone(), parent: None }))
    }
}

struct OutputOp {
    scope: SubflowScope,
    parent: Option<mpsc::Sender<Batch>>,
}

#[async_trait]
impl Operator for OutputOp {
    async fn open(&mut self) -> Result<(), NodeError> {
        self.parent = self.scope.take_output();
        Ok(())
    }

    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        let Some(parent) = &self.parent else {
            batch.clear();
            return Ok(());
        };
        // Reserved first, so a call dropped while it waits leaves the batch intact.
        match parent.reserve().await {
            Ok(permit) => permit.send(std::mem::take(batch)),
            // The parent stopped reading: it ended, and so will this execution.
            Err(_) => batch.clear(),
        }
        Ok(())
    }

    async fn finish(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        self.parent = None;
        Ok(())
    }

    fn untimed(&self) -> bool {
        true
    }
}
