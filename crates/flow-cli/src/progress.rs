//! The terminal progress display of `flow run`: one line per node with its state, counters and
//! rate, then a summary table.

use std::collections::HashMap;

use flow_engine::{Event, EventKind, ExecutionReport, NodeState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Display {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

fn symbol(state: NodeState) -> &'static str {
    match state {
        NodeState::Pending => "·",
        NodeState::Running => "▶",
        NodeState::Retrying => "↻",
        NodeState::Paused => "‖",
        NodeState::Succeeded => "✔",
        NodeState::Failed => "✘",
        NodeState::Skipped => "↷",
        NodeState::Cancelled => "■",
    }
}

impl Display {
    pub(crate) fn new(nodes: &[String]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let width = nodes.iter().map(String::len).max().unwrap_or(4);
        let style = ProgressStyle::with_template(&format!("{{spinner}} {{prefix:<{width}}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = nodes
            .iter()
            .map(|id| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_prefix(id.clone());
                bar.set_message("· pending");
                (id.clone(), bar)
            })
            .collect();
        Self { multi, bars }
    }

    /// Also the nodes of sub-flows, by path (`normalize/keep`), as events name them.
    pub(crate) fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::NodeState { node, state, counters, error, attempt, retry_in_ms } => {
                let Some(bar) = self.bars.get(node) else { return };
                let mut msg = format!(
                    "{} {:?}  in {}  out {}",
                    symbol(*state),
                    state,
                    counters.records_in,
                    counters.records_out
                );
                if let Some(ms) = retry_in_ms {
                    msg.push_str(&format!("  attempt {attempt}, retry in {ms} ms"));
                }
                if let Some(e) = error {
                    msg.push_str(&format!("  {e}"));
                }
                if *state == NodeState::Running {
                    bar.enable_steady_tick(std::time::Duration::from_millis(100));
                }
                if state.is_terminal() {
                    bar.finish_with_message(msg);
                } else {
                    bar.set_message(msg);
                }
            }
            EventKind::NodeProgress { node, counters, rate } => {
                if let Some(bar) = self.bars.get(node)
                    && !bar.is_finished()
                {
                    bar.set_message(format!(
                        "▶ Running  in {}  out {}  {:.0} rec/s",
                        counters.records_in, counters.records_out, rate
                    ));
                }
            }
            EventKind::ExecutionState { .. } => {}
        }
    }

    pub(crate) fn finish(self, report: &ExecutionReport) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
        let _ = self.multi.clear();
        let secs = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
        eprintln!("execution {} {:?} in {secs:.3} s", report.id, report.state);
        eprintln!(
            "{:<24} {:<10} {:>12} {:>12} {:>8} {:>8}",
            "node", "state", "in", "out", "errors", "attempts"
        );
        print_nodes(report, "");
        if let Some(e) = &report.error {
            eprintln!("failed: {e}");
        }
    }
}

/// One row per node of `report`, then the rows of its sub-flows' executions under their paths.
fn print_nodes(report: &ExecutionReport, prefix: &str) {
    for n in &report.nodes {
        eprintln!(
            "{:<24} {:<10} {:>12} {:>12} {:>8} {:>8}",
            format!("{prefix}{}", n.node_id),
            format!("{:?}", n.state),
            n.counters.records_in,
            n.counters.records_out,
            n.counters.errors,
            n.attempts
        );
        if let Some(e) = &n.error {
            eprintln!("    error: {e}");
        }
    }
    for child in &report.children {
        let node = child.parent_node.as_deref().unwrap_or_default();
        print_nodes(child, &format!("{prefix}{node}/"));
    }
}
