//! Engine settings, with the defaults and environment variables of the product
//! (MAX_CONCURRENT_EXECUTIONS, NODE_EXECUTION_TIMEOUT, RETRY_ATTEMPTS, ENABLE_METRICS,
//! FLOW_HISTORY_DB).

use std::path::PathBuf;
use std::time::Duration;

use flow_runtime::{BreakerConfig, RuntimeConfig};

use crate::AlertConfig;

/// Where the execution history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryLocation {
    /// `<user data dir>/flow-platform/history.db`.
    Default,
    File(PathBuf),
    /// Not kept beyond the process (tests, benchmarks).
    InMemory,
}

impl HistoryLocation {
    pub fn default_path() -> PathBuf {
        Self::default_dir().join("history.db")
    }

    /// `<user data dir>/flow-platform`.
    pub fn default_dir() -> PathBuf {
        dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("flow-platform")
    }

    /// The directory of the engine's other files (the local secrets store): the history file's,
    /// or the default one for a history kept in memory.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            HistoryLocation::File(path) => {
                path.parent().map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf)
            }
            HistoryLocation::Default | HistoryLocation::InMemory => Self::default_dir(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub history: HistoryLocation,
    /// Executions running at once; the rest wait in order.
    pub max_concurrent_executions: usize,
    pub runtime: RuntimeConfig,
    pub breaker: BreakerConfig,
    /// Where the local secrets store lives (`secrets.json`); default: `history.data_dir()`.
    pub secrets_dir: Option<PathBuf>,
    /// The secret providers; default: from the environment (`VAULT_*`, `FLOW_SECRETS_KEY`...).
    pub secrets: Option<flow_secrets::SecretsConfig>,
    /// How alert rules are judged (ALERT_INTERVAL_SECONDS, ALERT_WEBHOOK_URL).
    pub alerts: AlertConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            history: HistoryLocation::Default,
            max_concurrent_executions: 10,
            runtime: RuntimeConfig::default(),
            breaker: BreakerConfig::default(),
            secrets_dir: None,
            secrets: None,
            alerts: AlertConfig::default(),
        }
    }
}

/// An environment variable with a value the engine cannot use.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl EngineConfig {
    /// Defaults overridden by the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(n) = env_number("MAX_CONCURRENT_EXECUTIONS")? {
            if n == 0 {
                return Err(ConfigError {
                    name: "MAX_CONCURRENT_EXECUTIONS",
                    value: n.to_string(),
                    reason: "must be at least 1",
                });
            }
            config.max_concurrent_executions = n as usize;
        }
        if let Some(ms) = env_number("NODE_EXECUTION_TIMEOUT")? {
            config.runtime.node_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = env_number("RETRY_ATTEMPTS")? {
            config.runtime.retry.retries = u32::try_from(n).map_err(|_| ConfigError {
                name: "RETRY_ATTEMPTS",
                value: n.to_string(),
                reason: "too large",
            })?;
        }
        if let Some(enabled) = env_bool("ENABLE_METRICS")? {
            config.runtime.metrics = enabled;
        }
        if let Some(seconds) = env_number("ALERT_INTERVAL_SECONDS")? {
            if seconds == 0 {
                return Err(ConfigError {
                    name: "ALERT_INTERVAL_SECONDS",
                    value: seconds.to_string(),
                    reason: "must be at least 1",
                });
            }
            config.alerts.interval = Duration::from_secs(seconds);
        }
        if let Ok(url) = std::env::var("ALERT_WEBHOOK_URL")
            && !url.trim().is_empty()
        {
            let http = reqwest::Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !http {
                return Err(ConfigError {
                    name: "ALERT_WEBHOOK_URL",
                    value: url,
                    reason: "expected an http(s) URL",
                });
            }
            config.alerts.webhook_url = Some(url.trim().to_owned());
        }
        if let Ok(path) = std::env::var("FLOW_HISTORY_DB")
            && !path.is_empty()
        {
            config.history = HistoryLocation::File(path.into());
        }
        Ok(config)
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`); unset or empty is `None`.
fn env_bool(name: &'static str) -> Result<Option<bool>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError { name, value: v, reason: "expected true or false" }),
        },
        _ => Ok(None),
    }
}

fn env_number(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| ConfigError {
            name,
            value: v,
            reason: "expected a whole number",
        }),
        _ => Ok(None),
    }
}
