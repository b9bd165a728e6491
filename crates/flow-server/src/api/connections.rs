//! Named connections: shared by the server's users, written by admins; passwords never leave.

use axum::extract::State;
use axum::http::StatusCode;
use flow_engine::{Connection, ConnectionKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Json, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// A connection as shown: the URL with its password replaced by `***`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionBody {
    name: String,
    /// `postgres` or `mongodb`.
    #[schema(value_type = String)]
    kind: ConnectionKind,
    url: String,
    #[schema(value_type = Object)]
    options: serde_json::Map<String, serde_json::Value>,
}

/// A connection to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionInput {
    #[schema(value_type = String)]
    kind: ConnectionKind,
    /// May hold templates (`{{ env.PG_PASSWORD }}`), rendered when a node opens it.
    url: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    options: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(get, path = "/connections", tag = "connections", responses((status = 200, body = [ConnectionBody])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<ConnectionBody>>> {
    let connections = state.store.list_connections().await?;
    Ok(Json(
        connections
            .into_iter()
            .map(|c| ConnectionBody { url: c.redacted_url(), name: c.name, kind: c.kind, options: c.options })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/connections/{name}", tag = "connections", params(("name" = String, Path)), request_body = ConnectionInput,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(input): Json<ConnectionInput>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let connection = Connection { name, kind: input.kind, url: input.url, options: input.options };
    state.engine.save_connection(connection).await.map_err(|e| match e {
        flow_engine::EngineError::InvalidConnection(m) => ApiError::invalid(m),
        other => ApiError::internal(other.to_string()),
    })?;
    state.connections.announce().await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/connections/{name}", tag = "connections", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if state.store.delete_connection(&name).await? {
        state.engine.reload_connections().await?;
        state.connections.announce().await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("connection `{name}`")))
    }
}
