//! `flow alerts`: alert rules (add, list, remove), the alerts they raised, and `check`, which
//! judges every rule once (for a machine without a desktop app or server running them, e.g.
//! from cron) and delivers the webhooks of what changed.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use flow_engine::{AlertChange, AlertCondition, AlertQuery, Engine, NewAlertRule, parse_window};

#[derive(Subcommand)]
pub(crate) enum AlertsAction {
    /// Alerts, newest first.
    List {
        /// Only those still firing.
        #[arg(long)]
        firing: bool,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// The rules.
    Rules {
        #[arg(long)]
        json: bool,
    },
    /// Add a rule.
    Add {
        /// Its name, unique among the rules.
        name: String,
        #[command(subcommand)]
        when: When,
        /// POST its alerts (fired and resolved) to this URL, besides ALERT_WEBHOOK_URL.
        #[arg(long, global = true, value_name = "URL")]
        webhook: Option<String>,
    },
    /// Remove a rule (its firing alert resolves).
    Remove { name: String },
    /// Judge every rule now; print what fired and resolved, and deliver the webhooks.
    Check {
        #[arg(long)]
        json: bool,
    },
}

/// The condition of a new rule. Windows are a number and m, h or d (`15m`, `2h`).
#[derive(Subcommand)]
pub(crate) enum When {
    /// The machine's memory in use above PERCENT (resolves 5 points below).
    MemoryAbove { percent: f64 },
    /// Executions (of --flow, or all) succeeding less than PERCENT of the time over --window.
    SuccessRateBelow {
        percent: f64,
        #[arg(long, default_value = "15m")]
        window: String,
        #[arg(long)]
        flow: Option<String>,
        /// Not judged with fewer executions than this in the window.
        #[arg(long)]
        min_executions: Option<u64>,
    },
    /// FLOW failed at least --failures times over --window and its latest execution failed;
    /// resolves when it succeeds.
    FlowFailing {
        flow: String,
        #[arg(long, default_value_t = 1)]
        failures: u32,
        #[arg(long, default_value = "15m")]
        window: String,
    },
    /// The 95th percentile of NODE's durations in FLOW over --window above MS milliseconds.
    NodeP95Above {
        flow: String,
        node: String,
        ms: u64,
        #[arg(long, default_value = "15m")]
        window: String,
    },
    /// An expression in the Filter node's language over the window's figures, e.g.
    /// 'failed > 3 && success_rate < 95' (names: see the README).
    Custom {
        condition: String,
        #[arg(long, default_value = "15m")]
        window: String,
        #[arg(long)]
        flow: Option<String>,
    },
}

fn window_minutes(window: &str) -> Result<u32> {
    let minutes = parse_window(window)?.num_minutes();
    u32::try_from(minutes).with_context(|| format!("--window {window}: too long"))
}

impl When {
    fn condition(self) -> Result<AlertCondition> {
        Ok(match self {
            When::MemoryAbove { percent } => AlertCondition::MemoryAbove { percent },
            When::SuccessRateBelow { percent, window, flow, min_executions } => {
                AlertCondition::SuccessRateBelow {
                    percent,
                    window_minutes: window_minutes(&window)?,
                    flow,
                    min_executions,
                }
            }
            When::FlowFailing { flow, failures, window } => {
                AlertCondition::FlowFailing { flow, failures, window_minutes: window_minutes(&window)? }
            }
            When::NodeP95Above { flow, node, ms, window } => AlertCondition::NodeP95Above {
                flow,
                node,
                threshold_ms: ms,
                window_minutes: window_minutes(&window)?,
            },
            When::Custom { condition, window, flow } => {
                AlertCondition::Custom { condition, window_minutes: window_minutes(&window)?, flow }
            }
        })
    }
}

pub(crate) async fn run(engine: &Engine, action: AlertsAction) -> Result<ExitCode> {
    match action {
        AlertsAction::List { firing, limit, json } => {
            let alerts = engine.alerts(&AlertQuery { firing, limit }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
                return Ok(ExitCode::SUCCESS);
            }
            for a in &alerts {
                let state = match (&a.resolved_at, &a.resolution) {
                    (Some(at), resolution) => {
                        format!("resolved {} ({})", at.format("%F %T"), resolution.as_deref().unwrap_or(""))
                    }
                    (None, _) => "FIRING".to_owned(),
                };
                println!("{}  {:<24} {}: {}", a.fired_at.format("%F %T"), a.rule_name, state, a.message);
            }
        }
        AlertsAction::Rules { json } => {
            let rules = engine.alert_rules().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
                return Ok(ExitCode::SUCCESS);
            }
            for r in &rules {
                let webhook = r.webhook_url.as_deref().map(|u| format!("  webhook {u}")).unwrap_or_default();
                println!("{:<24} {}{webhook}", r.name, serde_json::to_string(&r.condition)?);
            }
        }
        AlertsAction::Add { name, when, webhook } => {
            let rule = NewAlertRule { name, condition: when.condition()?, webhook_url: webhook };
            let rule = engine.create_alert_rule(rule).await?;
            println!("added alert rule `{}`", rule.name);
        }
        AlertsAction::Remove { name } => {
            let rule = engine.alert_rules().await?.into_iter().find(|r| r.name == name);
            let Some(rule) = rule else {
                eprintln!("no alert rule named `{name}`");
                return Ok(ExitCode::from(1));
            };
            engine.delete_alert_rule(rule.id).await?;
            println!("removed alert rule `{name}`");
        }
        AlertsAction::Check { json } => {
            let changes = engine.evaluate_alerts().await?;
            for (_, event) in &changes {
                if json {
                    println!("{}", serde_json::to_string(event)?);
                } else {
                    let a = &event.alert;
                    match event.change {
                        AlertChange::Fired => println!("FIRED     {}: {}", a.rule_name, a.message),
                        AlertChange::Resolved => {
                            println!("RESOLVED  {}: {}", a.rule_name, a.resolution.as_deref().unwrap_or(""))
                        }
                    }
                }
            }
            engine.deliver_alert_webhooks(&changes).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
