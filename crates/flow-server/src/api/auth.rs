//! `POST /auth/login`: a token for a username and password.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Json;
use crate::auth::verify_password;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Token {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()), request_body = Login,
    responses((status = 200, body = Token), (status = 401, body = ErrorBody)))]
pub(crate) async fn login(State(state): State<AppState>, Json(login): Json<Login>) -> ApiResult<Json<Token>> {
    let user = state.store.user_by_name(&login.username).await?;
    // The same answer whether the user is unknown or the password wrong: names are not probed.
    let Some(user) = user.filter(|u| verify_password(&login.password, &u.password_hash)) else {
        return Err(ApiError::unauthorized("unknown username or wrong password"));
    };
    let (token, expires_at) = state.tokens.issue(&user)?;
    Ok(Json(Token { token, expires_at }))
}
