//! Runs one validated flow: builds an operator per node, joins them with bounded channels (one per
//! input port; the awaited send is the backpressure), runs each chain of nodes as a task (a
//! sub-flow's inside its parent's), and decides the outcome: commit all sinks when every node
//! succeeded, otherwise mark the rest skipped or cancelled and roll every sink back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_model::{Batch, Category, Flow, FlowNode, OnError, Record};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryFutureExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use ts_rs::TS;
use uuid::Uuid;

use crate::dry_build::BuildError;
use crate::metrics::{self, NodeTally};
use crate::operator::Emitter;
use crate::subflow::{Frame, Scope};
use crate::{
    Breakers, BuildContext, ConnectionSource, Counters, ErrorKind, Event, EventBus, EventKind,
    ExecutionEvent, ExecutionState, FetchedSecrets, NoSecrets, NodeError, NodeEvent, NodeState, NodeTypes,
    Operator, Redactor, Resources, RetryPolicy, SecretRef, SecretSource, SubflowScope, Subflows, Templates,
};

/// Engine-wide execution settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Per-call node timeout (NODE_EXECUTION_TIMEOUT).
    pub node_timeout: Duration,
    pub retry: RetryPolicy,
    /// Records per batch produced by sources.
    pub batch_size: usize,
    /// Batches buffered per input port.
    pub channel_capacity: usize,
    /// Output records of each node kept for the data preview.
    pub preview_rows: usize,
    /// Minimum interval between progress events of one node.
    pub progress_interval: Duration,
    /// Record metrics through the `metrics` facade (ENABLE_METRICS; `crate::metrics`).
    pub metrics: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            node_timeout: Duration::from_millis(30_000),
            retry: RetryPolicy::default(),
            batch_size: 1024,
            channel_capacity: 4,
            preview_rows: 20,
            progress_interval: Duration::from_millis(100),
            metrics: true,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub id: Uuid,
    pub correlation_id: String,
    pub flow: Flow,
    /// Run parameters; they override the flow's variables.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Secrets the pre-run check fetched already; the run fetches only the others.
    pub secrets: FetchedSecrets,
    /// The flows its `subflow` nodes run, resolved before the run.
    pub subflows: Subflows,
    /// The execution whose `subflow` node runs this one, and that node's id.
    pub parent: Option<(Uuid, String)>,
}

/// Pause, resume and cancel for one execution; cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    cancel: CancellationToken,
    paused: Arc<watch::Sender<bool>>,
}

impl Default for Control {
    fn default() -> Self {
        Self { cancel: CancellationToken::new(), paused: Arc::new(watch::channel(false).0) }
    }
}

impl Control {
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
    /// Resolves once the execution is cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }
}

/// What happened to a sink's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SinkOutcome {
    Committed,
    RolledBack,
}

/// The outcome of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NodeReport {
    pub node_id: String,
    pub node_type: String,
    pub state: NodeState,
    /// Highest attempt number any call of the node reached (1 = no retry).
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counters: Counters,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// The first output records (data preview).
    #[ts(type = "Array<Record<string, unknown>>")]
    pub sample: Vec<Record>,
    pub sink: Option<SinkOutcome>,
}

/// The outcome of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExecutionReport {
    pub id: Uuid,
    pub correlation_id: String,
    pub flow: String,
    pub state: ExecutionState,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub nodes: Vec<NodeReport>,
    /// Records kept by result sinks (Collect), by node id.
    #[ts(type = "Record<string, Array<Record<string, unknown>>>")]
    pub results: BTreeMap<String, Vec<Record>>,
    /// The execution whose `subflow` node ran this one.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// That `subflow` node's id.
    #[serde(default)]
    pub parent_node: Option<String>,
    /// The executions this one's `subflow` nodes ran.
    #[serde(default)]
    pub children: Vec<ExecutionReport>,
}

impl ExecutionReport {
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.node_id == id)
    }
}

/// Runs executions; shared by every execution of an engine.
#[derive(Clone)]
pub struct Runtime {
    types: Arc<NodeTypes>,
    breakers: Arc<Breakers>,
    bus: EventBus,
    config: RuntimeConfig,
    connections: Arc<dyn ConnectionSource>,
    secrets: Arc<dyn SecretSource>,
    resources: Arc<Resources>,
    /// The nodes' metric handles, resolved once (see `metrics`).
    node_metrics: Arc<metrics::NodeHandles>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Live state of one node, written by its task and read by the progress ticker and the report.
struct NodeStats {
    id: String,
    node_type: String,
    records_in: AtomicU64,
    records_out: AtomicU64,
    errors: AtomicU64,
    attempts: AtomicU32,
    /// Calls retried (metrics).
    retries: AtomicU64,
    inner: Mutex<NodeInner>,
}

struct NodeInner {
    state: NodeState,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<NodeError>,
    sample: Vec<Record>,
}

impl NodeStats {
    fn counters(&self) -> Counters {
        Counters {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NodeInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tally(&self) -> NodeTally {
        NodeTally { retries: self.retries.load(Ordering::Relaxed) }
    }
}

/// State shared by the node tasks of one execution.
struct Shared {
    /// This execution's own id (a sub-flow's child has one of its own).
    id: Uuid,
    /// The execution events are published under: the root's, for a sub-flow's child.
    events_id: Uuid,
    /// Prefix of node ids in events (the path of `subflow` nodes to a child, `""` for the root).
    prefix: String,
    /// A sub-flow's child: its own execution states are not published, its `subflow` node's are.
    is_child: bool,
    correlation_id: String,
    bus: EventBus,
    breakers: Arc<Breakers>,
    /// Stops every node: user cancel or a node failure.
    halt: CancellationToken,
    paused: watch::Receiver<bool>,
    failure: Mutex<Option<(usize, NodeError)>>,
    nodes: Vec<Arc<NodeStats>>,
    preview_rows: usize,
    /// Counted in `flow_executions_active` while it lives; `None` when metrics are off.
    active: Option<metrics::Active>,
}

impl Shared {
    fn event(&self, kind: EventKind) {
        self.bus.publish(Event {
            execution_id: self.events_id,
            correlation_id: self.correlation_id.clone(),
            at: Utc::now(),
            kind,
        });
    }

    /// A node's id in events.
    fn node_id(&self, stats: &NodeStats) -> String {
        format!("{}{}", self.prefix, stats.id)
    }

    /// Moves the execution's state and announces it (a child's is not announced: its `subflow`
    /// node's state stands for it).
    fn execution_state(
        &self,
        state: &mut ExecutionState,
        event: ExecutionEvent,
        flow: &str,
        error: Option<String>,
    ) {
        match state.on(event) {
            Ok(next) => *state = next,
            Err(e) => tracing::error!(error = %e, "invalid execution transition"),
        }
        if !self.is_child {
            self.event(EventKind::ExecutionState { flow: flow.to_owned(), state: *state, error });
        }
    }

    /// Applies a node transition and announces it. A refused transition is an executor defect;
    /// it is logged and the state kept.
    fn transition(
        &self,
        idx: usize,
        event: NodeEvent,
        error: Option<&NodeError>,
        retry_in: Option<Duration>,
    ) {
        let stats = &self.nodes[idx];
        let error = error.map(redacted);
        let state = {
            let mut inner = stats.lock();
            match inner.state.on(event) {
                Ok(next) => {
                    inner.state = next;
                    let now = Utc::now();
                    if event == NodeEvent::Start {
                        inner.started_at = Some(now);
                    }
                    if next.is_terminal() {
                        inner.finished_at = Some(now);
                    }
                    if let Some(e) = &error
                        && next == NodeState::Failed
                    {
                        inner.error = Some(e.clone());
                    }
                    next
                }
                Err(e) => {
                    tracing::error!(node = %stats.id, error = %e, "invalid node transition");
                    return;
                }
            }
        };
        self.event(EventKind::NodeState {
            node: self.node_id(stats),
            state,
            attempt: stats.attempts.load(Ordering::Relaxed).max(1),
            counters: stats.counters(),
            error: error.map(|e| e.message),
            retry_in_ms: retry_in.map(|d| d.as_millis() as u64),
        });
    }

    /// Sends a progress event for every node whose counters changed since `last`.
    fn publish_progress(&self, last: &mut [Counters], interval: Option<Duration>) {
        for (i, stats) in self.nodes.iter().enumerate() {
            let now = stats.counters();
            if now != last[i] {
                let rate = interval
                    .map(|d| (now.records_out.saturating_sub(last[i].records_out)) as f64 / d.as_secs_f64())
                    .unwrap_or(0.0);
                self.event(EventKind::NodeProgress { node: self.node_id(stats), counters: now, rate });
                last[i] = now;
            }
        }
    }

    fn state(&self, idx: usize) -> NodeState {
        self.nodes[idx].lock().state
    }

    /// Records the first failure and halts every other node.
    fn fail(&self, idx: usize, error: NodeError) {
        let error = redacted(&error);
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some((idx, error));
        }
        drop(failure);
        self.halt.cancel();
    }
}

/// An execution whose nodes have all ended, waiting for [`Runtime::conclude`] to commit or roll
/// back its sinks.
pub(crate) struct Ran {
    request: ExecutionRequest,
    sh: Arc<Shared>,
    ops: Vec<Option<Box<dyn Operator>>>,
    failure: Option<(usize, NodeError)>,
    cancelled: bool,
    started_at: DateTime<Utc>,
    exec_state: ExecutionState,
    scope: SubflowScope,
}

impl Ran {
    /// The node that failed first, by id, and its error.
    pub(crate) fn failure(&self) -> Option<(&str, &NodeError)> {
        self.failure.as_ref().map(|(idx, e)| (self.request.flow.nodes[*idx].id.as_str(), e))
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled
    }
}

/// `error` with every secret value the process resolved replaced by `***` (a database error
/// that echoes its URL, say), before it is stored, reported or published.
fn redacted(error: &NodeError) -> NodeError {
    NodeError { message: Redactor::global().scrub(&error.message), ..error.clone() }
}

/// One call into an operator.
enum Step<'b> {
    Open,
    Produce,
    Process(usize, &'b mut Batch),
    Finish,
}

async fn call(op: &mut dyn Operator, step: &mut Step<'_>, out: &mut Emitter) -> Result<bool, NodeError> {
    match step {
        Step::Open => op.open().await.map(|()| true),
        Step::Produce => op.produce(out).await,
        Step::Process(port, batch) => op.process(*port, batch, out).await.map(|()| true),
        Step::Finish => op.finish(out).await.map(|()| true),
    }
}

/// A node while it runs, inside its chain.
struct NodeTask {
    idx: usize,
    op: Box<dyn Operator>,
    outputs: Vec<Vec<mpsc::Sender<Batch>>>,
    /// The output port whose batches go straight into the next node of the chain, and that
    /// node's input port.
    chained: Option<(usize, usize)>,
    emitter: Emitter,
    /// Per call; `None` for nodes that wait on another execution's nodes.
    timeout: Option<Duration>,
    retry: RetryPolicy,
    target: Option<String>,
    span: tracing::Span,
}

/// Nodes joined by edges that are the only way out of one and the only way into the next, run
/// as one task: a batch one of them emits is handed to the next by a call, not over a channel
/// (operator chaining, as in Flink). Each node keeps its own calls, timeout, retries, breaker,
/// states and counters; the head alone reads channels or produces.
struct ChainTask {
    nodes: Vec<NodeTask>,
    inputs: Vec<(usize, mpsc::Receiver<Batch>)>,
    paused: watch::Receiver<bool>,
}

/// A failure of the chain's node at this position.
type ChainError = (usize, NodeError);

fn at(pos: usize) -> impl FnOnce(NodeError) -> ChainError {
    move |e| (pos, e)
}

impl ChainTask {
    async fn run(mut self, sh: Arc<Shared>) -> Vec<(usize, Box<dyn Operator>)> {
        for node in &self.nodes {
            sh.transition(node.idx, NodeEvent::Start, None, None);
        }
        match self.drive(&sh).await {
            Ok(()) => {}
            Err((_, e)) if e.kind == ErrorKind::Cancelled => {}
            Err((pos, e)) => {
                let idx = self.nodes[pos].idx;
                tracing::warn!(node = %sh.nodes[idx].id, error = %e, "node failed");
                // Fail (and halt the others) before the outputs close, so downstream nodes see the
                // halt rather than a normal end of input.
                sh.transition(idx, NodeEvent::Fail, Some(&e), None);
                sh.fail(idx, e);
            }
        }
        self.nodes.into_iter().map(|n| (n.idx, n.op)).collect()
    }

    async fn drive(&mut self, sh: &Shared) -> Result<(), ChainError> {
        for pos in 0..self.nodes.len() {
            self.nodes[pos].attempt(sh, Step::Open).await.map_err(at(pos))?;
        }
        if self.inputs.is_empty() {
            loop {
                self.pause_point(sh, 0).await?;
                let more = self.nodes[0].attempt(sh, Step::Produce).await.map_err(at(0))?;
                self.forward(sh, 0).await?;
                if !more {
                    break;
                }
            }
        } else {
            self.read_inputs(sh).await?;
        }
        sh.transition(self.nodes[0].idx, NodeEvent::Succeed, None, None);
        // The head's end of input reaches the rest of the chain in order.
        for pos in 1..self.nodes.len() {
            self.pause_point(sh, pos).await?;
            self.nodes[pos].attempt(sh, Step::Finish).await.map_err(at(pos))?;
            self.forward(sh, pos).await?;
            sh.transition(self.nodes[pos].idx, NodeEvent::Succeed, None, None);
        }
        Ok(())
    }

    /// The head's batches from its input channels, until they all end; then the head's finish.
    async fn read_inputs(&mut self, sh: &Shared) -> Result<(), ChainError> {
        let mut inputs: futures::stream::SelectAll<BoxStream<'static, (usize, Batch)>> =
            futures::stream::select_all(std::mem::take(&mut self.inputs).into_iter().map(|(port, rx)| {
                futures::stream::unfold(
                    rx,
                    move |mut rx| async move { rx.recv().await.map(|b| ((port, b), rx)) },
                )
                .boxed()
            }));
        loop {
            self.pause_point(sh, 0).await?;
            let next = tokio::select! {
                biased;
                () = sh.halt.cancelled() => return Err((0, NodeError::cancelled())),
                Ok(()) = self.paused.changed() => continue,
                next = inputs.next() => next,
            };
            let Some((port, mut batch)) = next else { break };
            sh.nodes[self.nodes[0].idx].records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.nodes[0].attempt(sh, Step::Process(port, &mut batch)).await.map_err(at(0))?;
            self.forward(sh, 0).await?;
        }
        // A closed input may mean an upstream failure rather than the end of the data.
        if sh.halt.is_cancelled() {
            return Err((0, NodeError::cancelled()));
        }
        self.nodes[0].attempt(sh, Step::Finish).await.map_err(at(0))?;
        self.forward(sh, 0).await
    }

    /// Sends what the node at `pos` emitted, and runs each next node of the chain on its share.
    async fn forward(&mut self, sh: &Shared, pos: usize) -> Result<(), ChainError> {
        let mut pos = pos;
        while let Some((port, mut batch)) = self.nodes[pos].flush(sh).await.map_err(at(pos))? {
            pos += 1;
            sh.nodes[self.nodes[pos].idx].records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.nodes[pos].attempt(sh, Step::Process(port, &mut batch)).await.map_err(at(pos))?;
        }
        Ok(())
    }

    /// Waits here while the execution is paused; the chain's nodes from `pos` on show it.
    async fn pause_point(&mut self, sh: &Shared, pos: usize) -> Result<(), ChainError> {
        if !*self.paused.borrow_and_update() {
            return Ok(());
        }
        for node in &self.nodes[pos..] {
            sh.transition(node.idx, NodeEvent::Pause, None, None);
        }
        tokio::select! {
            () = sh.halt.cancelled() => return Err((pos, NodeError::cancelled())),
            _ = self.paused.wait_for(|p| !*p) => {}
        }
        for node in &self.nodes[pos..] {
            sh.transition(node.idx, NodeEvent::Resume, None, None);
        }
        Ok(())
    }
}

impl NodeTask {
    /// One operator call under the node's timeout, retry policy and circuit breaker.
    async fn attempt(&mut self, sh: &Shared, mut step: Step<'_>) -> Result<bool, NodeError> {
        // Within a chain, batches move by calls that are ready at once, so nothing else would
        // make the task yield: spending its cooperative budget does, now and then, so that the
        // tasks it wakes (the event coalescer, the progress ticker) are not held behind it.
        tokio::task::coop::consume_budget().await;
        let stats = &sh.nodes[self.idx];
        let mut attempt: u32 = 1;
        loop {
            stats.attempts.fetch_max(attempt, Ordering::Relaxed);
            if let Some(target) = &self.target
                && let Err(open) = sh.breakers.allow(target)
            {
                return Err(NodeError::new(
                    ErrorKind::CircuitOpen,
                    format!(
                        "circuit breaker for `{target}` is open after repeated failures; next try in {} ms",
                        open.retry_after.as_millis()
                    ),
                ));
            }
            self.emitter.clear();
            let timeout = self.timeout;
            let call = call(self.op.as_mut(), &mut step, &mut self.emitter);
            let timed = async {
                match timeout {
                    Some(timeout) => tokio::time::timeout(timeout, call).await.unwrap_or_else(|_| {
                        Err(NodeError::new(
                            ErrorKind::Timeout,
                            format!("timed out after {} ms", timeout.as_millis()),
                        ))
                    }),
                    None => call.await,
                }
            };
            let result = tokio::select! {
                biased;
                () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                r = timed.instrument(self.span.clone()) => r,
            };
            let error = match result {
                Ok(more) => {
                    if let Some(t) = &self.target {
                        sh.breakers.on_success(t);
                    }
                    return Ok(more);
                }
                Err(e) => e,
            };
            if let Some(t) = &self.target
                && error.counts_for_breaker()
            {
                sh.breakers.on_failure(t);
            }
            let delay = if error.is_retriable() { self.retry.delay(attempt, fastrand::f64()) } else { None };
            let Some(delay) = delay else {
                if attempt > 1 {
                    return Err(NodeError::new(
                        error.kind,
                        format!("{} (after {attempt} attempts)", error.message),
                    ));
                }
                return Err(error);
            };
            stats.retries.fetch_add(1, Ordering::Relaxed);
            sh.transition(self.idx, NodeEvent::Retry, Some(&error), Some(delay));
            tokio::select! {
                () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                () = tokio::time::sleep(delay) => {}
            }
            sh.transition(self.idx, NodeEvent::Resume, None, None);
            attempt += 1;
        }
    }

    /// Sends what the last call emitted downstream (waiting here is the backpressure), except
    /// the batch for the next node of the chain, returned with that node's input port.
    async fn flush(&mut self, sh: &Shared) -> Result<Option<(usize, Batch)>, NodeError> {
        let stats = &sh.nodes[self.idx];
        stats.errors.fetch_add(self.emitter.take_rejected(), Ordering::Relaxed);
        let mut chained = None;
        for port in 0..self.emitter.port_count() {
            let batch = self.emitter.take_port(port);
            if batch.is_empty() {
                continue;
            }
            stats.records_out.fetch_add(batch.len() as u64, Ordering::Relaxed);
            {
                let mut inner = stats.lock();
                let room = sh.preview_rows.saturating_sub(inner.sample.len());
                inner.sample.extend(batch.iter().take(room).cloned());
            }
            if let Some((out_port, in_port)) = self.chained
                && out_port == port
            {
                chained = Some((in_port, batch));
                continue;
            }
            let senders = &mut self.outputs[port];
            let last = senders.len().saturating_sub(1);
            let mut batch = Some(batch);
            let mut closed = Vec::new();
            for (i, tx) in senders.iter().enumerate() {
                let b = if i == last {
                    batch.take().unwrap_or_default()
                } else {
                    batch.clone().unwrap_or_default()
                };
                tokio::select! {
                    biased;
                    () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                    sent = tx.send(b) => if sent.is_err() { closed.push(i) },
                }
            }
            // A receiver that is gone has stopped reading for good; stop sending to it.
            for i in closed.into_iter().rev() {
                senders.remove(i);
            }
        }
        Ok(chained)
    }
}

impl Runtime {
    pub fn new(
        types: Arc<NodeTypes>,
        breakers: Arc<Breakers>,
        bus: EventBus,
        config: RuntimeConfig,
        connections: Arc<dyn ConnectionSource>,
    ) -> Self {
        Self {
            types,
            breakers,
            bus,
            config,
            connections,
            secrets: Arc::new(NoSecrets),
            resources: Arc::new(Resources::default()),
            node_metrics: Arc::default(),
        }
    }

    /// Resolves `{{ secrets.* }}` references through `secrets` (by default, none is configured).
    #[must_use]
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretSource>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Values shared by every execution (connection pools).
    pub fn resources(&self) -> &Arc<Resources> {
        &self.resources
    }

    /// What a node of an execution is built (or described) with.
    pub(crate) fn build_context(
        &self,
        node_id: &str,
        execution_id: Uuid,
        correlation_id: &str,
        execution_resources: &Arc<Resources>,
        templates: &Arc<Templates>,
    ) -> BuildContext {
        BuildContext {
            node_id: node_id.to_owned(),
            execution_id,
            correlation_id: correlation_id.to_owned(),
            batch_size: self.config.batch_size,
            connections: Arc::clone(&self.connections),
            execution_resources: Arc::clone(execution_resources),
            engine_resources: Arc::clone(&self.resources),
            templates: Arc::clone(templates),
            subflow: SubflowScope::default(),
        }
    }

    pub fn types(&self) -> &Arc<NodeTypes> {
        &self.types
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Runs the execution to its end. The flow must have passed validation; what validation
    /// cannot see (templates, build errors) fails the execution with the node named.
    pub async fn run(&self, request: ExecutionRequest, control: Control) -> ExecutionReport {
        let span = tracing::info_span!(
            "execution",
            execution_id = %request.id,
            correlation_id = %request.correlation_id,
            flow = %request.flow.name,
        );
        let frame = Frame {
            root_id: request.id,
            prefix: String::new(),
            depth: 0,
            cancel: control.cancel.clone(),
            paused: control.paused.subscribe(),
            resources: Arc::new(Resources::default()),
            ports: None,
        };
        async {
            let ran = self.execute(request, frame).await;
            self.conclude(ran, true).await
        }
        .instrument(span)
        .await
    }

    /// Runs every node of an execution (the root or a sub-flow's child) to its end and settles
    /// their states; the sinks' writes wait for [`Runtime::conclude`].
    pub(crate) async fn execute(&self, request: ExecutionRequest, frame: Frame) -> Ran {
        let started_at = Utc::now();
        let n = request.flow.nodes.len();
        let halt = frame.cancel.child_token();
        let sh = Arc::new(Shared {
            id: request.id,
            events_id: frame.root_id,
            prefix: frame.prefix.clone(),
            is_child: frame.is_child(),
            correlation_id: request.correlation_id.clone(),
            bus: self.bus.clone(),
            breakers: Arc::clone(&self.breakers),
            halt: halt.clone(),
            paused: frame.paused.clone(),
            failure: Mutex::new(None),
            nodes: request
                .flow
                .nodes
                .iter()
                .map(|node| {
                    Arc::new(NodeStats {
                        id: node.id.clone(),
                        node_type: node.node_type.clone(),
                        records_in: AtomicU64::new(0),
                        records_out: AtomicU64::new(0),
                        errors: AtomicU64::new(0),
                        attempts: AtomicU32::new(0),
                        retries: AtomicU64::new(0),
                        inner: Mutex::new(NodeInner {
                            state: NodeState::Pending,
                            started_at: None,
                            finished_at: None,
                            error: None,
                            sample: Vec::new(),
                        }),
                    })
                })
                .collect(),
            preview_rows: self.config.preview_rows,
            active: self.config.metrics.then(|| metrics::Active::start(&request.flow.name)),
        });
        let mut exec_state = ExecutionState::Queued;
        sh.execution_state(&mut exec_state, ExecutionEvent::Start, &request.flow.name, None);

        let cancel = frame.cancel.clone();
        let mut paused = frame.paused.clone();
        let is_child = frame.is_child();
        let scope = SubflowScope::new(Scope {
            runtime: self.clone(),
            execution_id: request.id,
            correlation_id: request.correlation_id.clone(),
            vars: self.variables(&request.flow, &request.vars),
            subflows: request.subflows.clone(),
            frame,
            children: Arc::default(),
        });
        let mut ops: Vec<Option<Box<dyn Operator>>> =
            match self.build_operators(&request, &scope, &halt).await {
                Ok(ops) => ops.into_iter().map(Some).collect(),
                Err((idx, e)) => {
                    sh.transition(idx, NodeEvent::Fail, Some(&e), None);
                    sh.fail(idx, e);
                    (0..n).map(|_| None).collect()
                }
            };

        // Pause/resume of the execution as a whole, announced as execution states (a child's
        // nodes show it; its own states are not announced).
        let pause_watch = (!is_child).then(|| {
            let sh = Arc::clone(&sh);
            let flow_name = request.flow.name.clone();
            let halt = halt.clone();
            tokio::spawn(async move {
                let mut state = ExecutionState::Running;
                loop {
                    tokio::select! {
                        () = halt.cancelled() => return,
                        changed = paused.changed() => if changed.is_err() { return },
                    }
                    let event = if *paused.borrow_and_update() {
                        ExecutionEvent::Pause
                    } else {
                        ExecutionEvent::Resume
                    };
                    if let Ok(next) = state.on(event) {
                        state = next;
                        sh.event(EventKind::ExecutionState { flow: flow_name.clone(), state, error: None });
                    }
                }
            })
        });
        let ticker = self.spawn_ticker(Arc::clone(&sh));

        if !halt.is_cancelled() {
            self.run_tasks(&request.flow, &sh, &mut ops).await;
        }
        ticker.abort();
        if let Some(pause_watch) = pause_watch {
            pause_watch.abort();
        }
        // A last progress event per node, so subscribers end on the final counters.
        sh.publish_progress(&mut vec![Counters::default(); n], None);

        // Settle the states of the nodes that did not end.
        let failure = sh.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cancelled = cancel.is_cancelled() && failure.is_none();
        if let Some((failed, _)) = &failure {
            let downstream = downstream_of(&request.flow, *failed);
            for idx in 0..n {
                if !sh.state(idx).is_terminal() {
                    // Nodes that never started, or that depend on the failed one, were skipped;
                    // independent ones that were running were cancelled.
                    let state = sh.state(idx);
                    let event = if downstream.contains(&idx) || state == NodeState::Pending {
                        NodeEvent::Skip
                    } else {
                        NodeEvent::Cancel
                    };
                    sh.transition(idx, event, None, None);
                }
            }
        } else if cancelled {
            for idx in 0..n {
                if !sh.state(idx).is_terminal() {
                    sh.transition(idx, NodeEvent::Cancel, None, None);
                }
            }
        }
        Ran { request, sh, ops, failure, cancelled, started_at, exec_state, scope }
    }

    /// Ends an execution whose nodes ran: commits every sink when it succeeded and `commit`
    /// holds (a child's parent succeeded too), otherwise rolls every sink back; then reports.
    pub(crate) async fn conclude(&self, ran: Ran, commit: bool) -> ExecutionReport {
        let Ran { request, sh, mut ops, failure, cancelled, started_at, mut exec_state, scope } = ran;
        let flow = &request.flow;
        let mut sinks: HashMap<usize, SinkOutcome> = HashMap::new();
        let mut commit_error: Option<(usize, NodeError)> = None;
        let is_sink = |idx: usize| {
            self.types.descriptor(&flow.nodes[idx].node_type).is_some_and(|d| d.category == Category::Sink)
        };
        let succeeded = failure.is_none() && !cancelled;
        for (idx, op) in ops.iter_mut().enumerate() {
            let Some(op) = op else { continue };
            let commit = succeeded && commit && commit_error.is_none();
            let result = if commit {
                tokio::time::timeout(self.config.node_timeout, op.commit()).await
            } else {
                tokio::time::timeout(self.config.node_timeout, op.rollback()).await
            };
            let result = result
                .unwrap_or_else(|_| Err(NodeError::new(ErrorKind::Timeout, "commit or rollback timed out")));
            match result {
                Ok(()) if is_sink(idx) => {
                    sinks.insert(idx, if commit { SinkOutcome::Committed } else { SinkOutcome::RolledBack });
                }
                Ok(()) => {}
                Err(e) if commit => {
                    let e = NodeError::new(e.kind, format!("commit failed: {}", e.message));
                    commit_error = Some((idx, redacted(&e)));
                    sinks.insert(idx, SinkOutcome::RolledBack);
                }
                Err(e) => {
                    tracing::error!(node = %flow.nodes[idx].id, error = %e, "rollback failed");
                }
            }
        }
        if let Some((idx, e)) = &commit_error {
            // Sinks committed before this one stay committed; nothing can undo them now.
            let mut inner = sh.nodes[*idx].lock();
            inner.error = Some(e.clone());
        }

        let mut results = BTreeMap::new();
        for (idx, op) in ops.iter_mut().enumerate() {
            if let Some(op) = op
                && let Some(records) = op.take_results()
            {
                results.insert(flow.nodes[idx].id.clone(), records);
            }
        }

        let (final_event, error) = match (&failure, &commit_error, cancelled) {
            (Some((idx, e)), _, _) | (None, Some((idx, e)), _) => {
                (ExecutionEvent::Fail, Some(format!("node `{}` failed: {}", flow.nodes[*idx].id, e.message)))
            }
            (None, None, true) => (ExecutionEvent::Cancel, None),
            (None, None, false) if !commit => {
                (ExecutionEvent::Fail, Some("rolled back: the parent execution did not succeed".to_owned()))
            }
            (None, None, false) => (ExecutionEvent::Succeed, None),
        };
        sh.execution_state(&mut exec_state, final_event, &flow.name, error.clone());

        let nodes = sh
            .nodes
            .iter()
            .enumerate()
            .map(|(idx, s)| {
                let inner = s.lock();
                NodeReport {
                    node_id: s.id.clone(),
                    node_type: s.node_type.clone(),
                    state: inner.state,
                    attempts: s.attempts.load(Ordering::Relaxed),
                    started_at: inner.started_at,
                    finished_at: inner.finished_at,
                    counters: s.counters(),
                    error: inner.error.as_ref().map(|e| e.message.clone()),
                    error_kind: inner.error.as_ref().map(|e| e.kind),
                    sample: inner.sample.clone(),
                    sink: sinks.get(&idx).copied(),
                }
            })
            .collect();
        // Drop the operators (and the children's) before reporting: nothing stays open.
        drop(ops);
        let report = ExecutionReport {
            id: request.id,
            correlation_id: request.correlation_id,
            flow: flow.name.clone(),
            state: exec_state,
            error,
            started_at,
            finished_at: Utc::now(),
            nodes,
            results,
            parent_id: request.parent.as_ref().map(|(id, _)| *id),
            parent_node: request.parent.map(|(_, node)| node),
            children: scope.take_children(),
        };
        if sh.active.is_some() {
            let tallies: Vec<NodeTally> = sh.nodes.iter().map(|s| s.tally()).collect();
            metrics::execution_finished(&report, &tallies, &self.node_metrics);
        }
        report
    }

    /// Fetches the secrets each node names, renders templates and builds every operator; stops
    /// at the first node that cannot be built (operators already built are dropped without
    /// running, so nothing was written).
    async fn build_operators(
        &self,
        request: &ExecutionRequest,
        scope: &SubflowScope,
        halt: &CancellationToken,
    ) -> Result<Vec<Box<dyn Operator>>, (usize, NodeError)> {
        let flow = &request.flow;
        let templates =
            Arc::new(self.templates(flow, &request.vars, &request.id.to_string(), &request.correlation_id));
        for (reference, value) in &request.secrets.0 {
            templates.add_secret(reference.clone(), value.clone());
        }
        let mut ops = Vec::with_capacity(flow.nodes.len());
        for (idx, node) in flow.nodes.iter().enumerate() {
            self.fetch_secrets(node, &templates, halt).await.map_err(|e| (idx, e))?;
            let bctx = BuildContext {
                subflow: scope.clone(),
                ..self.build_context(
                    &node.id,
                    request.id,
                    &request.correlation_id,
                    &scope.resources(),
                    &templates,
                )
            };
            ops.push(self.build_node(node, &bctx).map_err(|e| (idx, NodeError::from(e)))?);
        }
        Ok(ops)
    }

    /// The secrets `node` names (in its params and in its connection's URL) that the execution
    /// has not fetched yet.
    fn secrets_named_by(&self, node: &FlowNode, templates: &Templates) -> BTreeSet<SecretRef> {
        let mut wanted = templates.secrets_in(&serde_json::Value::Object(node.params.clone()));
        let connection = node
            .params
            .get("connection")
            .and_then(serde_json::Value::as_str)
            .and_then(|name| templates.render(name).ok())
            .and_then(|name| self.connections.connection(&name));
        if let Some(connection) = connection {
            wanted.extend(templates.secrets_in(&serde_json::Value::String(connection.url)));
        }
        wanted
    }

    /// What discovery before a run does: one try per secret, no retries and nothing counted
    /// against the provider's breaker (the run does both, and reports the error).
    pub(crate) async fn try_fetch_secrets(&self, node: &FlowNode, templates: &Templates) {
        for reference in self.secrets_named_by(node, templates) {
            if let Ok(value) = self.secrets.resolve(&reference).await {
                templates.add_secret(reference, value);
            }
        }
    }

    /// Fetches what `secrets_named_by` names: once per secret per execution, under the node's
    /// retry policy and the circuit breaker of the secret's provider.
    async fn fetch_secrets(
        &self,
        node: &FlowNode,
        templates: &Templates,
        halt: &CancellationToken,
    ) -> Result<(), NodeError> {
        let policy = self.retry_policy(node);
        for reference in self.secrets_named_by(node, templates) {
            let provider = self.secrets.provider_of(&reference);
            let mut attempt: u32 = 1;
            let value = loop {
                if let Err(open) = self.breakers.allow(&provider) {
                    return Err(NodeError::new(
                        ErrorKind::CircuitOpen,
                        format!(
                            "secret `{reference}`: circuit breaker for `{provider}` is open after repeated failures; next try in {} ms",
                            open.retry_after.as_millis()
                        ),
                    ));
                }
                let error = match self.secrets.resolve(&reference).await {
                    Ok(value) => {
                        self.breakers.on_success(&provider);
                        break value;
                    }
                    Err(e) => e,
                };
                if error.transient {
                    self.breakers.on_failure(&provider);
                }
                let delay = if error.transient { policy.delay(attempt, fastrand::f64()) } else { None };
                let Some(delay) = delay else {
                    let kind = if error.transient { ErrorKind::Transient } else { ErrorKind::Params };
                    let tries =
                        if attempt > 1 { format!(" (after {attempt} attempts)") } else { String::new() };
                    return Err(NodeError::new(kind, format!("{error}{tries}")));
                };
                tokio::select! {
                    () = halt.cancelled() => return Err(NodeError::cancelled()),
                    () = tokio::time::sleep(delay) => {}
                }
                attempt += 1;
            };
            templates.add_secret(reference, value);
        }
        Ok(())
    }

    /// The variables of an execution: the flow's, overridden by the run's.
    fn variables(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> BTreeMap<String, serde_json::Value> {
        let mut all = flow.variables.clone();
        all.extend(vars.clone());
        all
    }

    /// The templates of an execution, on its variables.
    pub(crate) fn templates(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        execution_id: &str,
        correlation_id: &str,
    ) -> Templates {
        Templates::new(self.variables(flow, vars), execution_id, correlation_id, &flow.name)
    }

    /// Renders one node's templates and builds its operator.
    pub(crate) fn build_node(
        &self,
        node: &FlowNode,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Operator>, BuildError> {
        let ty = self
            .types
            .get(&node.node_type)
            .ok_or_else(|| NodeError::params(format!("unknown node type `{}`", node.node_type)))?;
        let params = ctx.templates.render_params(&serde_json::Value::Object(node.params.clone()))?;
        Ok(ty.build(params, ctx)?)
    }

    async fn run_tasks(&self, flow: &Flow, sh: &Arc<Shared>, ops: &mut [Option<Box<dyn Operator>>]) {
        let n = flow.nodes.len();
        let index: HashMap<&str, usize> =
            flow.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        let descriptors: Vec<_> =
            flow.nodes.iter().map(|node| self.types.descriptor(&node.node_type)).collect();
        // Edges as (from, output port, to, input port).
        let edges: Vec<(usize, usize, usize, usize)> = flow
            .edges
            .iter()
            .filter_map(|edge| {
                let from = *index.get(edge.from.node.as_str())?;
                let to = *index.get(edge.to.node.as_str())?;
                let out_port = descriptors[from]?.outputs.iter().position(|p| p.name == edge.from.port)?;
                let in_port = descriptors[to]?.inputs.iter().position(|p| p.name == edge.to.port)?;
                Some((from, out_port, to, in_port))
            })
            .collect();
        let (mut out_degree, mut in_degree) = (vec![0usize; n], vec![0usize; n]);
        for &(from, _, to, _) in &edges {
            out_degree[from] += 1;
            in_degree[to] += 1;
        }
        // An edge that is the only way out of its node and the only way into the next is a call
        // within one chain (unless the next talks to an external system, below); every other
        // input port is one channel, and every edge into it holds a sender, so fan-in is a
        // channel with several senders.
        let mut next: Vec<Option<(usize, usize, usize)>> = vec![None; n];
        let mut chained_into = vec![false; n];
        let mut receivers: HashMap<(usize, usize), mpsc::Receiver<Batch>> = HashMap::new();
        let mut senders_in: HashMap<(usize, usize), mpsc::Sender<Batch>> = HashMap::new();
        let mut outputs: Vec<Vec<Vec<mpsc::Sender<Batch>>>> =
            descriptors.iter().map(|d| vec![Vec::new(); d.map_or(0, |d| d.outputs.len())]).collect();
        // A node that talks to an external system (it has a breaker target: a database sink,
        // say) heads a chain of its own, so that its waits on the network overlap the work of
        // the nodes before it: chaining a COPY sink to its source made SPEC case 1 30 % slower.
        let talks_out: Vec<bool> =
            ops.iter().map(|op| op.as_ref().is_some_and(|op| op.target().is_some())).collect();
        for &(from, out_port, to, in_port) in &edges {
            if out_degree[from] == 1 && in_degree[to] == 1 && !talks_out[to] {
                next[from] = Some((to, out_port, in_port));
                chained_into[to] = true;
                continue;
            }
            let tx = senders_in
                .entry((to, in_port))
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(self.config.channel_capacity);
                    receivers.insert((to, in_port), rx);
                    tx
                })
                .clone();
            outputs[from][out_port].push(tx);
        }
        drop(senders_in);

        let mut handles = Vec::new();
        for head in (0..n).filter(|&i| !chained_into[i]) {
            let mut nodes: Vec<NodeTask> = Vec::new();
            let mut cur = Some(head);
            while let Some(idx) = cur {
                let (Some(op), Some(desc)) = (ops[idx].take(), descriptors[idx]) else { break };
                let link = next[idx];
                nodes.push(self.node_task(
                    sh,
                    &flow.nodes[idx],
                    idx,
                    (op, desc),
                    std::mem::take(&mut outputs[idx]),
                    link,
                ));
                cur = link.map(|(to, _, _)| to);
            }
            // A chain cut short by a node without an operator ends before it.
            if cur.is_some()
                && let Some(last) = nodes.last_mut()
            {
                last.chained = None;
            }
            if nodes.is_empty() {
                continue;
            }
            let inputs: Vec<(usize, mpsc::Receiver<Batch>)> = (0..descriptors[head]
                .map_or(0, |d| d.inputs.len()))
                .filter_map(|port| receivers.remove(&(head, port)).map(|rx| (port, rx)))
                .collect();
            let members: Vec<usize> = nodes.iter().map(|t| t.idx).collect();
            let chain = ChainTask { nodes, inputs, paused: sh.paused.clone() }.run(Arc::clone(sh));
            // A child's chains run in its parent's task (see `subflow`); a root's each in a task
            // of its own.
            let chain: BoxFuture<'static, Result<_, String>> = if sh.is_child {
                AssertUnwindSafe(chain).catch_unwind().map_err(|_| "it panicked".to_owned()).boxed()
            } else {
                tokio::spawn(chain).map_err(|join| join.to_string()).boxed()
            };
            handles.push((members, chain));
        }
        drop(outputs);
        let (members, chains): (Vec<_>, Vec<_>) = handles.into_iter().unzip();
        for (members, ended) in members.into_iter().zip(futures::future::join_all(chains).await) {
            match ended {
                Ok(done) => {
                    for (idx, op) in done {
                        ops[idx] = Some(op);
                    }
                }
                Err(why) => {
                    let e = NodeError::permanent(format!("node task ended abnormally: {why}"));
                    if let Some(&idx) = members.iter().find(|&&idx| !sh.state(idx).is_terminal()) {
                        sh.transition(idx, NodeEvent::Fail, Some(&e), None);
                        sh.fail(idx, e);
                    }
                }
            }
        }
    }

    /// The node's retry settings, or the engine's.
    fn retry_policy(&self, node: &FlowNode) -> RetryPolicy {
        match &node.settings.retry {
            Some(r) => RetryPolicy {
                retries: r.attempts.unwrap_or(self.config.retry.retries),
                base_delay: r.base_delay_ms.map_or(self.config.retry.base_delay, Duration::from_millis),
                max_delay: r.max_delay_ms.map_or(self.config.retry.max_delay, Duration::from_millis),
            },
            None => self.config.retry,
        }
    }

    /// A node's task: its settings (or the engine's defaults) and its outputs.
    fn node_task(
        &self,
        sh: &Shared,
        node: &FlowNode,
        idx: usize,
        (op, desc): (Box<dyn Operator>, &flow_model::NodeDescriptor),
        outputs: Vec<Vec<mpsc::Sender<Batch>>>,
        next: Option<(usize, usize, usize)>,
    ) -> NodeTask {
        let error_port = desc.outputs.iter().position(|p| p.name == "error");
        let retry = self.retry_policy(node);
        let on_error = if error_port.is_some() { node.settings.on_error } else { OnError::Fail };
        let timeout = match node.settings.timeout_ms {
            Some(ms) => Some(Duration::from_millis(ms)),
            None if op.untimed() => None,
            None => Some(self.config.node_timeout),
        };
        NodeTask {
            idx,
            emitter: Emitter::new(desc.outputs.len(), error_port, on_error),
            target: op.target(),
            op,
            outputs,
            chained: next.map(|(_, out_port, in_port)| (out_port, in_port)),
            timeout,
            retry,
            // The ids too, so an exported node span is found by them without its parent.
            span: tracing::info_span!(
                "node",
                node_id = %node.id,
                node_type = %node.node_type,
                execution_id = %sh.id,
                correlation_id = %sh.correlation_id,
            ),
        }
    }

    /// Sends coalesced progress events: at most one per node per interval, only when changed.
    fn spawn_ticker(&self, sh: Arc<Shared>) -> tokio::task::JoinHandle<()> {
        let interval = self.config.progress_interval;
        tokio::spawn(async move {
            let mut last = vec![Counters::default(); sh.nodes.len()];
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                sh.publish_progress(&mut last, Some(interval));
            }
        })
    }
}

/// Indexes of the nodes reachable from `start` along edges (excluding `start`).
fn downstream_of(flow: &Flow, start: usize) -> HashSet<usize> {
    let index: HashMap<&str, usize> =
        flow.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for e in flow.edges.iter().filter(|e| e.from.node == flow.nodes[i].id) {
            if let Some(&t) = index.get(e.to.node.as_str())
                && seen.insert(t)
            {
                queue.push_back(t);
            }
        }
    }
    seen
}
