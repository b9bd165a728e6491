//! `GET /metrics`: the engine's metrics of this process and the queue's, in the Prometheus text
//! format. No login token (Prometheus cannot log in): open, or the METRICS_TOKEN bearer when set
//! (`crate::metrics`, `docs/server.md`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::metrics::queue_exposition;
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "monitoring", security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition (version 0.0.4): `flow_*` engine metrics of this process, `flow_queue_*` of the deployment's queue", content_type = "text/plain"),
        (status = 401, description = "METRICS_TOKEN is set and the request did not bring it", body = ErrorBody),
        (status = 404, description = "Metrics are off (ENABLE_METRICS=false)", body = ErrorBody),
    ))]
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let exporter =
        state.metrics.as_ref().ok_or_else(|| ApiError::not_found("metrics (ENABLE_METRICS=false)"))?;
    exporter.authorize(&headers)?;
    // A queue that does not answer is reported as `flow_queue_up 0`; the engine's figures still
    // come out.
    let queue = state.queue.metrics().await;
    if let Err(e) = &queue {
        tracing::warn!(error = %e, "/metrics: the queue's figures are missing");
    }
    Ok(exporter.render(&queue_exposition(queue.as_ref().ok())))
}
