//! Flows: stored per user with a version number; updates need the version they replace
//! (`If-Match`), so a stale write gets 412 instead of overwriting someone's work.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use flow_engine::{ExecutionState, Flow, FlowOrigin, ValidationReport};
use flow_queue::NewJob;
use flow_store::{NewExecution, StoreError, StoredFlow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Json, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::worker::RunJob;

/// A stored flow.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowBody {
    id: Uuid,
    owner: Uuid,
    /// Starts at 1; every update adds one. Also the `ETag`.
    version: i64,
    /// The flow document (format version 1).
    #[schema(value_type = Object)]
    flow: Flow,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A flow as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowSummary {
    id: Uuid,
    name: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl From<StoredFlow> for FlowBody {
    fn from(f: StoredFlow) -> Self {
        Self {
            id: f.id,
            owner: f.owner,
            version: f.version,
            flow: f.flow,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// The answer to a stored flow, with its version as the `ETag`.
fn with_etag(status: StatusCode, flow: StoredFlow) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", flow.version)).ok();
    let mut response = (status, Json(FlowBody::from(flow))).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The caller's flow `id`, or 404 (also for another user's flow).
/// A stored flow's origin: its sub-flows are flows of its owner.
fn stored_origin(stored: &StoredFlow) -> FlowOrigin {
    FlowOrigin::Stored { id: Some(stored.id), owner: Some(stored.owner) }
}

pub(crate) async fn owned_flow(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<StoredFlow> {
    visible(state.store.flow(id).await?, caller, id)
}

/// `flow` when the caller may see it: another user's flow is as missing as one that is not there.
fn visible<F: Borrow<StoredFlow>>(flow: Option<F>, caller: &Caller, id: Uuid) -> ApiResult<F> {
    flow.filter(|f| caller.owns(Some(f.borrow().owner)))
        .ok_or_else(|| ApiError::not_found(format!("flow {id}")))
}

/// Refuses a flow with problems, listing them.
fn valid(report: ValidationReport) -> ApiResult<()> {
    if report.is_valid() {
        return Ok(());
    }
    let count = report.problems.len();
    Err(ApiError::invalid(format!("the flow has {count} problem(s)"))
        .details(serde_json::to_value(&report.problems).unwrap_or_default()))
}

#[utoipa::path(get, path = "/flows", tag = "flows", responses((status = 200, body = [FlowSummary])))]
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<FlowSummary>>> {
    let flows = state.store.list_flows(caller.scope()).await?;
    Ok(Json(
        flows
            .into_iter()
            .map(|f| FlowSummary { id: f.id, name: f.name, version: f.version, updated_at: f.updated_at })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/flows", tag = "flows", request_body(content = Object, description = "A flow document"),
    responses((status = 201, body = FlowBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(flow): Json<Flow>,
) -> ApiResult<Response> {
    check_version(&flow)?;
    let stored = state.store.create_flow(caller.id, &flow).await?;
    Ok(with_etag(StatusCode::CREATED, stored))
}

#[utoipa::path(get, path = "/flows/{id}", tag = "flows", params(("id" = Uuid, Path)),
    responses((status = 200, body = FlowBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(with_etag(StatusCode::OK, owned_flow(&state, &caller, id).await?))
}

#[utoipa::path(put, path = "/flows/{id}", tag = "flows", params(("id" = Uuid, Path), ("If-Match" = String, Header, description = "The version replaced, as its ETag: \"3\"")),
    request_body(content = Object, description = "A flow document"),
    responses((status = 200, body = FlowBody), (status = 412, body = ErrorBody), (status = 428, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(flow): Json<Flow>,
) -> ApiResult<Response> {
    check_version(&flow)?;
    let expected = if_match(&headers)?;
    owned_flow(&state, &caller, id).await?;
    match state.store.update_flow(id, expected, &flow).await {
        Ok(stored) => {
            state.flows.changed(id).await;
            Ok(with_etag(StatusCode::OK, stored))
        }
        Err(StoreError::VersionConflict { current, .. }) => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!(
                "flow {id} is at version {current}, not {expected}: reload it and apply your change again"
            ),
        )
        .details(serde_json::json!({ "current_version": current }))),
        Err(e) => Err(e.into()),
    }
}

/// The version an `If-Match: "3"` names.
fn if_match(headers: &HeaderMap) -> ApiResult<i64> {
    let value = headers.get(header::IF_MATCH).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "an update needs `If-Match: \"<version>\"` (the ETag of GET /flows/{id})",
        )
    })?;
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| ApiError::bad_request("If-Match must be a version ETag such as \"3\""))
}

/// A flow document of a format version this server reads.
fn check_version(flow: &Flow) -> ApiResult<()> {
    if flow.version == flow_model::FLOW_FILE_VERSION {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "flow format version {} is not supported (this server reads version {})",
            flow.version,
            flow_model::FLOW_FILE_VERSION
        )))
    }
}

#[utoipa::path(delete, path = "/flows/{id}", tag = "flows", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    owned_flow(&state, &caller, id).await?;
    state.store.delete_flow(id).await?;
    state.flows.changed(id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/flows/validate", tag = "flows", request_body(content = Object, description = "A flow document"),
    responses((status = 200, description = "Every problem, as `flow validate` reports them", body = Object)))]
pub(crate) async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    Json(flow): Json<Flow>,
) -> ApiResult<Json<ValidationReport>> {
    check_version(&flow)?;
    // Its sub-flows are stored flows the caller may run.
    let origin = FlowOrigin::Stored { id: None, owner: caller.scope() };
    Ok(Json(state.engine.validate_shared(&flow, &BTreeMap::new(), &origin).await?))
}

/// What `POST /flows/{id}/run` takes (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    /// Run variables, overriding the flow's.
    #[serde(default)]
    #[schema(value_type = Object)]
    vars: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunAccepted {
    execution_id: Uuid,
}

#[utoipa::path(post, path = "/flows/{id}/run", tag = "flows", params(("id" = Uuid, Path)), request_body(content = RunRequest, description = "Optional"),
    responses((status = 202, body = RunAccepted), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<RunAccepted>)> {
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::invalid(format!("run request: {e}")),
            _ => ApiError::bad_request(format!("run request: {e}")),
        })?
    };
    // From this process's cache: the API's hottest route, and the flow rarely changes.
    let stored = visible(state.flows.get(&state.store, id).await?, &caller, id)?;
    valid(state.engine.validate_shared(&stored.flow, &request.vars, &stored_origin(&stored)).await?)?;
    let execution_id = Uuid::now_v7();
    let correlation_id = Uuid::new_v4().to_string();
    let flow_name = stored.flow.name.clone();
    let job = RunJob {
        execution_id: Some(execution_id),
        flow_id: stored.id,
        flow: Some(stored.flow.clone()),
        owner: caller.id,
        vars: request.vars,
        correlation_id: Some(correlation_id.clone()),
    };
    state
        .store
        .record_started(&NewExecution {
            id: execution_id,
            correlation_id,
            flow: flow_name,
            state: ExecutionState::Queued,
            started_at: Utc::now(),
            owner: Some(caller.id),
            flow_id: Some(stored.id),
            parent_id: None,
            fence: None,
        })
        .await?;
    let payload = serde_json::to_value(&job).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) = state.queue.enqueue(NewJob::new(payload).id(execution_id.to_string())).await {
        // The run never reached the queue: say so in its history rather than leave it queued.
        let _ = state.store.record_failed(execution_id, &format!("could not be queued: {e}")).await;
        return Err(e.into());
    }
    Ok((StatusCode::ACCEPTED, Json(RunAccepted { execution_id })))
}
