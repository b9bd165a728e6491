//! `subflow_overhead_pct`: the throughput a Filter -> Field Mapper pair loses when it runs as a
//! sub-flow in the middle of the stream (records cross two more channels, to the child and
//! back) against the same nodes inline, best of 3 runs each taking turns, on the same engine.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use flow_engine::{Engine, ExecutionState, Flow, FlowOrigin, RunOptions, save_flow};
use serde_json::json;

use crate::{filter_map_flow, timed};

pub(crate) async fn measure(engine: &Engine, rows: u64) -> Result<BTreeMap<String, f64>> {
    let dir = std::env::temp_dir().join(format!("flow-bench-subflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let parent = write_tree(&dir, rows)?;
    let measured = alternating(engine, rows, &parent).await;
    std::fs::remove_dir_all(&dir)?;
    let (inline, child) = measured?;
    Ok(BTreeMap::from([
        ("subflow_records_per_s".into(), rows as f64 / child),
        ("subflow_overhead_pct".into(), (child / inline - 1.0) * 100.0),
    ]))
}

/// Best wall times of the flow inline and as parent and child, taking turns (see `main`).
async fn alternating(engine: &Engine, rows: u64, parent: &Path) -> Result<(f64, f64)> {
    let (mut inline, mut child) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        inline = inline.min(timed(crate::run(engine, filter_map_flow(rows, false))).await?);
        child = child.min(timed(run_from(engine, parent)).await?);
    }
    Ok((inline, child))
}

/// The benchmark's flow with its filter and mapper moved into `filter-map.json`; returns the
/// parent's path.
fn write_tree(dir: &Path, rows: u64) -> Result<std::path::PathBuf> {
    let inline = filter_map_flow(rows, false);
    let node = |id: &str| inline.nodes.iter().find(|n| n.id == id).cloned();
    let (Some(users), Some(active), Some(rename), Some(count)) =
        (node("users"), node("active"), node("rename"), node("count"))
    else {
        bail!("the filter-map flow changed");
    };
    let mut child = Flow::new("filter-map-child")
        .with_node("in", "input", json!({}))
        .with_node("out", "output", json!({}))
        .with_edge("in", "active")
        .with_edge("active", "rename")
        .with_edge("rename", "out");
    child.nodes.extend([active, rename]);
    let mut parent = Flow::new("filter-map-parent")
        .with_node("sub", "subflow", json!({"flow": "filter-map.json"}))
        .with_edge("users", "sub")
        .with_edge("sub", "count");
    parent.nodes.extend([users, count]);
    save_flow(&child, &dir.join("filter-map.json"))?;
    let path = dir.join("parent.json");
    save_flow(&parent, &path)?;
    Ok(path)
}

async fn run_from(engine: &Engine, parent: &Path) -> Result<()> {
    let flow = flow_engine::load_flow(parent)?;
    let options = RunOptions { origin: FlowOrigin::File(parent.to_owned()), ..RunOptions::default() };
    let report = engine.run(flow, options).await?;
    if report.state != ExecutionState::Succeeded {
        bail!("sub-flow benchmark ended {:?}: {:?}", report.state, report.error);
    }
    Ok(())
}
