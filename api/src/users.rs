//! `/api/users`: user administration. Moderators list, read and change users (never granting
//! admin nor changing an admin); admins also delete. The last admin stays.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_auth::Role;
use sluice_auth::accounts::{AccountError, ProfileChange, UserFilter};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::Page;

use crate::ApiState;
use crate::auth::{CurrentUser, current_user};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    offset: u64,
    limit: Option<u64>,
    role: Option<String>,
    username: Option<String>,
}

fn role_param(field: &'static str, text: &str) -> Result<Role, ApiError> {
    text.parse::<Role>()
        .map_err(|reason| ApiError::bad_request("invalid_field", reason).field(field))
}

pub async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )
        .field("limit"));
    }
    let filter = UserFilter {
        role: params
            .role
            .as_deref()
            .map(|r| role_param("role", r))
            .transpose()?,
        username: params.username,
    };
    let page = Page {
        offset: params.offset,
        limit,
    };
    let (users, total) = state.accounts.list_users(&filter, page).await?;
    Ok(Json(json!({
        "users": users.iter().map(|u| u.public()).collect::<Vec<_>>(),
        "total": total,
        "offset": params.offset,
        "limit": limit,
    })))
}

pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = state
        .accounts
        .user(&id)
        .await?
        .ok_or(AccountError::NotFound("user"))?;
    Ok(Json(json!({ "user": user.public() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    role: Option<String>,
    #[serde(default, deserialize_with = "crate::present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::present")]
    display_name: Option<Option<String>>,
}

pub async fn update(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
    JsonBody(update): JsonBody<UserUpdate>,
) -> Result<Json<Value>, ApiError> {
    let actor = current_user(&state, &claims).await?;
    let change = ProfileChange {
        role: update
            .role
            .as_deref()
            .map(|r| role_param("role", r))
            .transpose()?,
        email: update.email,
        display_name: update.display_name,
    };
    let user = state.accounts.update_user(actor.role, &id, change).await?;
    Ok(Json(json!({ "user": user.public() })))
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.accounts.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
