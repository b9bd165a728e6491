//! `flow monitor`: the machine, the health of the store and the named connections, and the
//! history's rollups over a window (dashboard, per flow, per node) and the firing alerts, as
//! text or JSON.

use std::process::ExitCode;

use anyhow::Result;
use flow_engine::{AlertQuery, DurationStats, Engine, parse_window};

pub(crate) async fn run(engine: &Engine, window: &str, json: bool) -> Result<ExitCode> {
    let span = parse_window(window)?;
    let (system, health, dashboard, flows, nodes, alerts) = tokio::join!(
        engine.system(),
        engine.health(),
        engine.monitoring_dashboard(span, None),
        engine.monitoring_flows(span),
        engine.monitoring_nodes(span, None),
        engine.alerts(&AlertQuery { firing: true, limit: None }),
    );
    let (dashboard, flows, nodes, alerts) = (dashboard?, flows?, nodes?, alerts?);
    if json {
        let report = serde_json::json!({
            "window": window,
            "system": system,
            "health": health,
            "dashboard": dashboard,
            "flows": flows,
            "nodes": nodes,
            "firing_alerts": alerts,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }

    const MIB: u64 = 1024 * 1024;
    println!("System");
    println!(
        "  cpu {:.1}%  memory {} / {} MiB  process {} MiB  up {} s  active executions {}",
        system.cpu_percent,
        system.memory_used_bytes / MIB,
        system.memory_total_bytes / MIB,
        system.process_rss_bytes / MIB,
        system.uptime_seconds,
        system.active_executions
    );
    println!("Health: {}", if health.ok { "ok" } else { "degraded" });
    println!(
        "  {} history store{}",
        mark(health.store.ok),
        health.store.error.map(|e| format!(": {e}")).unwrap_or_default()
    );
    for c in &health.connections {
        println!("  {} connection {} ({:?}): {}", mark(c.ok), c.name, c.kind, c.test.message);
    }
    println!("Firing alerts: {}", alerts.len());
    for a in &alerts {
        println!("  {}  {}: {}", a.fired_at.format("%F %T"), a.rule_name, a.message);
    }
    println!("Executions in the last {window}");
    println!(
        "  {} finished: {} succeeded, {} failed, {} cancelled; success rate {}; duration {}",
        dashboard.executions,
        dashboard.succeeded,
        dashboard.failed,
        dashboard.cancelled,
        dashboard.success_rate.map(percent).unwrap_or_else(|| "-".to_owned()),
        durations(&dashboard.duration)
    );
    println!("Flows");
    println!(
        "  {:<32} {:>8} {:>8} {:>10} {:>10} {:>12}",
        "flow", "runs", "errors", "avg ms", "p95 ms", "records out"
    );
    for f in &flows {
        println!(
            "  {:<32} {:>8} {:>8} {:>10} {:>10} {:>12}",
            f.flow,
            f.executions,
            percent(f.error_rate),
            ms(f.duration.avg_ms),
            ms(f.duration.p95_ms.map(|p| p as f64)),
            f.records_out
        );
    }
    println!("Nodes");
    println!(
        "  {:<32} {:<20} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "flow / node", "type", "runs", "errors", "avg ms", "p95 ms", "records in", "records out", "bad rec"
    );
    for n in &nodes {
        println!(
            "  {:<32} {:<20} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>8}",
            format!("{} / {}", n.flow, n.node_id),
            n.node_type,
            n.runs,
            percent(n.error_rate),
            ms(n.duration.avg_ms),
            ms(n.duration.p95_ms.map(|p| p as f64)),
            n.records_in,
            n.records_out,
            n.errors
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn ms(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".to_owned())
}

fn durations(d: &DurationStats) -> String {
    let p = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned());
    format!("avg {} ms, p50 {} ms, p95 {} ms, p99 {} ms", ms(d.avg_ms), p(d.p50_ms), p(d.p95_ms), p(d.p99_ms))
}
