//! `GET /health`: whether PostgreSQL and Redis answer. No authentication.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::Json;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` when every dependency answers, `degraded` otherwise.
    status: &'static str,
    postgres: Dependency,
    redis: Dependency,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Dependency {
    ok: bool,
    /// What went wrong, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Dependency {
    fn of<E: std::fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self { ok: true, error: None },
            Err(e) => Self { ok: false, error: Some(e.to_string()) },
        }
    }
}

#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (postgres, redis) = tokio::join!(state.store.ping(), state.queue.ping());
    let health = Health { status: "ok", postgres: Dependency::of(postgres), redis: Dependency::of(redis) };
    if health.postgres.ok && health.redis.ok {
        (StatusCode::OK, Json(health))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "degraded", ..health }))
    }
}
