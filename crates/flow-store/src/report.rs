//! A finished execution's report converted into the values both backends write: everything that
//! can fail is converted before the first statement, so a refused report writes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flow_runtime::{ExecutionReport, ExecutionState, NodeReport, NodeState};

use crate::codec::{CodecError, enum_text, int, json_text, parse_json};
use crate::metrics::Histogram;

pub(crate) struct ReportRows<'a> {
    pub(crate) state: String,
    /// Sum over the nodes, kept on the execution so listing needs no join.
    pub(crate) records_out: i64,
    /// What the sources read: the records out of the nodes that received none.
    pub(crate) records_read: i64,
    pub(crate) nodes: Vec<NodeValues<'a>>,
    pub(crate) samples: Vec<SampleValues>,
    pub(crate) rollup: RollupValues,
    /// The nodes' shares of their `metrics_node_minute` rows, by node id and type.
    pub(crate) node_rollups: BTreeMap<(&'a str, &'a str), NodeRollup>,
}

pub(crate) struct NodeValues<'a> {
    pub(crate) seq: i64,
    pub(crate) node: &'a NodeReport,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) records_in: i64,
    pub(crate) records_out: i64,
    pub(crate) errors: i64,
    pub(crate) error_kind: Option<String>,
    pub(crate) sink: Option<String>,
}

pub(crate) struct SampleValues {
    pub(crate) node_seq: i64,
    pub(crate) seq: i64,
    /// JSON text: key order is the record's field order.
    pub(crate) record: String,
}

/// The execution's share of its `metrics_minute` row.
pub(crate) struct RollupValues {
    /// The minute it finished in.
    pub(crate) minute: DateTime<Utc>,
    pub(crate) succeeded: i64,
    pub(crate) failed: i64,
    pub(crate) cancelled: i64,
    /// Run time: the report's finish minus its start (not the queued time the row may keep).
    pub(crate) duration_ms: i64,
    /// The duration's histogram bucket, as a histogram of one.
    pub(crate) histogram: Histogram,
}

/// A node's runs in a `metrics_node_minute` row (or a share of them: one execution's, one
/// batch's), added up.
#[derive(Debug, Default)]
pub(crate) struct NodeRollup {
    pub(crate) runs: i64,
    pub(crate) failed: i64,
    pub(crate) duration_ms_sum: i64,
    pub(crate) duration_ms_max: i64,
    pub(crate) histogram: Histogram,
    pub(crate) records_in: i64,
    pub(crate) records_out: i64,
    pub(crate) errors: i64,
}

impl NodeRollup {
    pub(crate) fn add(&mut self, other: &NodeRollup) {
        self.runs += other.runs;
        self.failed += other.failed;
        self.duration_ms_sum = self.duration_ms_sum.saturating_add(other.duration_ms_sum);
        self.duration_ms_max = self.duration_ms_max.max(other.duration_ms_max);
        self.histogram.merge(&other.histogram);
        self.records_in = self.records_in.saturating_add(other.records_in);
        self.records_out = self.records_out.saturating_add(other.records_out);
        self.errors = self.errors.saturating_add(other.errors);
    }
}

impl<'a> ReportRows<'a> {
    pub(crate) fn new(report: &'a ExecutionReport) -> Result<Self, CodecError> {
        let records_out =
            report.nodes.iter().try_fold(0u64, |sum, n| sum.checked_add(n.counters.records_out)).ok_or_else(
                || CodecError::Unstorable {
                    what: "the execution's records_out".to_owned(),
                    reason: "the sum over its nodes overflows".to_owned(),
                },
            )?;
        // A source takes no input; any other node that received nothing sent nothing either.
        let records_read: u64 =
            report.nodes.iter().filter(|n| n.counters.records_in == 0).map(|n| n.counters.records_out).sum();
        let mut nodes = Vec::with_capacity(report.nodes.len());
        let mut samples = Vec::new();
        for (seq, node) in report.nodes.iter().enumerate() {
            let seq = int("node position", seq)?;
            let what = |field: &str| format!("node {} {field}", node.node_id);
            nodes.push(NodeValues {
                seq,
                node,
                state: enum_text(&what("state"), &node.state)?,
                attempts: i64::from(node.attempts),
                records_in: int(&what("records_in"), node.counters.records_in)?,
                records_out: int(&what("records_out"), node.counters.records_out)?,
                errors: int(&what("errors"), node.counters.errors)?,
                error_kind: node.error_kind.map(|k| enum_text(&what("error_kind"), &k)).transpose()?,
                sink: node.sink.map(|s| enum_text(&what("sink"), &s)).transpose()?,
            });
            for (sample_seq, record) in node.sample.iter().enumerate() {
                samples.push(SampleValues {
                    node_seq: seq,
                    seq: int("sample position", sample_seq)?,
                    record: json_text("sample record", record)?,
                });
            }
        }
        let finished = report.finished_at.timestamp();
        let minute = DateTime::from_timestamp(finished - finished.rem_euclid(60), 0).ok_or_else(|| {
            CodecError::Unstorable {
                what: format!("finish time {}", report.finished_at),
                reason: "its minute is out of range".to_owned(),
            }
        })?;
        let is = |state| i64::from(report.state == state);
        let duration_ms = (report.finished_at - report.started_at).num_milliseconds().max(0);
        let mut histogram = Histogram::default();
        histogram.add(duration_ms);
        // Nodes that never started (skipped) did not run: they are not counted.
        let mut node_rollups: BTreeMap<(&str, &str), NodeRollup> = BTreeMap::new();
        for v in &nodes {
            let node: &'a NodeReport = v.node;
            let Some(started) = node.started_at else { continue };
            let finished = node.finished_at.unwrap_or(report.finished_at);
            let duration_ms = (finished - started).num_milliseconds().max(0);
            let mut run = NodeRollup {
                runs: 1,
                failed: i64::from(node.state == NodeState::Failed),
                duration_ms_sum: duration_ms,
                duration_ms_max: duration_ms,
                records_in: v.records_in,
                records_out: v.records_out,
                errors: v.errors,
                ..NodeRollup::default()
            };
            run.histogram.add(duration_ms);
            node_rollups.entry((node.node_id.as_str(), node.node_type.as_str())).or_default().add(&run);
        }
        Ok(Self {
            state: enum_text("execution state", &report.state)?,
            records_out: int("execution records_out", records_out)?,
            records_read: int("execution records_read", records_read)?,
            nodes,
            samples,
            rollup: RollupValues {
                minute,
                succeeded: is(ExecutionState::Succeeded),
                failed: is(ExecutionState::Failed),
                cancelled: is(ExecutionState::Cancelled),
                duration_ms,
                histogram,
            },
            node_rollups,
        })
    }
}

/// Puts each stored sample (node position, record JSON; in order) into its node (read with its
/// position, in order).
pub(crate) fn attach_samples(
    nodes: Vec<(i64, NodeReport)>,
    samples: impl Iterator<Item = (i64, String)>,
) -> Result<Vec<NodeReport>, CodecError> {
    let (seqs, mut nodes): (Vec<i64>, Vec<NodeReport>) = nodes.into_iter().unzip();
    for (node_seq, record) in samples {
        // The foreign key guarantees the node exists; seqs is sorted by the query.
        let node = seqs.binary_search(&node_seq).ok().and_then(|i| nodes.get_mut(i)).ok_or_else(|| {
            CodecError::Corrupt {
                column: "node_samples.node_seq",
                value: node_seq.to_string(),
                reason: "no such node".to_owned(),
            }
        })?;
        node.sample.push(parse_json("node_samples.record", &record)?);
    }
    Ok(nodes)
}
