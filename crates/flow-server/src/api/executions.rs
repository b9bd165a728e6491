//! Executions: listed newest first with keyset paging, read with per-node detail, and controlled
//! (cancel through the queue, pause and resume through the control channel). `GET /executions`
//! with `Upgrade: websocket` is the live event socket (see `ws`).

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flow_engine::{ExecutionDetail, ExecutionState, ExecutionSummary, ListQuery};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::control::Action;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// Only executions of this flow.
    flow_id: Option<Uuid>,
    /// Only executions in this state (`queued`, `running`, `paused`, `succeeded`, `failed`, `cancelled`).
    #[param(value_type = Option<String>)]
    state: Option<ExecutionState>,
    /// Only the sub-flow executions this execution's `subflow` nodes ran.
    parent: Option<Uuid>,
    /// Keyset paging: executions older than this one (the last id of the previous page).
    before: Option<Uuid>,
    /// Page size, 50 by default, at most 1000.
    limit: Option<u32>,
    /// The WebSocket's token (`GET /executions?token=` with `Upgrade: websocket`).
    token: Option<String>,
}

#[utoipa::path(get, path = "/executions", tag = "executions", params(ListParams),
    responses((status = 200, description = "Newest first", body = [Object]), (status = 101, description = "With `Upgrade: websocket`: the live event socket")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    if let Ok(ws) = ws {
        return Ok(crate::ws::upgrade(state, params.token, ws));
    }
    let caller = Caller::from_headers(&headers, &state.tokens)?;
    let query = ListQuery {
        limit: params.limit,
        offset: None,
        flow: None,
        state: params.state,
        owner: caller.scope(),
        flow_id: params.flow_id,
        parent: params.parent,
        before: params.before,
    };
    let page: Vec<ExecutionSummary> = state.store.list(&query).await?;
    Ok(Json(page).into_response())
}

/// The caller's execution `id`, or 404 (also for another user's).
async fn owned(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<ExecutionDetail> {
    state
        .store
        .get(id)
        .await?
        .filter(|e| caller.owns(e.summary.owner))
        .ok_or_else(|| ApiError::not_found(format!("execution {id}")))
}

#[utoipa::path(get, path = "/executions/{id}", tag = "executions", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Per-node states, counters, errors and data preview", body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ExecutionDetail>> {
    Ok(Json(owned(&state, &caller, id).await?))
}

#[utoipa::path(post, path = "/executions/{id}/cancel", tag = "executions", params(("id" = Uuid, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let execution = owned(&state, &caller, id).await?;
    if execution.summary.state.is_terminal() {
        return Err(ApiError::conflict(format!("execution {id} has ended ({:?})", execution.summary.state)));
    }
    match state.queue.cancel(&id.to_string()).await {
        // A job that had not started will never run: its history ends here.
        Ok(flow_queue::CancelOutcome::Cancelled) if execution.summary.state == ExecutionState::Queued => {
            state.store.record_state(id, ExecutionState::Cancelled, None).await?;
        }
        Ok(_) => {}
        // A cron tick's job has an id of its own: the worker running it is told directly.
        Err(flow_queue::QueueError::NotFound(_)) => {
            state
                .control
                .send(id, Action::Cancel)
                .await
                .map_err(|e| ApiError::unavailable(format!("cannot reach the workers: {e}")))?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::ACCEPTED)
}

async fn control(state: &AppState, caller: &Caller, id: Uuid, action: Action) -> ApiResult<StatusCode> {
    let execution = owned(state, caller, id).await?;
    let running = matches!(execution.summary.state, ExecutionState::Running | ExecutionState::Paused);
    if !running {
        return Err(ApiError::conflict(format!(
            "execution {id} is not running ({:?})",
            execution.summary.state
        )));
    }
    state
        .control
        .send(id, action)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot reach the workers: {e}")))?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/executions/{id}/pause", tag = "executions", params(("id" = Uuid, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    control(&state, &caller, id, Action::Pause).await
}

#[utoipa::path(post, path = "/executions/{id}/resume", tag = "executions", params(("id" = Uuid, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    control(&state, &caller, id, Action::Resume).await
}
