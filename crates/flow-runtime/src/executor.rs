//! Runs one validated flow: builds an operator per node, joins them with bounded channels (one per
//! input port; the awaited send is the backpressure), runs every node as a task, and decides the
//! outcome: commit all sinks when every node succeeded, otherwise mark the rest skipped or
//! cancelled and roll every sink back.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flow_model::{Batch, Category, Flow, FlowNode, OnError, Record};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use ts_rs::TS;
use uuid::Uuid;

use crate::dry_build::BuildError;
use crate::operator::Emitter;
use crate::{
    Breakers, BuildContext, ConnectionSource, Counters, ErrorKind, Event, EventBus, EventKind,
    ExecutionEvent, ExecutionState, NodeError, NodeEvent, NodeState, NodeTypes, Operator, Resources,
    RetryPolicy, Templates,
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
    resources: Arc<Resources>,
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
}

/// State shared by the node tasks of one execution.
struct Shared {
    execution_id: Uuid,
    correlation_id: String,
    bus: EventBus,
    breakers: Arc<Breakers>,
    /// Stops every node: user cancel or a node failure.
    halt: CancellationToken,
    paused: watch::Receiver<bool>,
    failure: Mutex<Option<(usize, NodeError)>>,
    nodes: Vec<Arc<NodeStats>>,
    preview_rows: usize,
}

impl Shared {
    fn event(&self, kind: EventKind) {
        self.bus.publish(Event {
            execution_id: self.execution_id,
            correlation_id: self.correlation_id.clone(),
            at: Utc::now(),
            kind,
        });
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
                    if let Some(e) = error
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
            node: stats.id.clone(),
            state,
            attempt: stats.attempts.load(Ordering::Relaxed).max(1),
            counters: stats.counters(),
            error: error.map(|e| e.message.clone()),
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
                self.event(EventKind::NodeProgress { node: stats.id.clone(), counters: now, rate });
                last[i] = now;
            }
        }
    }

    fn state(&self, idx: usize) -> NodeState {
        self.nodes[idx].lock().state
    }

    /// Records the first failure and halts every other node.
    fn fail(&self, idx: usize, error: NodeError) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some((idx, error));
        }
        drop(failure);
        self.halt.cancel();
    }
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

/// A node while it runs.
struct NodeTask {
    idx: usize,
    op: Box<dyn Operator>,
    inputs: Vec<(usize, mpsc::Receiver<Batch>)>,
    outputs: Vec<Vec<mpsc::Sender<Batch>>>,
    emitter: Emitter,
    timeout: Duration,
    retry: RetryPolicy,
    target: Option<String>,
    paused: watch::Receiver<bool>,
}

impl NodeTask {
    async fn run(mut self, sh: Arc<Shared>) -> Box<dyn Operator> {
        sh.transition(self.idx, NodeEvent::Start, None, None);
        match self.drive(&sh).await {
            Ok(()) => sh.transition(self.idx, NodeEvent::Succeed, None, None),
            Err(e) if e.kind == ErrorKind::Cancelled => {}
            Err(e) => {
                tracing::warn!(node = %sh.nodes[self.idx].id, error = %e, "node failed");
                // Fail (and halt the others) before the outputs close, so downstream nodes see the
                // halt rather than a normal end of input.
                sh.transition(self.idx, NodeEvent::Fail, Some(&e), None);
                sh.fail(self.idx, e);
            }
        }
        self.op
    }

    async fn drive(&mut self, sh: &Shared) -> Result<(), NodeError> {
        self.attempt(sh, Step::Open).await?;
        if self.inputs.is_empty() {
            loop {
                self.pause_point(sh).await?;
                let more = self.attempt(sh, Step::Produce).await?;
                self.flush(sh).await?;
                if !more {
                    return Ok(());
                }
            }
        }
        let mut inputs: futures::stream::SelectAll<BoxStream<'static, (usize, Batch)>> =
            futures::stream::select_all(std::mem::take(&mut self.inputs).into_iter().map(|(port, rx)| {
                futures::stream::unfold(
                    rx,
                    move |mut rx| async move { rx.recv().await.map(|b| ((port, b), rx)) },
                )
                .boxed()
            }));
        loop {
            self.pause_point(sh).await?;
            let next = tokio::select! {
                biased;
                () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                Ok(()) = self.paused.changed() => continue,
                next = inputs.next() => next,
            };
            let Some((port, mut batch)) = next else { break };
            sh.nodes[self.idx].records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.attempt(sh, Step::Process(port, &mut batch)).await?;
            self.flush(sh).await?;
        }
        // A closed input may mean an upstream failure rather than the end of the data.
        if sh.halt.is_cancelled() {
            return Err(NodeError::cancelled());
        }
        self.attempt(sh, Step::Finish).await?;
        self.flush(sh).await
    }

    /// Waits here while the execution is paused.
    async fn pause_point(&mut self, sh: &Shared) -> Result<(), NodeError> {
        if !*self.paused.borrow_and_update() {
            return Ok(());
        }
        sh.transition(self.idx, NodeEvent::Pause, None, None);
        tokio::select! {
            () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
            _ = self.paused.wait_for(|p| !*p) => {}
        }
        sh.transition(self.idx, NodeEvent::Resume, None, None);
        Ok(())
    }

    /// One operator call under the node's timeout, retry policy and circuit breaker.
    async fn attempt(&mut self, sh: &Shared, mut step: Step<'_>) -> Result<bool, NodeError> {
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
            let result = tokio::select! {
                biased;
                () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                r = tokio::time::timeout(timeout, call(self.op.as_mut(), &mut step, &mut self.emitter)) => {
                    r.unwrap_or_else(|_| Err(NodeError::new(
                        ErrorKind::Timeout,
                        format!("timed out after {} ms", timeout.as_millis()),
                    )))
                }
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
            sh.transition(self.idx, NodeEvent::Retry, Some(&error), Some(delay));
            tokio::select! {
                () = sh.halt.cancelled() => return Err(NodeError::cancelled()),
                () = tokio::time::sleep(delay) => {}
            }
            sh.transition(self.idx, NodeEvent::Resume, None, None);
            attempt += 1;
        }
    }

    /// Sends what the last call emitted downstream; waiting here is the backpressure.
    async fn flush(&mut self, sh: &Shared) -> Result<(), NodeError> {
        let stats = &sh.nodes[self.idx];
        stats.errors.fetch_add(self.emitter.take_rejected(), Ordering::Relaxed);
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
        Ok(())
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
        Self { types, breakers, bus, config, connections, resources: Arc::new(Resources::default()) }
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
        self.run_inner(request, control).instrument(span).await
    }

    async fn run_inner(&self, request: ExecutionRequest, control: Control) -> ExecutionReport {
        let started_at = Utc::now();
        let flow = &request.flow;
        let n = flow.nodes.len();
        let halt = control.cancel.child_token();
        let sh = Arc::new(Shared {
            execution_id: request.id,
            correlation_id: request.correlation_id.clone(),
            bus: self.bus.clone(),
            breakers: Arc::clone(&self.breakers),
            halt: halt.clone(),
            paused: control.paused.subscribe(),
            failure: Mutex::new(None),
            nodes: flow
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
        });
        let mut exec_state = ExecutionState::Queued;
        let set_exec = |state: &mut ExecutionState, event: ExecutionEvent, error: Option<String>| {
            match state.on(event) {
                Ok(next) => *state = next,
                Err(e) => tracing::error!(error = %e, "invalid execution transition"),
            }
            sh.event(EventKind::ExecutionState { flow: flow.name.clone(), state: *state, error });
        };
        set_exec(&mut exec_state, ExecutionEvent::Start, None);

        let mut ops: Vec<Option<Box<dyn Operator>>> = match self.build_operators(&request) {
            Ok(ops) => ops.into_iter().map(Some).collect(),
            Err((idx, e)) => {
                sh.transition(idx, NodeEvent::Fail, Some(&e), None);
                sh.fail(idx, e);
                (0..n).map(|_| None).collect()
            }
        };

        // Pause/resume of the execution as a whole, announced as execution states.
        let pause_watch = {
            let sh = Arc::clone(&sh);
            let mut paused = control.paused.subscribe();
            let flow_name = flow.name.clone();
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
        };
        let ticker = self.spawn_ticker(Arc::clone(&sh));

        if !halt.is_cancelled() {
            self.run_tasks(flow, &sh, &mut ops).await;
        }
        ticker.abort();
        pause_watch.abort();
        // A last progress event per node, so subscribers end on the final counters.
        sh.publish_progress(&mut vec![Counters::default(); n], None);

        // Decide the outcome.
        let failure = sh.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cancelled = control.cancel.is_cancelled() && failure.is_none();
        if let Some((failed, _)) = &failure {
            let downstream = downstream_of(flow, *failed);
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

        let mut sinks: HashMap<usize, SinkOutcome> = HashMap::new();
        let mut commit_error: Option<(usize, NodeError)> = None;
        let is_sink = |idx: usize| {
            self.types.descriptor(&flow.nodes[idx].node_type).is_some_and(|d| d.category == Category::Sink)
        };
        let succeeded = failure.is_none() && !cancelled;
        for (idx, op) in ops.iter_mut().enumerate() {
            let Some(op) = op else { continue };
            let commit = succeeded && commit_error.is_none();
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
                    commit_error = Some((idx, e));
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
            (None, None, false) => (ExecutionEvent::Succeed, None),
        };
        set_exec(&mut exec_state, final_event, error.clone());

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
        ExecutionReport {
            id: request.id,
            correlation_id: request.correlation_id,
            flow: flow.name.clone(),
            state: exec_state,
            error,
            started_at,
            finished_at: Utc::now(),
            nodes,
            results,
        }
    }

    /// Renders templates and builds every operator; stops at the first node that cannot be built
    /// (operators already built are dropped without running, so nothing was written).
    fn build_operators(
        &self,
        request: &ExecutionRequest,
    ) -> Result<Vec<Box<dyn Operator>>, (usize, NodeError)> {
        let flow = &request.flow;
        let templates =
            Arc::new(self.templates(flow, &request.vars, &request.id.to_string(), &request.correlation_id));
        let execution_resources = Arc::new(Resources::default());
        flow.nodes
            .iter()
            .enumerate()
            .map(|(idx, node)| {
                let bctx = self.build_context(
                    &node.id,
                    request.id,
                    &request.correlation_id,
                    &execution_resources,
                    &templates,
                );
                self.build_node(node, &bctx).map_err(|e| (idx, NodeError::from(e)))
            })
            .collect()
    }

    /// The templates of an execution: the flow's variables overridden by the run's.
    pub(crate) fn templates(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
        execution_id: &str,
        correlation_id: &str,
    ) -> Templates {
        let mut all = flow.variables.clone();
        all.extend(vars.clone());
        Templates::new(all, execution_id, correlation_id, &flow.name)
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
        let index: HashMap<&str, usize> =
            flow.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        // One channel per connected input port; every edge into it holds a sender.
        let mut receivers: HashMap<(usize, usize), mpsc::Receiver<Batch>> = HashMap::new();
        let mut senders_in: HashMap<(usize, usize), mpsc::Sender<Batch>> = HashMap::new();
        let mut outputs: Vec<Vec<Vec<mpsc::Sender<Batch>>>> = Vec::with_capacity(flow.nodes.len());
        let mut descriptors = Vec::with_capacity(flow.nodes.len());
        for node in &flow.nodes {
            let desc = self.types.descriptor(&node.node_type);
            outputs.push(vec![Vec::new(); desc.as_ref().map_or(0, |d| d.outputs.len())]);
            descriptors.push(desc);
        }
        for edge in &flow.edges {
            let (Some(&from), Some(&to)) =
                (index.get(edge.from.node.as_str()), index.get(edge.to.node.as_str()))
            else {
                continue;
            };
            let (Some(fd), Some(td)) = (descriptors[from], descriptors[to]) else { continue };
            let (Some(out_port), Some(in_port)) = (
                fd.outputs.iter().position(|p| p.name == edge.from.port),
                td.inputs.iter().position(|p| p.name == edge.to.port),
            ) else {
                continue;
            };
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

        let mut handles = Vec::with_capacity(flow.nodes.len());
        for (idx, node) in flow.nodes.iter().enumerate() {
            let Some(op) = ops[idx].take() else { continue };
            let Some(desc) = descriptors[idx] else { continue };
            let mut inputs: Vec<(usize, mpsc::Receiver<Batch>)> = Vec::new();
            for port in 0..desc.inputs.len() {
                if let Some(rx) = receivers.remove(&(idx, port)) {
                    inputs.push((port, rx));
                }
            }
            let error_port = desc.outputs.iter().position(|p| p.name == "error");
            let retry = match &node.settings.retry {
                Some(r) => RetryPolicy {
                    retries: r.attempts.unwrap_or(self.config.retry.retries),
                    base_delay: r.base_delay_ms.map_or(self.config.retry.base_delay, Duration::from_millis),
                    max_delay: r.max_delay_ms.map_or(self.config.retry.max_delay, Duration::from_millis),
                },
                None => self.config.retry,
            };
            let on_error = if error_port.is_some() { node.settings.on_error } else { OnError::Fail };
            let target = op.target();
            let task = NodeTask {
                idx,
                emitter: Emitter::new(desc.outputs.len(), error_port, on_error),
                op,
                inputs,
                outputs: std::mem::take(&mut outputs[idx]),
                timeout: node.settings.timeout_ms.map_or(self.config.node_timeout, Duration::from_millis),
                retry,
                target,
                paused: sh.paused.clone(),
            };
            let span = tracing::info_span!("node", node_id = %node.id, node_type = %node.node_type);
            handles.push((idx, tokio::spawn(task.run(Arc::clone(sh)).instrument(span))));
        }
        drop(outputs);
        for (idx, handle) in handles {
            match handle.await {
                Ok(op) => ops[idx] = Some(op),
                Err(join) => {
                    let e = NodeError::permanent(format!("node task ended abnormally: {join}"));
                    sh.transition(idx, NodeEvent::Fail, Some(&e), None);
                    sh.fail(idx, e);
                }
            }
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
