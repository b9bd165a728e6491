//! The server's and the worker's settings, from the environment (SPEC section 7). Anything
//! missing or unusable refuses to start with one line naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use flow_engine::EngineConfig;

/// Shortest JWT_SECRET accepted: HS256 keys shorter than its 256-bit output weaken it.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// What both `flow serve` and `flow worker` need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// POSTGRESQL_URL: flows, executions, users, schedules, connections.
    pub postgresql_url: String,
    /// REDIS_URL: the job queue, events between processes, control messages.
    pub redis_url: String,
    /// MAX_CONCURRENT_EXECUTIONS (per worker process), NODE_EXECUTION_TIMEOUT, RETRY_ATTEMPTS.
    pub engine: EngineConfig,
    /// FLOW_JOB_LEASE_MS: how long a worker may go silent before its job is given to another.
    pub job_lease: Duration,
    /// FLOW_QUEUE_PREFIX: the Redis key prefix of the queue (several deployments on one Redis).
    pub queue_prefix: String,
    /// METRICS_TOKEN: when set, `GET /metrics` wants `Authorization: Bearer <METRICS_TOKEN>`.
    pub metrics_token: Option<String>,
    /// FLOW_METRICS_BIND: where a `flow worker` serves `GET /metrics` (it has no API); unset,
    /// a worker serves none.
    pub metrics_bind: Option<SocketAddr>,
}

/// What only the API (`flow serve`) needs.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// FLOW_BIND, default 127.0.0.1:8080.
    pub bind: SocketAddr,
    /// JWT_SECRET: signs the tokens `POST /auth/login` hands out.
    pub jwt_secret: Vec<u8>,
    /// FLOW_TOKEN_TTL_S: how long a token is valid, default 12 hours.
    pub token_ttl: Duration,
}

/// A setting the process cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: &'static str, hint: &'static str },
    #[error("{name}={value:?}: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
    #[error(transparent)]
    Engine(#[from] flow_engine::ConfigError),
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        let lease_ms = number("FLOW_JOB_LEASE_MS")?.unwrap_or(30_000);
        if lease_ms < 100 {
            return Err(ConfigError::Invalid {
                name: "FLOW_JOB_LEASE_MS",
                value: lease_ms.to_string(),
                reason: "must be at least 100 ms".into(),
            });
        }
        Ok(Settings {
            postgresql_url: required(
                "POSTGRESQL_URL",
                "the server keeps flows and executions in PostgreSQL, e.g. postgres://user:pass@127.0.0.1:5432/flow",
            )?,
            redis_url: required("REDIS_URL", "the job queue lives in Redis, e.g. redis://127.0.0.1:6379")?,
            engine: EngineConfig::from_env()?,
            job_lease: Duration::from_millis(lease_ms),
            queue_prefix: std::env::var("FLOW_QUEUE_PREFIX")
                .ok()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| "flow:queue:".to_owned()),
            metrics_token: std::env::var("METRICS_TOKEN").ok().filter(|t| !t.trim().is_empty()),
            metrics_bind: address("FLOW_METRICS_BIND")?,
        })
    }
}

impl ApiSettings {
    pub fn from_env() -> Result<ApiSettings, ConfigError> {
        let bind = address("FLOW_BIND")?.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let secret =
            required("JWT_SECRET", "set a random secret of at least 32 bytes, e.g. `openssl rand -hex 32`")?;
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                value: "(hidden)".into(),
                reason: format!(
                    "{} bytes is too short: use at least {MIN_JWT_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
                    secret.len()
                ),
            });
        }
        let ttl = number("FLOW_TOKEN_TTL_S")?.unwrap_or(12 * 3600);
        Ok(ApiSettings { bind, jwt_secret: secret.into_bytes(), token_ttl: Duration::from_secs(ttl.max(1)) })
    }
}

fn required(name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing { name, hint }),
    }
}

fn address(name: &'static str) -> Result<Option<SocketAddr>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|e| ConfigError::Invalid {
            name,
            value: v.clone(),
            reason: format!("{e}; expected an address and port like 127.0.0.1:8080"),
        }),
        _ => Ok(None),
    }
}

fn number(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| ConfigError::Invalid {
            name,
            value: v,
            reason: "expected a whole number".into(),
        }),
        _ => Ok(None),
    }
}
