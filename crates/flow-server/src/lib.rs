//! Flow Platform's server mode, a host on top of the engine like the CLI and the desktop app:
//! [`serve`] runs the REST + WebSocket API (axum) with the cron scheduler and, unless asked not
//! to, a worker in the same process; [`work`] runs a worker process alone. Flows, executions,
//! users and schedules live in PostgreSQL (`flow-store`), jobs in Redis (`flow-queue`). The
//! contract of the API is `docs/server.md`; the OpenAPI document is generated from the handlers.

mod alerts;
mod api;
pub mod auth;
pub mod config;
mod connection_sync;
mod control;
mod error;
mod events;
mod flow_cache;
mod metrics;
mod pubsub;
mod scheduler;
mod state;
mod worker;
mod ws;

use std::sync::Arc;

use flow_engine::Engine;
use flow_queue::{Queue, QueueConfig};
use flow_store::Store;
use tokio_util::sync::CancellationToken;

pub use api::{BODY_LIMIT, FLOW_BODY_LIMIT, openapi};
pub use config::{ApiSettings, ConfigError, Settings};
pub use error::{ApiError, ErrorBody};
pub use metrics::MetricsError;

/// Why the server or a worker could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("PostgreSQL ({url}): {source}")]
    Postgres {
        url: String,
        #[source]
        source: flow_store::StoreError,
    },
    #[error("Redis ({url}) is unreachable: {source}")]
    Redis {
        url: String,
        #[source]
        source: flow_queue::QueueError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the engine: {0}")]
    Engine(#[from] flow_engine::EngineError),
    #[error("worker: {0}")]
    Worker(#[from] flow_queue::QueueError),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// The connections both processes make at start; each failure is one clear error.
struct Backends {
    store: Store,
    queue: Queue,
    redis: redis::Client,
    /// Publishes events and control messages (reconnects by itself).
    publisher: redis::aio::ConnectionManager,
    engine: Engine,
}

async fn connect(settings: &Settings) -> Result<Backends, ServerError> {
    let redacted = |url: &str| flow_model::redact_url(url);
    let store = Store::connect_postgres(&settings.postgresql_url)
        .await
        .map_err(|source| ServerError::Postgres { url: redacted(&settings.postgresql_url), source })?;
    let config = QueueConfig {
        prefix: settings.queue_prefix.clone(),
        lease: settings.job_lease,
        ..QueueConfig::default()
    };
    let redis_error = |source| ServerError::Redis { url: redacted(&settings.redis_url), source };
    let queue = Queue::connect(&settings.redis_url, config).await.map_err(redis_error)?;
    let redis = redis::Client::open(settings.redis_url.as_str()).map_err(|e| redis_error(e.into()))?;
    let publisher =
        redis::aio::ConnectionManager::new(redis.clone()).await.map_err(|e| redis_error(e.into()))?;
    let engine = Engine::with_store(settings.engine.clone(), store.clone()).await?;
    Ok(Backends { store, queue, redis, publisher, engine })
}

/// Runs the API on `api.bind` (with a worker running `workers` executions at once unless it is
/// 0) until `shutdown`.
pub async fn serve(
    settings: Settings,
    api: ApiSettings,
    workers: usize,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    auth::install_crypto();
    let backends = connect(&settings).await?;
    let listener = tokio::net::TcpListener::bind(api.bind)
        .await
        .map_err(|source| ServerError::Bind { addr: api.bind, source })?;
    let hub = Arc::new(ws::Hub::default());
    // ENABLE_METRICS=false: no recorder, so the engine's calls do nothing and /metrics is 404.
    let metrics = if settings.engine.runtime.metrics {
        Some(metrics::Exporter::install(settings.metrics_token.clone(), &shutdown)?)
    } else {
        None
    };
    let state = state::AppState {
        store: backends.store.clone(),
        queue: backends.queue.clone(),
        engine: backends.engine.clone(),
        tokens: Arc::new(auth::Tokens::new(&api.jwt_secret, api.token_ttl).map_err(|e| {
            ServerError::Config(ConfigError::Invalid {
                name: "JWT_SECRET",
                value: "(hidden)".into(),
                reason: e.to_string(),
            })
        })?),
        hub: Arc::clone(&hub),
        control: control::Control::new(backends.publisher.clone(), &settings.queue_prefix),
        connections: connection_sync::Announcer::new(backends.publisher.clone(), &settings.queue_prefix),
        flows: Arc::new(flow_cache::FlowCache::new(backends.publisher.clone(), &settings.queue_prefix)),
        metrics,
    };
    let mut tasks = tokio::task::JoinSet::new();
    follow_connections(&backends, &settings, &shutdown, &mut tasks);
    let (redis, prefix, flows, stop) =
        (backends.redis.clone(), settings.queue_prefix.clone(), Arc::clone(&state.flows), shutdown.clone());
    tasks.spawn(async move {
        flow_cache::follow(redis, prefix, flows, stop).await;
        Ok(())
    });
    let (redis, prefix, stop) = (backends.redis.clone(), settings.queue_prefix.clone(), shutdown.clone());
    tasks.spawn(async move {
        events::subscribe(redis, prefix, hub, stop).await;
        Ok(())
    });
    let (redis, prefix, hub, stop) =
        (backends.redis.clone(), settings.queue_prefix.clone(), Arc::clone(&state.hub), shutdown.clone());
    tasks.spawn(async move {
        alerts::subscribe(redis, prefix, hub, stop).await;
        Ok(())
    });
    let (engine, publisher, prefix, stop) = (
        backends.engine.clone(),
        backends.publisher.clone(),
        settings.queue_prefix.clone(),
        shutdown.clone(),
    );
    tasks.spawn(async move {
        alerts::judge_and_publish(engine, publisher, prefix, stop).await;
        Ok(())
    });
    let (store, queue, stop) = (backends.store.clone(), backends.queue.clone(), shutdown.clone());
    tasks.spawn(async move {
        scheduler::run(store, queue, stop).await;
        Ok(())
    });
    let retention_days = flow_engine::metrics_retention_days()?;
    let (engine, stop) = (backends.engine.clone(), shutdown.clone());
    tasks.spawn(async move {
        prune_metrics(engine, retention_days, stop).await;
        Ok(())
    });
    if workers > 0 {
        start_worker(&backends, &settings, workers, &shutdown, &mut tasks);
    }
    tracing::info!(bind = %api.bind, workers, "flow serve listening");
    let app = api::router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let result = server.await.map_err(ServerError::Http);
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    result
}

/// Runs a worker alone until `shutdown`, MAX_CONCURRENT_EXECUTIONS executions at once.
pub async fn work(settings: Settings, shutdown: CancellationToken) -> Result<(), ServerError> {
    let backends = connect(&settings).await?;
    let mut tasks = tokio::task::JoinSet::new();
    if let (true, Some(bind)) = (settings.engine.runtime.metrics, settings.metrics_bind) {
        let exporter = metrics::Exporter::install(settings.metrics_token.clone(), &shutdown)?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| ServerError::Bind { addr: bind, source })?;
        tracing::info!(bind = %bind, "worker metrics at /metrics");
        let stop = shutdown.clone();
        tasks.spawn(async move {
            metrics::serve_alone(listener, exporter, stop).await.map_err(ServerError::Http)
        });
    }
    follow_connections(&backends, &settings, &shutdown, &mut tasks);
    let concurrency = settings.engine.max_concurrent_executions;
    start_worker(&backends, &settings, concurrency, &shutdown, &mut tasks);
    // The worker loop ends on shutdown (or a fatal queue error, which ends the process).
    let mut outcome = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            outcome = Err(e);
            shutdown.cancel();
        }
    }
    outcome
}

/// Deletes the metrics rollups older than METRICS_RETENTION_DAYS at start and every hour after,
/// until `stop`. Every server does it: deleting what another already deleted deletes nothing.
async fn prune_metrics(engine: flow_engine::Engine, retention_days: u32, stop: CancellationToken) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3_600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every_hour.tick() => {}
        }
        // A database away for a moment is tried again at the next tick.
        if let Err(e) = engine.delete_old_metrics(retention_days).await {
            tracing::warn!(error = %e, "cannot delete old metrics rollups");
        }
    }
}

/// Keeps the engine's connections in step with changes made through any API process.
fn follow_connections(
    backends: &Backends,
    settings: &Settings,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<Result<(), ServerError>>,
) {
    let (redis, prefix, engine, stop) =
        (backends.redis.clone(), settings.queue_prefix.clone(), backends.engine.clone(), shutdown.clone());
    tasks.spawn(async move {
        connection_sync::follow(redis, prefix, engine, stop).await;
        Ok(())
    });
}

fn start_worker(
    backends: &Backends,
    settings: &Settings,
    concurrency: usize,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<Result<(), ServerError>>,
) {
    let origins = events::Origins::default();
    let prefix = settings.queue_prefix.clone();
    let (engine, store, queue) = (backends.engine.clone(), backends.store.clone(), backends.queue.clone());
    let (redis, publisher) = (backends.redis.clone(), backends.publisher.clone());
    let (s1, s2, s3) = (shutdown.clone(), shutdown.clone(), shutdown.clone());
    let events_origins = origins.clone();
    let events_engine = engine.clone();
    let events_prefix = prefix.clone();
    tasks.spawn(async move {
        events::publish(events_engine, publisher, events_prefix, events_origins, s1).await;
        Ok(())
    });
    let control_engine = engine.clone();
    tasks.spawn(async move {
        control::listen(redis, prefix, control_engine, s2).await;
        Ok(())
    });
    tasks.spawn(async move { Ok(worker::run(engine, store, queue, origins, concurrency, s3).await?) });
}
