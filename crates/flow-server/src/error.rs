//! The API's one error type: `{"error": {"code", "message", "details"}}` with a 4xx or 5xx
//! status. Every rejection of axum's extractors is turned into it, so no request gets a plain-text
//! or empty error, and nothing below the handlers panics on input.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `precondition_failed`, `precondition_required`, `payload_too_large`,
    /// `unsupported_media_type`, `invalid`, `unavailable`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Structured detail where there is some (e.g. the problems of an invalid flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_owned(), message: self.message, details: self.details },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::invalid(message),
            JsonRejection::JsonSyntaxError(_) => ApiError::bad_request(message),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            _ => ApiError::bad_request(message),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<flow_store::StoreError> for ApiError {
    fn from(e: flow_store::StoreError) -> Self {
        // The store's connection failing is a passing condition for the client; anything else
        // is ours.
        if e.is_unavailable() {
            ApiError::unavailable(format!("the database is unavailable: {e}"))
        } else if let flow_store::StoreError::NameTaken { .. } = e {
            ApiError::conflict(e.to_string())
        } else {
            ApiError::internal(e.to_string())
        }
    }
}

impl From<flow_engine::EngineError> for ApiError {
    fn from(e: flow_engine::EngineError) -> Self {
        match e {
            flow_engine::EngineError::Store(e) => e.into(),
            flow_engine::EngineError::Invalid { report, .. } => {
                ApiError::invalid(format!("the flow has {} problem(s)", report.problems.len()))
                    .details(serde_json::to_value(&report.problems).unwrap_or_default())
            }
            flow_engine::EngineError::InvalidConnection(m)
            | flow_engine::EngineError::InvalidAlertRule(m) => ApiError::invalid(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<flow_queue::QueueError> for ApiError {
    fn from(e: flow_queue::QueueError) -> Self {
        match e {
            flow_queue::QueueError::NotFound(id) => ApiError::not_found(format!("job {id}")),
            flow_queue::QueueError::InvalidState { .. } => ApiError::conflict(e.to_string()),
            e => ApiError::unavailable(format!("the job queue is unavailable: {e}")),
        }
    }
}

/// What every handler returns.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
