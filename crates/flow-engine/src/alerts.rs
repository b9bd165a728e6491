//! Alerts: rules kept in the store, judged periodically against the monitoring figures (the
//! per-minute rollups, the latest executions, the machine), each alert fired once and resolved
//! once (the store's open alert is the rule's state), pushed to subscribers as [`AlertEvent`]s
//! and POSTed to webhooks with retries.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DurationRound, Utc};
use flow_model::{Record, Value};
use flow_nodes::Condition;
use flow_runtime::ExecutionState;
use flow_store::{
    Alert, AlertCondition, AlertQuery, AlertRule, DurationStats, ListQuery, MetricsWindow, NewAlert,
    NewAlertRule,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
use uuid::Uuid;

use crate::{Engine, EngineError, SystemMetrics};

/// How often hosts judge the rules when ALERT_INTERVAL_SECONDS is not set.
pub const DEFAULT_ALERT_INTERVAL: Duration = Duration::from_secs(30);
/// Points below its threshold memory must fall before its alert resolves.
const MEMORY_HYSTERESIS_PERCENT: f64 = 5.0;
/// Longest window a rule may look back over: the rollups' default retention.
const MAX_WINDOW_MINUTES: u32 = 30 * 1_440;
/// Executions looked at for a flow's latest outcome (a few may still be running).
const LATEST_EXECUTIONS: u32 = 20;
/// A webhook gets this long per attempt.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts after the first for a webhook that is down or answers 5xx or 429.
const WEBHOOK_RETRIES: usize = 4;

/// How the hosts judge alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// Between two judgements of every rule (ALERT_INTERVAL_SECONDS).
    pub interval: Duration,
    /// Where every alert is POSTed besides its rule's own webhook (ALERT_WEBHOOK_URL).
    pub webhook_url: Option<String>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self { interval: DEFAULT_ALERT_INTERVAL, webhook_url: None }
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum AlertChange {
    Fired,
    Resolved,
}

/// An alert that fired or resolved: what subscribers receive and webhooks are POSTed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AlertEvent {
    pub change: AlertChange,
    pub alert: Alert,
}

/// A rule's verdict: fire, resolve, or (between its thresholds) leave the alert as it is.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Fire { message: String, value: Option<f64> },
    Resolve { resolution: String },
    Keep,
}

/// The figures of executions over a window, from the rollups.
#[derive(Debug, Clone, Default, PartialEq)]
struct Figures {
    executions: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
    duration: DurationStats,
}

impl Figures {
    /// Succeeded per finished execution, in percent; None without any.
    fn success_rate(&self) -> Option<f64> {
        (self.executions > 0).then(|| self.succeeded as f64 * 100.0 / self.executions as f64)
    }
}

/// The rollup minutes of the last `minutes` minutes, the current one included.
fn last_minutes(minutes: u32) -> MetricsWindow {
    let now = Utc::now();
    let current = now.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(now);
    MetricsWindow {
        since: current - chrono::Duration::minutes(i64::from(minutes) - 1),
        until: current + chrono::Duration::minutes(1),
    }
}

fn times(n: u64) -> String {
    if n == 1 { "once".to_owned() } else { format!("{n} times") }
}

fn minutes_text(minutes: u32) -> String {
    if minutes == 1 { "the last minute".to_owned() } else { format!("the last {minutes} minutes") }
}

fn invalid(rule: &str, reason: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidAlertRule(format!("alert rule `{rule}`: {reason}"))
}

/// Checks a rule before it is stored: every field within range, a custom condition that
/// compiles, a webhook that is an http(s) URL.
fn check_rule(rule: &NewAlertRule) -> Result<(), EngineError> {
    let name = rule.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(invalid(&rule.name, "name: give 1 to 200 characters"));
    }
    let percent = |field: &str, p: f64| {
        if (0.0..=100.0).contains(&p) {
            Ok(())
        } else {
            Err(invalid(name, format!("{field}: {p} is not a percentage from 0 to 100")))
        }
    };
    let window = |w: u32| {
        if (1..=MAX_WINDOW_MINUTES).contains(&w) {
            Ok(())
        } else {
            Err(invalid(name, format!("window_minutes: {w} is not from 1 to {MAX_WINDOW_MINUTES}")))
        }
    };
    let flow_name = |field: &str, f: &str| {
        if f.trim().is_empty() { Err(invalid(name, format!("{field}: name a flow"))) } else { Ok(()) }
    };
    match &rule.condition {
        AlertCondition::MemoryAbove { percent: p } => percent("percent", *p)?,
        AlertCondition::SuccessRateBelow { percent: p, window_minutes, flow, .. } => {
            percent("percent", *p)?;
            window(*window_minutes)?;
            if let Some(f) = flow {
                flow_name("flow", f)?;
            }
        }
        AlertCondition::FlowFailing { flow, failures, window_minutes } => {
            flow_name("flow", flow)?;
            window(*window_minutes)?;
            if *failures == 0 {
                return Err(invalid(name, "failures: at least 1"));
            }
        }
        AlertCondition::NodeP95Above { flow, node, window_minutes, .. } => {
            flow_name("flow", flow)?;
            window(*window_minutes)?;
            if node.trim().is_empty() {
                return Err(invalid(name, "node: name a node id of the flow"));
            }
        }
        AlertCondition::Custom { condition, window_minutes, flow } => {
            window(*window_minutes)?;
            if let Some(f) = flow {
                flow_name("flow", f)?;
            }
            let compiled = Condition::compile(condition).map_err(|e| invalid(name, e))?;
            // Judged once on zeros, so a misspelt figure is refused now rather than at every
            // evaluation.
            compiled.holds(&custom_figures(&Figures::default(), 0.0, 0.0, 0)).map_err(|e| {
                invalid(name, format!("condition: {e} (the names it can use are listed in the README)"))
            })?;
        }
    }
    if let Some(url) = &rule.webhook_url {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| invalid(name, format!("webhook_url `{url}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(name, format!("webhook_url `{url}`: only http and https are supported")));
        }
    }
    Ok(())
}

/// The machine's memory in use, in percent.
fn memory_percent(system: &SystemMetrics) -> f64 {
    system.memory_used_bytes as f64 * 100.0 / system.memory_total_bytes.max(1) as f64
}

/// The names a custom condition can use.
fn custom_figures(f: &Figures, cpu_percent: f64, memory: f64, active: u64) -> Record {
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let ms = |v: Option<u64>| int(v.unwrap_or(0));
    let mut r = Record::new();
    r.insert("executions", int(f.executions));
    r.insert("succeeded", int(f.succeeded));
    r.insert("failed", int(f.failed));
    r.insert("cancelled", int(f.cancelled));
    // Without executions nothing failed: a rate of 100 keeps "below" conditions quiet.
    let success_rate = f.success_rate().unwrap_or(100.0);
    r.insert("success_rate", Value::Float(success_rate));
    r.insert("error_rate", Value::Float(100.0 - success_rate));
    r.insert("avg_ms", Value::Float(f.duration.avg_ms.unwrap_or(0.0)));
    r.insert("p50_ms", ms(f.duration.p50_ms));
    r.insert("p95_ms", ms(f.duration.p95_ms));
    r.insert("p99_ms", ms(f.duration.p99_ms));
    r.insert("max_ms", ms(f.duration.max_ms));
    r.insert("cpu_percent", Value::Float(cpu_percent));
    r.insert("memory_percent", Value::Float(memory));
    r.insert("active_executions", int(active));
    r
}

impl Engine {
    /// Every alert rule, by name.
    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>, EngineError> {
        Ok(self.store().list_alert_rules().await?)
    }

    /// Checks and stores a rule; `InvalidAlertRule` names the field that is wrong.
    pub async fn create_alert_rule(&self, rule: NewAlertRule) -> Result<AlertRule, EngineError> {
        check_rule(&rule)?;
        let rule = NewAlertRule { name: rule.name.trim().to_owned(), ..rule };
        Ok(self.store().create_alert_rule(&rule).await?)
    }

    /// Deletes a rule (its open alert is resolved); false when there was none.
    pub async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, EngineError> {
        Ok(self.store().delete_alert_rule(id).await?)
    }

    /// Alerts, newest first.
    pub async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, EngineError> {
        Ok(self.store().list_alerts(query).await?)
    }

    /// Alerts as they fire and resolve, whichever evaluation (of this engine) changed them.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<AlertEvent> {
        self.alert_events().subscribe()
    }

    /// Judges every rule once: fires the alerts whose condition holds and that were not
    /// firing, resolves those whose condition cleared, publishes each change to
    /// [`Engine::subscribe_alerts`] and returns them. Webhooks are left to
    /// [`Engine::deliver_alert_webhooks`]. A rule that cannot be judged (its flow's history
    /// is unreadable) is logged and skipped; the others are judged.
    pub async fn evaluate_alerts(&self) -> Result<Vec<(AlertRule, AlertEvent)>, EngineError> {
        let mut changes = Vec::new();
        for rule in self.store().list_alert_rules().await? {
            let (subject, verdict) = match self.judge(&rule).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "alert rule cannot be judged");
                    continue;
                }
            };
            let alert = match verdict {
                Verdict::Keep => None,
                Verdict::Fire { message, value } => {
                    let new =
                        NewAlert { rule_id: rule.id, rule_name: rule.name.clone(), subject, message, value };
                    self.store().open_alert(&new).await?.map(|a| (AlertChange::Fired, a))
                }
                Verdict::Resolve { resolution } => self
                    .store()
                    .resolve_alert(rule.id, &subject, &resolution)
                    .await?
                    .map(|a| (AlertChange::Resolved, a)),
            };
            if let Some((change, alert)) = alert {
                tracing::info!(rule = %rule.name, ?change, message = %alert.message, "alert");
                let event = AlertEvent { change, alert };
                // Nobody listening is fine: the store has it.
                let _ = self.alert_events().send(event.clone());
                changes.push((rule, event));
            }
        }
        Ok(changes)
    }

    /// POSTs each change to its rule's webhook and to ALERT_WEBHOOK_URL, concurrently, each
    /// retried with exponential backoff (from 0.5 s, 4 retries) while the receiver is down or
    /// answers 5xx or 429; other answers are final. Failures are logged.
    pub async fn deliver_alert_webhooks(&self, changes: &[(AlertRule, AlertEvent)]) {
        let deliveries = changes.iter().flat_map(|(rule, event)| {
            rule.webhook_url
                .iter()
                .chain(&self.alert_config().webhook_url)
                .map(move |url| deliver(self.webhook_client(), url, rule, event))
        });
        futures::future::join_all(deliveries).await;
    }

    /// Judges the rules every [`AlertConfig::interval`] until `shutdown`, delivering webhooks
    /// in the background: what the desktop app and `flow serve` run.
    pub async fn watch_alerts(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.alert_config().interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.evaluate_alerts().await {
                Ok(changes) if !changes.is_empty() => {
                    let engine = self.clone();
                    tokio::spawn(async move { engine.deliver_alert_webhooks(&changes).await });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot evaluate alert rules"),
            }
        }
    }

    /// The figures of executions that finished in the last `minutes`, of `flow` or all.
    async fn figures(&self, minutes: u32, flow: Option<&str>) -> Result<Figures, EngineError> {
        let window = last_minutes(minutes);
        Ok(match flow {
            Some(flow) => self
                .store()
                .flow_metrics(&window)
                .await?
                .into_iter()
                .find(|m| m.flow == flow)
                .map(|m| Figures {
                    executions: m.executions,
                    succeeded: m.succeeded,
                    failed: m.failed,
                    cancelled: m.cancelled,
                    duration: m.duration,
                })
                .unwrap_or_default(),
            None => {
                // One step as long as the window: its totals are the figures.
                let d = self.store().dashboard(&window, minutes).await?;
                Figures {
                    executions: d.executions,
                    succeeded: d.succeeded,
                    failed: d.failed,
                    cancelled: d.cancelled,
                    duration: d.duration,
                }
            }
        })
    }

    /// The rule's subject and verdict now.
    async fn judge(&self, rule: &AlertRule) -> Result<(String, Verdict), EngineError> {
        Ok(match &rule.condition {
            AlertCondition::MemoryAbove { percent } => {
                let used = memory_percent(&self.system().await);
                let verdict = if used > *percent {
                    Verdict::Fire {
                        message: format!("memory in use is {used:.1} %, above {percent} %"),
                        value: Some(used),
                    }
                } else if used < percent - MEMORY_HYSTERESIS_PERCENT {
                    Verdict::Resolve { resolution: format!("memory in use is back to {used:.1} %") }
                } else {
                    Verdict::Keep
                };
                (sysinfo::System::host_name().unwrap_or_default(), verdict)
            }
            AlertCondition::SuccessRateBelow { percent, window_minutes, flow, min_executions } => {
                let figures = self.figures(*window_minutes, flow.as_deref()).await?;
                let of = flow.as_ref().map(|f| format!(" of flow `{f}`")).unwrap_or_default();
                let verdict = match figures.success_rate() {
                    Some(rate) if rate < *percent && figures.executions >= min_executions.unwrap_or(1) => {
                        Verdict::Fire {
                            message: format!(
                                "{rate:.1} % of {} executions{of} succeeded in {}, below {percent} %",
                                figures.executions,
                                minutes_text(*window_minutes)
                            ),
                            value: Some(rate),
                        }
                    }
                    Some(rate) if rate >= *percent => Verdict::Resolve {
                        resolution: format!("{rate:.1} % succeeded in {}", minutes_text(*window_minutes)),
                    },
                    Some(_) => Verdict::Keep,
                    None => Verdict::Resolve {
                        resolution: format!("no executions{of} in {}", minutes_text(*window_minutes)),
                    },
                };
                (String::new(), verdict)
            }
            AlertCondition::FlowFailing { flow, failures, window_minutes } => {
                let figures = self.figures(*window_minutes, Some(flow)).await?;
                let query = ListQuery {
                    flow: Some(flow.clone()),
                    limit: Some(LATEST_EXECUTIONS),
                    ..Default::default()
                };
                let latest = self.store().list(&query).await?.into_iter().find(|e| e.state.is_terminal());
                let verdict = match latest {
                    Some(e)
                        if e.state == ExecutionState::Failed && figures.failed >= u64::from(*failures) =>
                    {
                        Verdict::Fire {
                            message: format!(
                                "flow `{flow}` failed {} in {}; the latest: {}",
                                times(figures.failed),
                                minutes_text(*window_minutes),
                                e.error.as_deref().unwrap_or("no error recorded")
                            ),
                            value: Some(figures.failed as f64),
                        }
                    }
                    Some(e) if e.state == ExecutionState::Succeeded => Verdict::Resolve {
                        resolution: format!("flow `{flow}` succeeded (execution {})", e.id),
                    },
                    _ => Verdict::Keep,
                };
                (String::new(), verdict)
            }
            AlertCondition::NodeP95Above { flow, node, threshold_ms, window_minutes } => {
                let nodes = self.store().node_metrics(&last_minutes(*window_minutes), Some(flow)).await?;
                let p95 = nodes.iter().filter(|n| n.node_id == *node).filter_map(|n| n.duration.p95_ms).max();
                let verdict = match p95 {
                    Some(p95) if p95 > *threshold_ms => Verdict::Fire {
                        message: format!(
                            "node `{node}` of flow `{flow}` took {p95} ms at the 95th percentile in {}, above {threshold_ms} ms",
                            minutes_text(*window_minutes)
                        ),
                        value: Some(p95 as f64),
                    },
                    Some(p95) => Verdict::Resolve {
                        resolution: format!("node `{node}` is back to {p95} ms at the 95th percentile"),
                    },
                    None => Verdict::Resolve {
                        resolution: format!("node `{node}` did not run in {}", minutes_text(*window_minutes)),
                    },
                };
                (String::new(), verdict)
            }
            AlertCondition::Custom { condition, window_minutes, flow } => {
                let figures = self.figures(*window_minutes, flow.as_deref()).await?;
                let system = self.system().await;
                let record = custom_figures(
                    &figures,
                    f64::from(system.cpu_percent),
                    memory_percent(&system),
                    system.active_executions,
                );
                let holds = Condition::compile(condition)
                    .and_then(|c| c.holds(&record))
                    .map_err(|e| invalid(&rule.name, format!("condition `{condition}`: {e}")))?;
                let verdict = if holds {
                    Verdict::Fire {
                        message: format!(
                            "`{condition}` holds over {} ({} executions, {} failed)",
                            minutes_text(*window_minutes),
                            figures.executions,
                            figures.failed
                        ),
                        value: None,
                    }
                } else {
                    Verdict::Resolve { resolution: format!("`{condition}` no longer holds") }
                };
                (String::new(), verdict)
            }
        })
    }
}

/// POSTs one change to one webhook, with retries; logs the outcome.
async fn deliver(client: &reqwest::Client, url: &str, rule: &AlertRule, event: &AlertEvent) {
    let attempt = || async {
        let response = client.post(url).timeout(WEBHOOK_TIMEOUT).json(event).send().await?;
        response.error_for_status()
    };
    let retryable = |e: &reqwest::Error| {
        e.status().is_none_or(|s| s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS)
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_times(WEBHOOK_RETRIES)
        .with_jitter();
    let sent = attempt
        .retry(backoff)
        .when(retryable)
        .notify(
            |e, wait| tracing::debug!(rule = %rule.name, url, error = %e, ?wait, "alert webhook: retrying"),
        )
        .await;
    match sent {
        Ok(_) => tracing::debug!(rule = %rule.name, url, "alert webhook delivered"),
        Err(e) => tracing::warn!(rule = %rule.name, url, error = %e, "alert webhook not delivered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(condition: AlertCondition) -> NewAlertRule {
        NewAlertRule { name: "r".into(), condition, webhook_url: None }
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let bad = [
            (rule(AlertCondition::MemoryAbove { percent: 120.0 }), "percent: 120"),
            (
                rule(AlertCondition::FlowFailing { flow: "f".into(), failures: 0, window_minutes: 5 }),
                "failures: at least 1",
            ),
            (
                rule(AlertCondition::FlowFailing { flow: " ".into(), failures: 1, window_minutes: 5 }),
                "flow: name a flow",
            ),
            (
                rule(AlertCondition::SuccessRateBelow {
                    percent: 90.0,
                    window_minutes: 0,
                    flow: None,
                    min_executions: None,
                }),
                "window_minutes: 0",
            ),
            (
                rule(AlertCondition::Custom { condition: "failed >".into(), window_minutes: 5, flow: None }),
                "condition: ",
            ),
            (
                rule(AlertCondition::Custom { condition: "flaky > 1".into(), window_minutes: 5, flow: None }),
                "flaky",
            ),
            (
                NewAlertRule {
                    webhook_url: Some("ftp://x/".into()),
                    ..rule(AlertCondition::MemoryAbove { percent: 80.0 })
                },
                "only http and https",
            ),
            (
                NewAlertRule { name: "  ".into(), ..rule(AlertCondition::MemoryAbove { percent: 80.0 }) },
                "name:",
            ),
        ];
        for (rule, expected) in bad {
            let err = check_rule(&rule).expect_err("invalid").to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        let custom = rule(AlertCondition::Custom {
            condition: "failed > 3 && success_rate < 95.5 || p95_ms > 2000 || memory_percent > 90".into(),
            window_minutes: 5,
            flow: Some("f".into()),
        });
        check_rule(&custom).expect("valid");
    }

    #[test]
    fn the_last_minutes_include_the_current_one() {
        let w = last_minutes(5);
        assert_eq!(w.until - w.since, chrono::Duration::minutes(5));
        assert!(w.since <= Utc::now() - chrono::Duration::minutes(4) && Utc::now() < w.until);
    }
}
