//! The engine's metrics, recorded through the `metrics` facade: the runtime records, the host
//! chooses the exporter (the server installs a Prometheus recorder and renders it at `/metrics`;
//! with no recorder installed every call here does nothing). ENABLE_METRICS=false
//! (`RuntimeConfig::metrics`) skips the recording altogether.
//!
//! Everything is recorded once per execution, per node at the execution's end, or per rare event
//! (a circuit breaker changing state), never per record or per batch: the label lookups a
//! recorder does cost far more than moving a record.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `flow_executions_started_total` | counter | `flow` | executions that started running |
//! | `flow_executions_total` | counter | `flow`, `state` | executions that ended, by final state (`succeeded`, `failed`, `cancelled`) |
//! | `flow_execution_duration_seconds` | histogram | `flow`, `state` | from start to end of each execution |
//! | `flow_executions_active` | gauge | | executions running now |
//! | `flow_node_duration_seconds` | histogram | `flow`, `node`, `node_type`, `state` | from a node's start to its end, per execution (its count is the node's runs per final state) |
//! | `flow_node_records_in_total` | counter | `flow`, `node`, `node_type` | records a node received |
//! | `flow_node_records_out_total` | counter | `flow`, `node`, `node_type` | records a node emitted |
//! | `flow_node_errors_total` | counter | `flow`, `node`, `node_type` | records a node rejected (error outputs, skipped records) |
//! | `flow_node_retries_total` | counter | `flow`, `node`, `node_type` | calls retried after a retriable error |
//! | `flow_circuit_breaker_transitions_total` | counter | `target`, `state` | a breaker moving to `closed`, `open` or `half_open` |
//! | `flow_circuit_breaker_state` | gauge | `target` | a breaker's state now: 0 closed, 1 half open, 2 open |
//!
//! `node` is the node's id in its flow (a sub-flow's child execution is recorded under its own
//! flow's name). Node counters that stayed 0 are not recorded, so a series appears with the
//! first record, error or retry; executions and durations always are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metrics::{
    Counter, Histogram, Label, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};

use crate::breaker::BreakerState;
use crate::{ExecutionReport, ExecutionState, NodeState};

pub const EXECUTIONS_STARTED: &str = "flow_executions_started_total";
pub const EXECUTIONS: &str = "flow_executions_total";
pub const EXECUTION_DURATION: &str = "flow_execution_duration_seconds";
pub const EXECUTIONS_ACTIVE: &str = "flow_executions_active";
pub const NODE_DURATION: &str = "flow_node_duration_seconds";
pub const NODE_RECORDS_IN: &str = "flow_node_records_in_total";
pub const NODE_RECORDS_OUT: &str = "flow_node_records_out_total";
pub const NODE_ERRORS: &str = "flow_node_errors_total";
pub const NODE_RETRIES: &str = "flow_node_retries_total";
pub const BREAKER_TRANSITIONS: &str = "flow_circuit_breaker_transitions_total";
pub const BREAKER_STATE: &str = "flow_circuit_breaker_state";

/// Upper bounds (seconds) of the duration histograms' buckets, for exporters that take buckets
/// (the server's Prometheus recorder): from a trivial execution to an hour-long load.
pub const DURATION_BUCKETS_S: [f64; 16] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];

/// Registers every metric's help text with the installed recorder, which exporters print
/// (`# HELP` lines); call it once after installing one.
pub fn describe() {
    describe_counter!(EXECUTIONS_STARTED, "Executions that started running.");
    describe_counter!(EXECUTIONS, "Executions that ended, by final state.");
    describe_histogram!(EXECUTION_DURATION, Unit::Seconds, "From the start to the end of each execution.");
    describe_gauge!(EXECUTIONS_ACTIVE, "Executions running now.");
    describe_histogram!(NODE_DURATION, Unit::Seconds, "From a node's start to its end, per execution.");
    describe_counter!(NODE_RECORDS_IN, "Records a node received.");
    describe_counter!(NODE_RECORDS_OUT, "Records a node emitted.");
    describe_counter!(NODE_ERRORS, "Records a node rejected.");
    describe_counter!(NODE_RETRIES, "Node calls retried after a retriable error.");
    describe_counter!(BREAKER_TRANSITIONS, "Circuit breakers moving to a state.");
    describe_gauge!(BREAKER_STATE, "A circuit breaker's state: 0 closed, 1 half open, 2 open.");
}

/// What the executor counted for one node beyond its report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NodeTally {
    pub(crate) retries: u64,
}

/// An execution that started running, counted in `flow_executions_active` until it is dropped
/// (so an execution that never reaches its end is not counted forever).
#[derive(Debug)]
pub(crate) struct Active(());

impl Active {
    pub(crate) fn start(flow: &str) -> Active {
        counter!(EXECUTIONS_STARTED, "flow" => flow.to_owned()).increment(1);
        gauge!(EXECUTIONS_ACTIVE).increment(1.0);
        Active(())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        gauge!(EXECUTIONS_ACTIVE).decrement(1.0);
    }
}

/// An execution ended: its outcome, and every node's figures. `tallies` are in the order of
/// `report.nodes`.
pub(crate) fn execution_finished(report: &ExecutionReport, tallies: &[NodeTally], nodes: &NodeHandles) {
    let flow: Arc<str> = Arc::from(report.flow.as_str());
    let state = execution_state(report.state);
    counter!(EXECUTIONS, "flow" => Arc::clone(&flow), "state" => state).increment(1);
    histogram!(EXECUTION_DURATION, "flow" => Arc::clone(&flow), "state" => state)
        .record(seconds(report.started_at, report.finished_at));
    let mut cache = nodes.0.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let of_flow = cache.entry(Arc::clone(&flow)).or_default();
    for (node, tally) in report.nodes.iter().zip(tallies) {
        let fresh = of_flow.get(node.node_id.as_str()).is_some_and(|h| {
            h.node_type == node.node_type && now.duration_since(h.resolved) < HANDLE_LIFETIME
        });
        if !fresh {
            of_flow.insert(node.node_id.clone(), NodeSeries::new(&flow, &node.node_id, &node.node_type, now));
        }
        let Some(series) = of_flow.get_mut(node.node_id.as_str()) else { continue };
        let counted = [
            (0, NODE_RECORDS_IN, node.counters.records_in),
            (1, NODE_RECORDS_OUT, node.counters.records_out),
            (2, NODE_ERRORS, node.counters.errors),
            (3, NODE_RETRIES, tally.retries),
        ];
        for (slot, name, value) in counted {
            if value > 0 {
                let labels = &series.labels;
                series.counters[slot].get_or_insert_with(|| counter!(name, labels.clone())).increment(value);
            }
        }
        if let (Some(start), Some(end)) = (node.started_at, node.finished_at) {
            let state = node_state(node.state);
            let at = match series.durations.iter().position(|(s, _)| *s == state) {
                Some(at) => at,
                None => {
                    let mut labels = series.labels.clone();
                    labels.push(Label::new("state", state));
                    series.durations.push((state, histogram!(NODE_DURATION, labels)));
                    series.durations.len() - 1
                }
            };
            series.durations[at].1.record(seconds(start, end));
        }
    }
}

/// How long a resolved handle is used before it is looked up again: well within the exporter's
/// idle timeout, after which a series no handle updated is dropped from the registry (and a
/// handle kept past that would update nothing).
const HANDLE_LIFETIME: Duration = Duration::from_secs(300);

/// The nodes' metric handles, by flow and node id, resolved once per `HANDLE_LIFETIME`: looking
/// a series up copies its key and hashes it, per metric, which on a 1,000-node flow cost about
/// 10 % of the per-node overhead of an execution.
#[derive(Debug, Default)]
pub(crate) struct NodeHandles(Mutex<HashMap<Arc<str>, HashMap<String, NodeSeries>>>);

/// One node's series.
#[derive(Debug)]
pub(crate) struct NodeSeries {
    node_type: String,
    resolved: Instant,
    labels: Vec<Label>,
    /// Records in, records out, errors, retries; registered on the first non-zero value.
    counters: [Option<Counter>; 4],
    /// By final node state.
    durations: Vec<(&'static str, Histogram)>,
}

impl NodeSeries {
    fn new(flow: &Arc<str>, node: &str, node_type: &str, now: Instant) -> Self {
        Self {
            node_type: node_type.to_owned(),
            resolved: now,
            labels: vec![
                Label::new("flow", Arc::clone(flow)),
                Label::new("node", node.to_owned()),
                Label::new("node_type", node_type.to_owned()),
            ],
            counters: Default::default(),
            durations: Vec::new(),
        }
    }
}

pub(crate) fn breaker_changed(target: &str, state: BreakerState) {
    let (name, level) = match state {
        BreakerState::Closed { .. } => ("closed", 0.0),
        BreakerState::HalfOpen { .. } => ("half_open", 1.0),
        BreakerState::Open { .. } => ("open", 2.0),
    };
    counter!(BREAKER_TRANSITIONS, "target" => target.to_owned(), "state" => name).increment(1);
    gauge!(BREAKER_STATE, "target" => target.to_owned()).set(level);
}

fn seconds(start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    (end - start).to_std().map_or(0.0, |d| d.as_secs_f64())
}

fn execution_state(state: ExecutionState) -> &'static str {
    match state {
        ExecutionState::Queued => "queued",
        ExecutionState::Running => "running",
        ExecutionState::Paused => "paused",
        ExecutionState::Succeeded => "succeeded",
        ExecutionState::Failed => "failed",
        ExecutionState::Cancelled => "cancelled",
    }
}

fn node_state(state: NodeState) -> &'static str {
    match state {
        NodeState::Pending => "pending",
        NodeState::Running => "running",
        NodeState::Retrying => "retrying",
        NodeState::Paused => "paused",
        NodeState::Succeeded => "succeeded",
        NodeState::Failed => "failed",
        NodeState::Skipped => "skipped",
        NodeState::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};

    use super::*;
    use crate::{Counters, NodeReport};

    fn node(id: &str, node_type: &str, state: NodeState, counters: Counters) -> NodeReport {
        let at = Utc::now();
        NodeReport {
            node_id: id.into(),
            node_type: node_type.into(),
            state,
            attempts: 1,
            started_at: Some(at),
            finished_at: Some(at + chrono::Duration::milliseconds(20)),
            counters,
            error: None,
            error_kind: None,
            sample: Vec::new(),
            sink: None,
        }
    }

    fn report(flow: &str, state: ExecutionState, nodes: Vec<NodeReport>) -> ExecutionReport {
        let at = Utc::now();
        ExecutionReport {
            id: uuid::Uuid::now_v7(),
            correlation_id: "c".into(),
            flow: flow.into(),
            state,
            error: None,
            started_at: at,
            finished_at: at + chrono::Duration::milliseconds(250),
            nodes,
            results: BTreeMap::new(),
            parent_id: None,
            parent_node: None,
            children: Vec::new(),
        }
    }

    /// `name{labels}` -> value, labels sorted.
    fn snapshot(recorder: &DebuggingRecorder) -> BTreeMap<String, DebugValue> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (render(&key), value))
            .collect()
    }

    fn render(key: &CompositeKey) -> String {
        let mut labels: Vec<String> =
            key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        labels.sort();
        let kind = match key.kind() {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        format!("{kind} {}{{{}}}", key.key().name(), labels.join(","))
    }

    #[test]
    fn metrics_of_two_executions_are_exact() {
        let recorder = DebuggingRecorder::new();
        let handles = NodeHandles::default();
        metrics::with_local_recorder(&recorder, || {
            let counters = |i, o, e| Counters { records_in: i, records_out: o, errors: e };
            let active = Active::start("orders");
            execution_finished(
                &report(
                    "orders",
                    ExecutionState::Succeeded,
                    vec![
                        node("src", "generate_rows", NodeState::Succeeded, counters(0, 10, 0)),
                        node("keep", "filter", NodeState::Succeeded, counters(10, 4, 2)),
                    ],
                ),
                &[NodeTally { retries: 0 }, NodeTally { retries: 1 }],
                &handles,
            );
            drop(active);
            let active = Active::start("orders");
            let mut never_ran = node("keep", "filter", NodeState::Skipped, counters(0, 0, 0));
            never_ran.started_at = None;
            execution_finished(
                &report(
                    "orders",
                    ExecutionState::Failed,
                    vec![node("src", "generate_rows", NodeState::Failed, counters(0, 0, 0)), never_ran],
                ),
                &[NodeTally { retries: 0 }, NodeTally::default()],
                &handles,
            );
            drop(active);
        });
        let got = snapshot(&recorder);
        let counter = |key: &str| match got.get(&format!("counter {key}")) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("counter {key}: {other:?} in {:#?}", got.keys().collect::<Vec<_>>()),
        };
        let observations = |key: &str| match got.get(&format!("histogram {key}")) {
            Some(DebugValue::Histogram(values)) => {
                values.iter().map(|v| v.into_inner()).collect::<Vec<f64>>()
            }
            other => panic!("histogram {key}: {other:?}"),
        };
        assert_eq!(counter("flow_executions_started_total{flow=orders}"), 2);
        assert_eq!(counter("flow_executions_total{flow=orders,state=succeeded}"), 1);
        assert_eq!(counter("flow_executions_total{flow=orders,state=failed}"), 1);
        assert_eq!(observations("flow_execution_duration_seconds{flow=orders,state=succeeded}"), [0.25]);
        assert_eq!(observations("flow_execution_duration_seconds{flow=orders,state=failed}"), [0.25]);
        assert_eq!(got.get("gauge flow_executions_active{}"), Some(&DebugValue::Gauge(0.0.into())));

        let src = "flow=orders,node=src,node_type=generate_rows";
        let keep = "flow=orders,node=keep,node_type=filter";
        assert_eq!(counter(&format!("flow_node_records_out_total{{{src}}}")), 10);
        assert_eq!(counter(&format!("flow_node_records_in_total{{{keep}}}")), 10);
        assert_eq!(counter(&format!("flow_node_records_out_total{{{keep}}}")), 4);
        assert_eq!(counter(&format!("flow_node_errors_total{{{keep}}}")), 2);
        assert_eq!(counter(&format!("flow_node_retries_total{{{keep}}}")), 1);
        assert!(
            !got.contains_key(&format!("counter flow_node_records_in_total{{{src}}}")),
            "zeros are left out"
        );
        assert_eq!(observations(&format!("flow_node_duration_seconds{{{src},state=succeeded}}")), [0.02]);
        assert_eq!(observations(&format!("flow_node_duration_seconds{{{src},state=failed}}")), [0.02]);
        assert_eq!(observations(&format!("flow_node_duration_seconds{{{keep},state=succeeded}}")), [0.02]);
        assert!(
            !got.contains_key(&format!("histogram flow_node_duration_seconds{{{keep},state=skipped}}")),
            "a node that never started has no duration"
        );
    }

    #[test]
    fn breaker_metrics_follow_its_state() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            breaker_changed(
                "postgres://db:5432/app",
                BreakerState::Open { until: std::time::Instant::now() },
            );
            breaker_changed("postgres://db:5432/app", BreakerState::HalfOpen { trial_since: None });
            breaker_changed("postgres://db:5432/app", BreakerState::Closed { failures: 0 });
        });
        let got = snapshot(&recorder);
        for state in ["open", "half_open", "closed"] {
            assert_eq!(
                got.get(&format!(
                    "counter flow_circuit_breaker_transitions_total{{state={state},target=postgres://db:5432/app}}"
                )),
                Some(&DebugValue::Counter(1)),
                "{got:#?}"
            );
        }
        assert_eq!(
            got.get("gauge flow_circuit_breaker_state{target=postgres://db:5432/app}"),
            Some(&DebugValue::Gauge(0.0.into()))
        );
    }
}
