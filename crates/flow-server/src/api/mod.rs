//! The REST API: one module per resource, each handler registered together with its OpenAPI
//! operation (utoipa-axum), so the document at `/openapi.json` lists every route.

mod auth;
mod catalog;
mod connections;
mod executions;
mod flows;
mod health;
mod metrics;
mod monitoring;
mod queue;
mod schedules;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest flow document accepted.
pub const FLOW_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Largest body of every other request.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body; malformed, mistyped or oversized bodies are answered with [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a malformed id is a 400 with our error body.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub T);

/// Query parameters, likewise.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

#[derive(OpenApi)]
#[openapi(
    info(title = "Flow Platform", description = "Flows, executions, schedules and the job queue of a Flow Platform server. Every route but /health and /metrics (METRICS_TOKEN, when set) needs `Authorization: Bearer <token>` from POST /auth/login."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        // `GET /metrics` only, when the server has a METRICS_TOKEN.
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its operation.
fn routes() -> OpenApiRouter<AppState> {
    let flows = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(flows::list, flows::create))
        .routes(utoipa_axum::routes!(flows::get, flows::update, flows::delete))
        .routes(utoipa_axum::routes!(flows::validate))
        .layer(DefaultBodyLimit::max(FLOW_BODY_LIMIT));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(health::health))
        .routes(utoipa_axum::routes!(metrics::metrics))
        .routes(utoipa_axum::routes!(auth::login))
        .routes(utoipa_axum::routes!(catalog::catalog))
        .merge(flows)
        .routes(utoipa_axum::routes!(flows::run))
        .routes(utoipa_axum::routes!(executions::list))
        .routes(utoipa_axum::routes!(executions::get))
        .routes(utoipa_axum::routes!(executions::cancel))
        .routes(utoipa_axum::routes!(executions::pause))
        .routes(utoipa_axum::routes!(executions::resume))
        .routes(utoipa_axum::routes!(connections::list))
        .routes(utoipa_axum::routes!(connections::put, connections::delete))
        .routes(utoipa_axum::routes!(schedules::list, schedules::create))
        .routes(utoipa_axum::routes!(schedules::get, schedules::update, schedules::delete))
        .routes(utoipa_axum::routes!(monitoring::system))
        .routes(utoipa_axum::routes!(monitoring::health))
        .routes(utoipa_axum::routes!(monitoring::dashboard))
        .routes(utoipa_axum::routes!(monitoring::flows))
        .routes(utoipa_axum::routes!(monitoring::nodes))
        .routes(utoipa_axum::routes!(monitoring::alerts))
        .routes(utoipa_axum::routes!(monitoring::alert_rules, monitoring::create_alert_rule))
        .routes(utoipa_axum::routes!(monitoring::delete_alert_rule))
        .routes(utoipa_axum::routes!(queue::page))
        .routes(utoipa_axum::routes!(queue::counts))
        .routes(utoipa_axum::routes!(queue::jobs))
        .routes(utoipa_axum::routes!(queue::retry))
        .routes(utoipa_axum::routes!(queue::discard))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The whole HTTP face: REST routes (`GET /executions` with `Upgrade: websocket` is the live
/// event socket), `/openapi.json` and `/docs`.
pub(crate) fn router(state: AppState) -> Router {
    let (api, doc) = routes().split_for_parts();
    api.layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(state)
}
