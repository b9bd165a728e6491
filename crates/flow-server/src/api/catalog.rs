//! `GET /catalog`: every node type the server's engine knows.

use axum::extract::State;

use super::Json;
use crate::auth::Caller;
use crate::state::AppState;

#[utoipa::path(get, path = "/catalog", tag = "catalog",
    responses((status = 200, description = "Node descriptors: type, ports, params JSON Schema, output schema", body = [Object])))]
pub(crate) async fn catalog(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<Vec<flow_engine::NodeDescriptor>> {
    Json(state.engine.catalog())
}
