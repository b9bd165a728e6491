//! `/monitoring/*`: the machine, the health of the store and the named connections, and the
//! executions of every user over a window, from the store's per-minute rollups; the alert
//! rules and their alerts.
//!
//! Admin only: the rollups are per flow name and node, not per owner, so they would show a user
//! other users' flows and activity (docs/server.md).

use axum::extract::State;
use axum::http::StatusCode;
use flow_engine::{
    Alert, AlertQuery, AlertRule, Dashboard, FlowMetrics, Health, NewAlertRule, NodeMetrics, StoreHealth,
    SystemMetrics, parse_window,
};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use uuid::Uuid;

use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The window when none is given.
const DEFAULT_WINDOW: &str = "1h";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowParams {
    /// How far back: a number and m, h or d (`30m`, `24h`, `7d`); default 1h.
    window: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardParams {
    /// How far back: a number and m, h or d (`30m`, `24h`, `7d`); default 1h.
    window: Option<String>,
    /// Minutes per point; default about 100 points over the window, at most 1500 points.
    step: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodesParams {
    /// How far back: a number and m, h or d (`30m`, `24h`, `7d`); default 1h.
    window: Option<String>,
    /// Only this flow's nodes (by name).
    flow: Option<String>,
}

fn window(text: Option<&str>) -> Result<chrono::Duration, ApiError> {
    parse_window(text.unwrap_or(DEFAULT_WINDOW)).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A query the store refuses (too many points) is the caller's.
fn query_error(e: flow_engine::EngineError) -> ApiError {
    match e {
        flow_engine::EngineError::Store(flow_store::StoreError::InvalidQuery { reason }) => {
            ApiError::bad_request(reason)
        }
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/monitoring/system", tag = "monitoring",
    responses((status = 200, description = "CPU, memory, this process's RSS and uptime, active executions (flow_engine::SystemMetrics)", body = Object), (status = 403, body = ErrorBody)))]
pub(crate) async fn system(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<SystemMetrics>> {
    caller.require_admin()?;
    Ok(Json(state.engine.system().await))
}

/// The engine's health (the store and every named connection) and the server's own
/// dependency, Redis.
#[derive(Debug, Serialize)]
pub(crate) struct ServerHealth {
    #[serde(flatten)]
    engine: Health,
    redis: StoreHealth,
}

#[utoipa::path(get, path = "/monitoring/health", tag = "monitoring",
    responses((status = 200, description = "Whether the store, Redis and every named connection answer (flow_engine::Health and `redis`)", body = Object), (status = 403, body = ErrorBody)))]
pub(crate) async fn health(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<ServerHealth>> {
    caller.require_admin()?;
    let (mut engine, redis) = tokio::join!(state.engine.health(), state.queue.ping());
    let redis = StoreHealth { ok: redis.is_ok(), error: redis.err().map(|e| e.to_string()) };
    engine.ok &= redis.ok;
    Ok(Json(ServerHealth { engine, redis }))
}

#[utoipa::path(get, path = "/monitoring/dashboard", tag = "monitoring", params(DashboardParams),
    responses((status = 200, description = "Executions per step with totals, success rate and duration percentiles (flow_store::Dashboard)", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<DashboardParams>,
) -> ApiResult<Json<Dashboard>> {
    caller.require_admin()?;
    let span = window(params.window.as_deref())?;
    Ok(Json(state.engine.monitoring_dashboard(span, params.step).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/monitoring/flows", tag = "monitoring", params(WindowParams),
    responses((status = 200, description = "Per flow: executions, error rate, durations, records (flow_store::FlowMetrics)", body = [Object]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn flows(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<WindowParams>,
) -> ApiResult<Json<Vec<FlowMetrics>>> {
    caller.require_admin()?;
    let span = window(params.window.as_deref())?;
    Ok(Json(state.engine.monitoring_flows(span).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/monitoring/nodes", tag = "monitoring", params(NodesParams),
    responses((status = 200, description = "Per node: runs, error rate, durations, records in and out, errors (flow_store::NodeMetrics)", body = [Object]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn nodes(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<NodesParams>,
) -> ApiResult<Json<Vec<NodeMetrics>>> {
    caller.require_admin()?;
    let span = window(params.window.as_deref())?;
    Ok(Json(state.engine.monitoring_nodes(span, params.flow.as_deref()).await.map_err(query_error)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsParams {
    /// Only the alerts still firing.
    #[serde(default)]
    firing: bool,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/monitoring/alerts", tag = "monitoring", params(AlertsParams),
    responses((status = 200, description = "Alerts, newest first: rule, message, value, fired_at, resolved_at and resolution (null while firing) (flow_store::Alert)", body = [Object]), (status = 403, body = ErrorBody)))]
pub(crate) async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<AlertsParams>,
) -> ApiResult<Json<Vec<Alert>>> {
    caller.require_admin()?;
    Ok(Json(state.engine.alerts(&AlertQuery { firing: params.firing, limit: params.limit }).await?))
}

#[utoipa::path(get, path = "/monitoring/alert-rules", tag = "monitoring",
    responses((status = 200, description = "The alert rules, by name (flow_store::AlertRule)", body = [Object]), (status = 403, body = ErrorBody)))]
pub(crate) async fn alert_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<AlertRule>>> {
    caller.require_admin()?;
    Ok(Json(state.engine.alert_rules().await?))
}

#[utoipa::path(post, path = "/monitoring/alert-rules", tag = "monitoring",
    request_body(content = Object, description = "`name`, `condition` (`kind`: memory_above, success_rate_below, flow_failing, node_p95_above or custom, with its fields) and an optional `webhook_url` (flow_store::NewAlertRule)"),
    responses((status = 201, description = "The rule (flow_store::AlertRule)", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "A rule has that name", body = ErrorBody), (status = 422, description = "A field is out of range, the condition does not compile", body = ErrorBody)))]
pub(crate) async fn create_alert_rule(
    State(state): State<AppState>,
    caller: Caller,
    Json(rule): Json<NewAlertRule>,
) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    caller.require_admin()?;
    Ok((StatusCode::CREATED, Json(state.engine.create_alert_rule(rule).await?)))
}

#[utoipa::path(delete, path = "/monitoring/alert-rules/{id}", tag = "monitoring", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted; its firing alert is resolved"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_alert_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if state.engine.delete_alert_rule(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("alert rule {id}")))
    }
}
