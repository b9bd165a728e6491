//! Cron schedules of the caller's flows; every `flow serve` fires them (see `scheduler`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use flow_store::{NewSchedule, Schedule, ScheduleUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::flows::owned_flow;
use super::{Json, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleBody {
    id: Uuid,
    flow_id: Uuid,
    /// Five fields, or six with seconds first (`*/10 * * * * *`), or `@hourly` and the like.
    cron: String,
    /// IANA name, e.g. `Europe/Paris`.
    timezone: String,
    #[schema(value_type = Object)]
    vars: serde_json::Map<String, serde_json::Value>,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Schedule> for ScheduleBody {
    fn from(s: Schedule) -> Self {
        Self {
            id: s.id,
            flow_id: s.flow_id,
            cron: s.cron,
            timezone: s.timezone,
            vars: s.vars,
            enabled: s.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A schedule to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleInput {
    flow_id: Uuid,
    cron: String,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn enabled() -> bool {
    true
}

/// The schedule as the store takes it, once its flow is the caller's and its cron expression
/// and time zone parse.
async fn checked(state: &AppState, caller: &Caller, input: ScheduleInput) -> ApiResult<NewSchedule> {
    let flow = owned_flow(state, caller, input.flow_id).await?;
    crate::scheduler::check(&input.cron, &input.timezone).map_err(ApiError::invalid)?;
    Ok(NewSchedule {
        owner: flow.owner,
        flow_id: flow.id,
        cron: input.cron,
        timezone: input.timezone,
        vars: input.vars,
        enabled: input.enabled,
    })
}

async fn owned(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Schedule> {
    state
        .store
        .schedule(id)
        .await?
        .filter(|s| caller.owns(Some(s.owner)))
        .ok_or_else(|| ApiError::not_found(format!("schedule {id}")))
}

#[utoipa::path(get, path = "/schedules", tag = "schedules", responses((status = 200, body = [ScheduleBody])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ScheduleBody>>> {
    let schedules = state.store.list_schedules(caller.scope()).await?;
    Ok(Json(schedules.into_iter().map(ScheduleBody::from).collect()))
}

#[utoipa::path(post, path = "/schedules", tag = "schedules", request_body = ScheduleInput,
    responses((status = 201, body = ScheduleBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<ScheduleInput>,
) -> ApiResult<(StatusCode, Json<ScheduleBody>)> {
    let new = checked(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(state.store.create_schedule(&new).await?.into())))
}

#[utoipa::path(get, path = "/schedules/{id}", tag = "schedules", params(("id" = Uuid, Path)),
    responses((status = 200, body = ScheduleBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ScheduleBody>> {
    Ok(Json(owned(&state, &caller, id).await?.into()))
}

#[utoipa::path(put, path = "/schedules/{id}", tag = "schedules", params(("id" = Uuid, Path)), request_body = ScheduleInput,
    responses((status = 200, body = ScheduleBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<ScheduleInput>,
) -> ApiResult<Json<ScheduleBody>> {
    owned(&state, &caller, id).await?;
    let new = checked(&state, &caller, input).await?;
    // PUT replaces the whole schedule.
    let update = ScheduleUpdate {
        flow_id: Some(new.flow_id),
        cron: Some(new.cron),
        timezone: Some(new.timezone),
        vars: Some(new.vars),
        enabled: Some(new.enabled),
    };
    let updated = state
        .store
        .update_schedule(id, &update)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id}")))?;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/schedules/{id}", tag = "schedules", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    owned(&state, &caller, id).await?;
    state.store.delete_schedule(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
