//! The queue dashboard: a page served by the server (no Rust queue board works with this queue)
//! and the admin-only JSON it reads: jobs per state, the jobs of one state, retry and discard.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use flow_queue::JobState;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

const PAGE: &str = include_str!("../dashboard.html");

#[utoipa::path(get, path = "/queue", tag = "queue", security(()),
    responses((status = 200, description = "The dashboard page; it logs in and reads /queue/api/*", content_type = "text/html")))]
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

#[utoipa::path(get, path = "/queue/api/counts", tag = "queue",
    responses((status = 200, description = "Jobs per state and the queue's metrics", body = Object), (status = 403, body = ErrorBody)))]
pub(crate) async fn counts(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let (counts, metrics) = tokio::try_join!(state.queue.counts(), state.queue.metrics())?;
    Ok(Json(serde_json::json!({ "counts": counts, "metrics": metrics })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobsParams {
    /// waiting, delayed, running, succeeded, failed, dead or cancelled.
    state: String,
    #[serde(default)]
    offset: usize,
    /// At most 200.
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/queue/api/jobs", tag = "queue", params(JobsParams),
    responses((status = 200, description = "One page of jobs in that state, newest first, and the total", body = Object), (status = 403, body = ErrorBody)))]
pub(crate) async fn jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<JobsParams>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let job_state: JobState = params
        .state
        .parse()
        .map_err(|_| ApiError::bad_request(format!("unknown job state `{}`", params.state)))?;
    let page = state.queue.list(job_state, params.offset, params.limit.unwrap_or(50).min(200)).await?;
    Ok(Json(serde_json::to_value(page).map_err(|e| ApiError::internal(e.to_string()))?))
}

#[utoipa::path(post, path = "/queue/api/jobs/{id}/retry", tag = "queue", params(("id" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state.queue.retry(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/queue/api/jobs/{id}/discard", tag = "queue", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn discard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if state.queue.discard(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("job {id}")))
    }
}
