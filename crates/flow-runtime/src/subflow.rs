//! Sub-flows: a `subflow` node runs another flow as a child execution. The child shares the
//! parent's execution resources (so its sinks write in the parent's transaction on the same
//! database), its halt (a cancel or a failure anywhere stops the whole tree) and its pause, and
//! its sinks commit or roll back only when the parent's do. Records go into the child through
//! its `input` node and come back from its `output` node over bounded channels, so a child can
//! sit in the middle of a stream. The child runs inside its `subflow` node's calls, not as tasks
//! of its own, so its records stay on the core that made them. The child's node events are
//! published on the root execution, their node ids prefixed with the path of subflow nodes
//! (`enrich/filter`).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use flow_model::{Batch, Flow};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::executor::Ran;
use crate::{
    Emitter, ExecutionReport, ExecutionRequest, ExecutionState, FetchedSecrets, NodeError, Resources, Runtime,
};

/// How deep sub-flows may nest (a flow that runs a flow that runs a flow ...).
pub const MAX_SUBFLOW_DEPTH: usize = 8;

/// The flows a run's `subflow` nodes name, resolved by the host before the run, by the
/// reference as written in the node's `flow` param.
#[derive(Debug, Clone, Default)]
pub struct Subflows(pub BTreeMap<String, Arc<ChildFlow>>);

/// One resolved sub-flow, with the sub-flows it names in turn.
#[derive(Debug)]
pub struct ChildFlow {
    pub flow: Flow,
    pub subflows: Subflows,
}

/// What an execution inherits from its place in the tree.
pub(crate) struct Frame {
    /// Events of the whole tree are published under the root's execution id.
    pub(crate) root_id: Uuid,
    /// This execution's node ids in events: `""` for the root, `"enrich/"` for the child of
    /// node `enrich`.
    pub(crate) prefix: String,
    pub(crate) depth: usize,
    /// Cancelled when this execution must stop from outside: the user's cancel for the root,
    /// the parent's halt for a child.
    pub(crate) cancel: CancellationToken,
    pub(crate) paused: watch::Receiver<bool>,
    /// Shared by every execution of the tree: one transaction per database.
    pub(crate) resources: Arc<Resources>,
    /// The ends of the channels to the parent; `None` for the root.
    pub(crate) ports: Option<ChildPorts>,
}

impl Frame {
    pub(crate) fn is_child(&self) -> bool {
        self.ports.is_some()
    }
}

/// A child's ends of its channels to the parent, each taken by the node that uses it.
pub(crate) struct ChildPorts {
    input: Mutex<Option<mpsc::Receiver<Batch>>>,
    output: Mutex<Option<mpsc::Sender<Batch>>>,
}

/// An execution's place in its tree of sub-flows, for the nodes that need it: `subflow` starts
/// children, and in a child `input` reads what the parent sends and `output` sends records
/// back. Empty when nodes are built for validation or discovery.
#[derive(Clone, Default)]
pub struct SubflowScope(Option<Arc<Scope>>);

pub(crate) struct Scope {
    pub(crate) runtime: Runtime,
    pub(crate) execution_id: Uuid,
    pub(crate) correlation_id: String,
    /// The execution's variables (the flow's, overridden by the run's): what children inherit.
    pub(crate) vars: BTreeMap<String, serde_json::Value>,
    pub(crate) subflows: Subflows,
    pub(crate) frame: Frame,
    /// Reports of this execution's children, as they conclude.
    pub(crate) children: Arc<Mutex<Vec<ExecutionReport>>>,
}

impl std::fmt::Debug for SubflowScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubflowScope").finish_non_exhaustive()
    }
}

impl SubflowScope {
    pub(crate) fn new(scope: Scope) -> Self {
        Self(Some(Arc::new(scope)))
    }

    /// For an `input` node: the records the parent sends. `None` outside a child (a flow run on
    /// its own has an empty input) and for a second `input` node.
    pub fn take_input(&self) -> Option<mpsc::Receiver<Batch>> {
        let ports = self.0.as_ref()?.frame.ports.as_ref()?;
        ports.input.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// For an `output` node: where its records go to the parent. `None` outside a child (run
    /// on its own, the records are counted and dropped).
    pub fn take_output(&self) -> Option<mpsc::Sender<Batch>> {
        let ports = self.0.as_ref()?.frame.ports.as_ref()?;
        ports.output.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Starts the sub-flow `reference` as a child execution of this one, for node `node_id`,
    /// with the parent's variables overridden by `vars` and the secrets already fetched.
    pub fn start_child(
        &self,
        node_id: &str,
        reference: &str,
        vars: BTreeMap<String, serde_json::Value>,
        secrets: FetchedSecrets,
    ) -> Result<ChildRun, NodeError> {
        let scope = self
            .0
            .as_ref()
            .ok_or_else(|| NodeError::permanent("a sub-flow runs only inside an execution"))?;
        let child = scope.subflows.0.get(reference).ok_or_else(|| {
            NodeError::params(format!("sub-flow `{reference}` was not resolved before the run"))
        })?;
        if scope.frame.depth >= MAX_SUBFLOW_DEPTH {
            return Err(NodeError::params(format!(
                "sub-flow `{reference}`: sub-flows nest deeper than {MAX_SUBFLOW_DEPTH} levels"
            )));
        }
        let runtime = scope.runtime.clone();
        let capacity = runtime.config().channel_capacity;
        let (input_tx, input_rx) = mpsc::channel(capacity);
        let (output_tx, output_rx) = mpsc::channel(capacity);
        let mut all_vars = scope.vars.clone();
        all_vars.extend(vars);
        let request = ExecutionRequest {
            id: Uuid::now_v7(),
            correlation_id: scope.correlation_id.clone(),
            flow: child.flow.clone(),
            vars: all_vars,
            secrets,
            subflows: child.subflows.clone(),
            parent: Some((scope.execution_id, node_id.to_owned())),
        };
        let frame = Frame {
            root_id: scope.frame.root_id,
            prefix: format!("{}{node_id}/", scope.frame.prefix),
            depth: scope.frame.depth + 1,
            cancel: scope.frame.cancel.clone(),
            paused: scope.frame.paused.clone(),
            resources: Arc::clone(&scope.frame.resources),
            ports: Some(ChildPorts {
                input: Mutex::new(Some(input_rx)),
                output: Mutex::new(Some(output_tx)),
            }),
        };
        // Under the current span (the parent's `subflow` node), so the child's spans join the
        // parent's trace.
        let span = tracing::info_span!(
            "execution",
            execution_id = %request.id,
            correlation_id = %request.correlation_id,
            flow = %request.flow.name,
            parent_execution_id = %scope.execution_id,
            parent_node = node_id,
        );
        // Not a task of its own: the child runs inside this node's calls, so its records stay on
        // the core that made them (handed to a task on the other core, every record was a cache
        // miss there, and a sub-flow took up to twice the time of the same nodes inline).
        let task = {
            let runtime = runtime.clone();
            let execute = async move { runtime.execute(request, frame).await }.instrument(span);
            AssertUnwindSafe(execute).catch_unwind().map(Result::ok).boxed()
        };
        Ok(ChildRun {
            reference: reference.to_owned(),
            runtime,
            input: Some(input_tx),
            output: output_rx,
            task: Some(task),
            ran: None,
            reports: Arc::clone(&scope.children),
        })
    }

    /// The resources shared by the executions of the tree.
    pub(crate) fn resources(&self) -> Arc<Resources> {
        self.0.as_ref().map(|s| Arc::clone(&s.frame.resources)).unwrap_or_default()
    }

    /// Reports of the children that concluded, taken once.
    pub(crate) fn take_children(&self) -> Vec<ExecutionReport> {
        self.0
            .as_ref()
            .map(|s| std::mem::take(&mut *s.children.lock().unwrap_or_else(PoisonError::into_inner)))
            .unwrap_or_default()
    }
}

/// A running child execution, as its `subflow` node drives it.
pub struct ChildRun {
    reference: String,
    runtime: Runtime,
    /// Closed (`None`) once the parent's input ended or the child stopped reading.
    input: Option<mpsc::Sender<Batch>>,
    output: mpsc::Receiver<Batch>,
    /// The child's execution, polled by this node's calls; it gives `None` if the child panicked.
    task: Option<BoxFuture<'static, Option<Ran>>>,
    /// The child once its nodes ended; taken when it concludes.
    ran: Option<Ran>,
    /// Where the child's report goes when it concludes: the parent's report.
    reports: Arc<Mutex<Vec<ExecutionReport>>>,
}

impl std::fmt::Debug for ChildRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildRun").field("reference", &self.reference).finish_non_exhaustive()
    }
}

/// What one wait on a child brought.
enum Wake {
    Sent,
    InputClosed,
    Output(Batch),
    Ended(Option<Box<Ran>>),
}

impl ChildRun {
    /// Hands `batch` to the child's input, passing on the child's output meanwhile so that
    /// neither side waits for the other. A child that stopped reading (it ended) drops the rest.
    /// Cancel-safe: the batch is taken only when the child has room for it.
    pub async fn send(&mut self, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        loop {
            let (Some(input), Some(task)) = (&self.input, &mut self.task) else {
                batch.clear();
                return self.outcome();
            };
            let wake = tokio::select! {
                permit = input.reserve() => match permit {
                    Ok(permit) => {
                        permit.send(std::mem::take(batch));
                        Wake::Sent
                    }
                    Err(_) => Wake::InputClosed,
                },
                Some(b) = self.output.recv() => Wake::Output(b),
                ran = task => Wake::Ended(ran.map(Box::new)),
            };
            match wake {
                Wake::Sent => {
                    self.work_on(out).await;
                    return Ok(());
                }
                Wake::InputClosed => self.input = None,
                Wake::Output(b) => out.emit_batch(b),
                Wake::Ended(ran) => self.ended(ran),
            }
        }
    }

    /// The parent's input ended: closes the child's, passes on the rest of its output, and
    /// waits for every node of the child to end. An error when the child failed.
    pub async fn finish(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        self.input = None;
        while self.produce(out).await? {}
        Ok(())
    }

    /// Passes on the child's next output; false once every node of the child ended (what a
    /// `subflow` node without input does). An error when the child failed.
    pub async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        self.input = None;
        if let Some(task) = &mut self.task {
            let wake = tokio::select! {
                Some(b) = self.output.recv() => Wake::Output(b),
                ran = task => Wake::Ended(ran.map(Box::new)),
            };
            match wake {
                Wake::Output(b) => {
                    out.emit_batch(b);
                    return Ok(true);
                }
                Wake::Ended(ran) => self.ended(ran),
                Wake::Sent | Wake::InputClosed => {}
            }
        }
        // What the child sent before it ended.
        if let Ok(b) = self.output.try_recv() {
            out.emit_batch(b);
            return Ok(true);
        }
        self.outcome().map(|()| false)
    }

    /// The parent's outcome reached the child: its sinks commit (`commit`) or roll back, and
    /// its report joins the parent's. An error when a commit failed.
    pub async fn conclude(&mut self, commit: bool) -> Result<(), NodeError> {
        self.input = None;
        if let Some(task) = self.task.take() {
            self.ran = task.await;
        }
        let Some(ran) = self.ran.take() else {
            return Err(NodeError::permanent(format!(
                "sub-flow `{}`: its task ended abnormally",
                self.reference
            )));
        };
        let report = self.runtime.conclude(ran, commit).await;
        let failed = commit && report.state != ExecutionState::Succeeded;
        let error = report.error.clone();
        self.reports.lock().unwrap_or_else(PoisonError::into_inner).push(report);
        match (failed, error) {
            (true, Some(e)) => Err(NodeError::permanent(format!("sub-flow `{}`: {e}", self.reference))),
            _ => Ok(()),
        }
    }

    /// Lets the child work until it waits, and passes on what it sent: a batch just handed to
    /// it goes through its nodes at once, while its records are in the cache.
    async fn work_on(&mut self, out: &mut Emitter) {
        if let Some(task) = &mut self.task
            && let Poll::Ready(ran) = futures::poll!(task.as_mut())
        {
            self.ended(ran.map(Box::new));
        }
        while let Ok(b) = self.output.try_recv() {
            out.emit_batch(b);
        }
    }

    fn ended(&mut self, ran: Option<Box<Ran>>) {
        self.task = None;
        self.input = None;
        self.ran = ran.map(|r| *r);
    }

    /// How the child's nodes ended, as this node's result.
    fn outcome(&self) -> Result<(), NodeError> {
        let Some(ran) = &self.ran else {
            if self.task.is_some() {
                return Ok(());
            }
            return Err(NodeError::permanent(format!(
                "sub-flow `{}`: its task ended abnormally",
                self.reference
            )));
        };
        match ran.failure() {
            Some((node, e)) => Err(NodeError::permanent(format!(
                "sub-flow `{}`: node `{node}` failed: {}",
                self.reference, e.message
            ))),
            None if ran.cancelled() => Err(NodeError::cancelled()),
            None => Ok(()),
        }
    }
}
