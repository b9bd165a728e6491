//! Alert rules and the alerts they raised. The store keeps each rule's open alert as its state,
//! which is what makes evaluation fire once and resolve once, across restarts and across the
//! servers sharing one database: at most one alert per rule and subject is open (a unique
//! index), so when several evaluators see the same condition only one opens it, and only one
//! closes it. The engine evaluates the conditions (flow-engine `alerts.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// Most alerts one listing returns.
pub(crate) const MAX_ALERTS: u32 = 1000;

/// When a rule fires. Windows are whole minutes of the per-minute rollups, ending now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[ts(export)]
pub enum AlertCondition {
    /// The machine's memory in use is above `percent` of all of it; resolves once it is 5
    /// points below (hysteresis, so memory hovering at the threshold does not flap). Each
    /// machine evaluating it has its own alert.
    MemoryAbove { percent: f64 },
    /// Executions that finished in the window (of `flow` only, when given) succeeded less than
    /// `percent` of the time; not judged with fewer than `min_executions` (default 1).
    SuccessRateBelow {
        percent: f64,
        window_minutes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        flow: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        min_executions: Option<u64>,
    },
    /// `flow` failed at least `failures` times in the window and its latest execution failed;
    /// resolves when an execution of it succeeds.
    FlowFailing { flow: String, failures: u32, window_minutes: u32 },
    /// The 95th percentile of node `node`'s run durations in `flow` over the window is above
    /// `threshold_ms`.
    NodeP95Above { flow: String, node: String, threshold_ms: u64, window_minutes: u32 },
    /// An expression in the Filter node's language over the window's figures (`failed > 3 &&
    /// success_rate < 95`); see the README for the names it can use.
    Custom {
        condition: String,
        window_minutes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        flow: Option<String>,
    },
}

/// A rule to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct NewAlertRule {
    /// Unique among the rules.
    pub name: String,
    pub condition: AlertCondition,
    /// Where its alerts are POSTed when they fire and resolve, besides ALERT_WEBHOOK_URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub webhook_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AlertRule {
    pub id: Uuid,
    pub name: String,
    pub condition: AlertCondition,
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One firing of a rule, open until it resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Alert {
    /// UUID v7: alerts list newest first by id.
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    /// What the rule watched when it has one alert per thing (a machine for memory), else "".
    pub subject: String,
    /// Why it fired, with the figures.
    pub message: String,
    /// The figure compared with the threshold, where there is one.
    pub value: Option<f64>,
    pub fired_at: DateTime<Utc>,
    /// None while it fires.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Why it resolved.
    pub resolution: Option<String>,
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// An alert to open (`Store::open_alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub rule_id: Uuid,
    pub rule_name: String,
    pub subject: String,
    pub message: String,
    pub value: Option<f64>,
}

/// Which alerts `Store::list_alerts` returns: newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AlertQuery {
    /// Only those still firing.
    #[serde(default)]
    pub firing: bool,
    /// Page size: 100 when unset, at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub limit: Option<u32>,
}

impl AlertQuery {
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(100).min(MAX_ALERTS))
    }
}
