//! `metrics_overhead_pct`: what recording the engine's metrics into a Prometheus recorder (as
//! `flow serve` does) costs, against no recorder, in the same run: the per-node overhead of the
//! 1,000-node chain (`per_node_overhead_us`) and the filter-map throughput, each measured with
//! the recorder switched off and on in alternating rounds (a global recorder cannot be removed,
//! so a switch stands in front of it; switched off it hands out no-op handles, as no recorder
//! does), the best of each kept. `metrics_facade_overhead_pct` is the same per-node figure with
//! no recorder against an engine with ENABLE_METRICS=false: the cost of the calls themselves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use flow_engine::{Engine, EngineConfig, HistoryLocation};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::{best_of, filter_map_flow, per_node_overhead_us};

static ON: AtomicBool = AtomicBool::new(false);

/// The Prometheus recorder while `ON`, nothing otherwise.
struct Switch(PrometheusRecorder);

impl Recorder for Switch {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if ON.load(Ordering::Relaxed) { self.0.register_counter(key, metadata) } else { Counter::noop() }
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if ON.load(Ordering::Relaxed) { self.0.register_gauge(key, metadata) } else { Gauge::noop() }
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if ON.load(Ordering::Relaxed) { self.0.register_histogram(key, metadata) } else { Histogram::noop() }
    }
}

pub(crate) async fn measure(rows: u64) -> Result<BTreeMap<String, f64>> {
    let mut config = EngineConfig { history: HistoryLocation::InMemory, ..EngineConfig::default() };
    config.runtime.metrics = false;
    let disabled = Engine::open(config).await?;
    // One engine per position of the switch: an engine keeps the handles it resolved, so one
    // engine would go on using the handles of the other position.
    let (off, on_engine) = (crate::engine().await?, crate::engine().await?);
    // The server's configuration: buckets for the histograms.
    let recorder =
        PrometheusBuilder::new().set_buckets(&flow_engine::metrics::DURATION_BUCKETS_S)?.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(Switch(recorder)).is_err() {
        bail!("a metrics recorder was installed already");
    }
    flow_engine::metrics::describe();
    let (mut node_off, mut node_on, mut rows_off, mut rows_on) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut node_disabled = f64::MAX;
    for _ in 0..3 {
        node_disabled = node_disabled.min(per_node_overhead_us(&disabled).await?);
        for on in [false, true] {
            ON.store(on, Ordering::Relaxed);
            let engine = if on { &on_engine } else { &off };
            let node = per_node_overhead_us(engine).await?;
            let secs = best_of(2, || crate::run(engine, filter_map_flow(rows, false))).await?;
            // As the server's upkeep task does between scrapes.
            handle.run_upkeep();
            let (n, r) = if on { (&mut node_on, &mut rows_on) } else { (&mut node_off, &mut rows_off) };
            *n = n.min(node);
            *r = r.min(secs);
        }
    }
    ON.store(false, Ordering::Relaxed);
    if !handle.render().contains("flow_executions_total{flow=\"chain\",state=\"succeeded\"}") {
        bail!("the Prometheus recorder saw no execution");
    }
    Ok(BTreeMap::from([
        ("metrics_per_node_overhead_us".into(), node_on),
        ("metrics_filter_map_records_per_s".into(), rows as f64 / rows_on),
        ("metrics_overhead_pct".into(), (node_on / node_off - 1.0) * 100.0),
        ("metrics_filter_map_overhead_pct".into(), (rows_on / rows_off - 1.0) * 100.0),
        ("metrics_facade_overhead_pct".into(), (node_off / node_disabled - 1.0) * 100.0),
    ]))
}
