//! What a node type implements: `NodeType` (describe + build) and `Operator` (the running node),
//! plus the `Emitter` operators write their output to.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use flow_model::{
    Batch, Catalog, CatalogError, Connection, NodeDescriptor, NodeSpec, OnError, Record, Value,
};

use crate::{ConnectionSource, NodeError, Resources, SubflowScope, Templates};

/// Facts about the execution a node is built for, and what it may share.
#[derive(Clone)]
pub struct BuildContext {
    pub node_id: String,
    pub execution_id: uuid::Uuid,
    pub correlation_id: String,
    /// Records per batch that sources should produce.
    pub batch_size: usize,
    /// Named connections.
    pub connections: Arc<dyn ConnectionSource>,
    /// Shared by the nodes of this execution (e.g. one transaction per connection).
    pub execution_resources: Arc<Resources>,
    /// Shared by every execution of the engine (e.g. connection pools).
    pub engine_resources: Arc<Resources>,
    /// The execution's templates, for values rendered at build time (connection URLs).
    pub templates: Arc<Templates>,
    /// The execution's place in its tree of sub-flows.
    pub subflow: SubflowScope,
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl BuildContext {
    /// The named connection with its URL rendered, or an error naming the connection.
    pub fn connection(&self, name: &str) -> Result<Connection, NodeError> {
        let mut c = self.connections.connection(name).ok_or_else(|| {
            NodeError::params(format!("connection `{name}` does not exist (define it in the connections manager or with `flow connections add`)"))
        })?;
        c.url = self
            .templates
            .render(&c.url)
            .map_err(|e| NodeError::params(format!("connection `{name}`: url template: {e}")))?;
        Ok(c)
    }
}

/// A node type: its static description (from [`NodeSpec`]) and how to build a running operator
/// from params (already validated against the schema, templates applied).
pub trait NodeType: NodeSpec {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError>;

    /// The output schema learnt from the external system (e.g. by describing a SQL query), for
    /// validation before a run; `None` when unknown or unreachable. Params are templated already.
    fn describe<'a>(
        &'a self,
        _params: &'a serde_json::Value,
        _ctx: &'a BuildContext,
    ) -> futures::future::BoxFuture<'a, Option<flow_model::RecordSchema>> {
        Box::pin(async { None })
    }
}

/// A running node. The executor calls `open` once, then either `produce` until it returns false
/// (nodes without inputs) or `process` for each incoming batch and `finish` at the end of input;
/// after the whole execution, sinks get `commit` or `rollback`. Every call is timed and may be
/// retried: a call that returns a retriable error must leave `batch` intact and is called again.
#[async_trait]
pub trait Operator: Send {
    async fn open(&mut self) -> Result<(), NodeError> {
        Ok(())
    }

    /// Produces the next output; returns false at the end of the stream.
    async fn produce(&mut self, _out: &mut Emitter) -> Result<bool, NodeError> {
        Ok(false)
    }

    /// Handles one batch from input `port` (index in the descriptor's inputs).
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        out.emit_batch(std::mem::take(batch));
        Ok(())
    }

    /// All inputs have ended.
    async fn finish(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        Ok(())
    }

    /// The whole execution succeeded: make writes permanent.
    async fn commit(&mut self) -> Result<(), NodeError> {
        Ok(())
    }

    /// The execution failed or was cancelled: undo writes.
    async fn rollback(&mut self) -> Result<(), NodeError> {
        Ok(())
    }

    /// Its calls wait on the nodes of another execution of the tree (a sub-flow's parent or
    /// child), which have timeouts of their own: no call timeout applies unless the node sets one.
    fn untimed(&self) -> bool {
        false
    }

    /// Circuit-breaker key of the external system this node talks to.
    fn target(&self) -> Option<String> {
        None
    }

    /// Records a sink keeps as the execution's result (collected after commit).
    fn take_results(&mut self) -> Option<Vec<Record>> {
        None
    }
}

/// Where an operator puts its output during one call. The executor forwards it downstream after
/// the call succeeds, so a retried call never emits twice.
#[derive(Debug)]
pub struct Emitter {
    ports: Vec<Batch>,
    error_port: Option<usize>,
    on_error: OnError,
    rejected: u64,
}

impl Emitter {
    pub(crate) fn new(outputs: usize, error_port: Option<usize>, on_error: OnError) -> Self {
        Self { ports: (0..outputs).map(|_| Vec::new()).collect(), error_port, on_error, rejected: 0 }
    }

    /// Emits to the first output.
    pub fn emit(&mut self, record: Record) {
        self.emit_to(0, record);
    }

    pub fn emit_to(&mut self, port: usize, record: Record) {
        if let Some(buf) = self.ports.get_mut(port) {
            buf.push(record);
        }
    }

    /// Emits a whole batch to the first output, without copying when nothing else is pending.
    pub fn emit_batch(&mut self, batch: Batch) {
        if let Some(buf) = self.ports.first_mut() {
            if buf.is_empty() {
                *buf = batch;
            } else {
                buf.extend(batch);
            }
        }
    }

    /// Hands over a record the node cannot process: routed to the `error` output (with an
    /// `_error` field) when the node is set to route errors, otherwise returned as the node's
    /// failure.
    pub fn reject(&mut self, mut record: Record, error: NodeError) -> Result<(), NodeError> {
        match (self.on_error, self.error_port) {
            (OnError::Route, Some(port)) => {
                record.insert("_error", Value::from(error.message));
                self.rejected += 1;
                self.emit_to(port, record);
                Ok(())
            }
            _ => Err(error),
        }
    }

    pub(crate) fn clear(&mut self) {
        for b in &mut self.ports {
            b.clear();
        }
        self.rejected = 0;
    }

    pub(crate) fn take_port(&mut self, port: usize) -> Batch {
        self.ports.get_mut(port).map(std::mem::take).unwrap_or_default()
    }

    pub(crate) fn take_rejected(&mut self) -> u64 {
        std::mem::take(&mut self.rejected)
    }

    pub(crate) fn port_count(&self) -> usize {
        self.ports.len()
    }
}

/// The node types an engine can run, by type name, with the validation catalog built from them.
pub struct NodeTypes {
    by_type: BTreeMap<String, Arc<dyn NodeType>>,
    catalog: Catalog,
}

impl std::fmt::Debug for NodeTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_type.keys()).finish()
    }
}

impl NodeTypes {
    pub fn new(types: Vec<Arc<dyn NodeType>>) -> Result<Self, CatalogError> {
        let catalog = Catalog::new(types.iter().map(|t| Arc::clone(t) as Arc<dyn NodeSpec>))?;
        let by_type = types.into_iter().map(|t| (t.descriptor().node_type, t)).collect();
        Ok(Self { by_type, catalog })
    }

    pub fn get(&self, node_type: &str) -> Option<&Arc<dyn NodeType>> {
        self.by_type.get(node_type)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The descriptor of a node type, computed once.
    pub fn descriptor(&self, node_type: &str) -> Option<&NodeDescriptor> {
        self.catalog.descriptor(node_type)
    }
}
