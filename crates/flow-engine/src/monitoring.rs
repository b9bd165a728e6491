//! Monitoring: the history store's per-minute rollups over a window (dashboard, per flow, per
//! node), the machine and process (`sysinfo`), the health of the store and of every named
//! connection, and the rollups' retention (METRICS_RETENTION_DAYS).

use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use chrono::{Duration, Utc};
use flow_model::{ConnectionKind, ConnectionTest};
use flow_store::{Dashboard, FlowMetrics, MetricsWindow, NodeMetrics, Store};
use serde::{Deserialize, Serialize};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
use ts_rs::TS;

use crate::{Engine, EngineError};

/// Days of rollups kept when METRICS_RETENTION_DAYS is not set.
pub const DEFAULT_METRICS_RETENTION_DAYS: u32 = 30;

/// Dashboard steps the default picks from, in minutes: the shortest giving at most
/// [`DEFAULT_POINTS`] points.
const STEPS: [u32; 9] = [1, 5, 15, 30, 60, 180, 360, 720, 1_440];
const DEFAULT_POINTS: i64 = 120;

/// METRICS_RETENTION_DAYS (whole days, at least 1), or the default.
pub fn metrics_retention_days() -> Result<u32, EngineError> {
    match std::env::var("METRICS_RETENTION_DAYS") {
        Err(_) => Ok(DEFAULT_METRICS_RETENTION_DAYS),
        Ok(text) => {
            text.trim().parse::<u32>().ok().filter(|d| *d >= 1).ok_or(EngineError::InvalidRetention(text))
        }
    }
}

/// Deletes the rollups older than `days`; returns how many rows.
pub(crate) async fn apply_retention(store: &Store, days: u32) -> Result<u64, EngineError> {
    let deleted = store.delete_metrics_before(Utc::now() - Duration::days(i64::from(days))).await?;
    if deleted > 0 {
        tracing::info!(deleted, days, "metrics rollups past their retention deleted");
    }
    Ok(deleted)
}

/// A window as people write it: a whole number and `m`, `h` or `d` (`30m`, `24h`, `7d`).
pub fn parse_window(text: &str) -> Result<Duration, EngineError> {
    let invalid = || EngineError::InvalidWindow(text.to_owned());
    let text = text.trim();
    let unit_at = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(invalid)?;
    let minutes = match unit {
        "m" => Some(number),
        "h" => number.checked_mul(60),
        "d" => number.checked_mul(1_440),
        _ => None,
    };
    // More than ten years is a typo, and would not fit a dashboard anyway.
    minutes.filter(|m| *m <= 10 * 366 * 1_440).map(Duration::minutes).ok_or_else(invalid)
}

/// The step a dashboard over `window` uses when none is asked for: about a hundred points.
pub fn default_step_minutes(window: Duration) -> u32 {
    let minutes = window.num_minutes().max(1);
    STEPS
        .into_iter()
        .find(|step| (minutes + i64::from(*step) - 1) / i64::from(*step) <= DEFAULT_POINTS)
        .unwrap_or(1_440)
}

/// The machine and this process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SystemMetrics {
    /// All CPUs, 0 to 100, since the previous sample (at least 200 ms).
    pub cpu_percent: f32,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// This process's resident memory.
    pub process_rss_bytes: u64,
    /// Since this process started.
    pub uptime_seconds: u64,
    /// Executions of this engine queued for a slot, running or paused.
    pub active_executions: u64,
}

/// Whether the history store and every named connection answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Health {
    /// The store and every connection answer.
    pub ok: bool,
    pub store: StoreHealth,
    /// By name.
    pub connections: Vec<ConnectionHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StoreHealth {
    pub ok: bool,
    /// What went wrong, when it did.
    pub error: Option<String>,
}

/// A named connection's test ([`Engine::test_connection`], within 5 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConnectionHealth {
    pub name: String,
    pub kind: ConnectionKind,
    /// Reachable and authenticated.
    pub ok: bool,
    pub test: ConnectionTest,
}

/// The process-wide sampler: CPU usage is the change between two samples, so the previous one
/// is kept.
struct Sampler {
    system: System,
    cpu_sampled: Option<Instant>,
}

static SAMPLER: LazyLock<Mutex<Sampler>> =
    LazyLock::new(|| Mutex::new(Sampler { system: System::new(), cpu_sampled: None }));

fn sampler() -> std::sync::MutexGuard<'static, Sampler> {
    SAMPLER.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// The window ending now.
    fn window(window: Duration) -> MetricsWindow {
        let until = Utc::now();
        MetricsWindow { since: until - window, until }
    }

    /// Executions that finished in the last `window`, per `step_minutes` (default: see
    /// [`default_step_minutes`]).
    pub async fn monitoring_dashboard(
        &self,
        window: Duration,
        step_minutes: Option<u32>,
    ) -> Result<Dashboard, EngineError> {
        let step = step_minutes.unwrap_or_else(|| default_step_minutes(window));
        Ok(self.store().dashboard(&Self::window(window), step).await?)
    }

    /// Per flow, its executions that finished in the last `window`.
    pub async fn monitoring_flows(&self, window: Duration) -> Result<Vec<FlowMetrics>, EngineError> {
        Ok(self.store().flow_metrics(&Self::window(window)).await?)
    }

    /// Per node (of `flow` only, when given), its runs in executions that finished in the last
    /// `window`.
    pub async fn monitoring_nodes(
        &self,
        window: Duration,
        flow: Option<&str>,
    ) -> Result<Vec<NodeMetrics>, EngineError> {
        Ok(self.store().node_metrics(&Self::window(window), flow).await?)
    }

    /// Deletes the rollups older than `retention_days`; returns how many rows.
    pub async fn delete_old_metrics(&self, retention_days: u32) -> Result<u64, EngineError> {
        apply_retention(self.store(), retention_days).await
    }

    /// CPU, memory, this process's RSS and uptime, and the active executions. The first call
    /// of a process waits 200 ms: CPU usage needs two samples.
    pub async fn system(&self) -> SystemMetrics {
        let wait = {
            let mut guard = sampler();
            let sampler = &mut *guard;
            let sampled = *sampler.cpu_sampled.get_or_insert_with(|| {
                sampler.system.refresh_cpu_usage();
                Instant::now()
            });
            sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.saturating_sub(sampled.elapsed())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut sampler = sampler();
        let system = &mut sampler.system;
        system.refresh_cpu_usage();
        system.refresh_memory();
        let (process_rss_bytes, uptime_seconds) = match sysinfo::get_current_pid() {
            Ok(pid) => {
                system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    true,
                    ProcessRefreshKind::nothing().with_memory(),
                );
                system.process(pid).map(|p| (p.memory(), p.run_time())).unwrap_or_default()
            }
            // Platforms sysinfo cannot name the process on: no process figures.
            Err(_) => (0, 0),
        };
        let metrics = SystemMetrics {
            cpu_percent: system.global_cpu_usage(),
            memory_used_bytes: system.used_memory(),
            memory_total_bytes: system.total_memory(),
            process_rss_bytes,
            uptime_seconds,
            active_executions: u64::try_from(self.active_executions()).unwrap_or(u64::MAX),
        };
        sampler.cpu_sampled = Some(Instant::now());
        metrics
    }

    /// Whether the history store answers and every named connection answers and accepts its
    /// credentials (tested concurrently, 5 s each at most).
    pub async fn health(&self) -> Health {
        let connections = self.list_connections();
        let tests = connections.iter().map(|c| self.test_connection_within_timeout(c));
        let (ping, tests) = tokio::join!(self.store().ping(), futures::future::join_all(tests));
        let store = StoreHealth { ok: ping.is_ok(), error: ping.err().map(|e| e.to_string()) };
        let connections: Vec<ConnectionHealth> = connections
            .into_iter()
            .zip(tests)
            .map(|(c, test)| ConnectionHealth {
                name: c.name,
                kind: c.kind,
                ok: test.reachable && test.authenticated,
                test,
            })
            .collect();
        Health { ok: store.ok && connections.iter().all(|c| c.ok), store, connections }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_number_and_a_unit() {
        assert_eq!(parse_window("30m").ok(), Some(Duration::minutes(30)));
        assert_eq!(parse_window("24h").ok(), Some(Duration::hours(24)));
        assert_eq!(parse_window(" 7d ").ok(), Some(Duration::days(7)));
        for bad in ["", "h", "0h", "-1h", "1w", "1.5h", "99999999d"] {
            assert!(matches!(parse_window(bad), Err(EngineError::InvalidWindow(_))), "{bad}");
        }
    }

    #[test]
    fn the_default_step_gives_at_most_120_points() {
        assert_eq!(default_step_minutes(Duration::hours(1)), 1);
        assert_eq!(default_step_minutes(Duration::hours(2)), 1);
        assert_eq!(default_step_minutes(Duration::hours(24)), 15);
        assert_eq!(default_step_minutes(Duration::days(7)), 180);
        assert_eq!(default_step_minutes(Duration::days(30)), 360);
        assert_eq!(default_step_minutes(Duration::days(3_650)), 1_440);
    }
}
