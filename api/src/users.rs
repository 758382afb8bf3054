//! `/api/users`: user administration. Moderators list, read and change users (never granting
//! admin nor changing an admin); admins also delete. The last admin stays.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_auth::Role;
use sluice_auth::accounts::{AccountError, ProfileChange, PublicUser, UserFilter};
use sluice_http::responses::{BadRequest, Conflict, NotFound, Unavailable, UnsupportedMediaType};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::Page;
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::{CurrentUser, UserAnswer, current_user};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Users to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    offset: u64,
    /// Users per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
    /// Only users with this role.
    #[param(value_type = Option<Role>, inline)]
    role: Option<String>,
    /// Only usernames starting with this.
    username: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsersAnswer {
    users: Vec<PublicUser>,
    /// Users matching, on every page.
    total: u64,
    offset: u64,
    limit: u64,
}

/// Deepest a listing pages: far beyond any list of users or saved searches, and within what
/// every meta store takes as an offset.
const MAX_OFFSET: u64 = 1_000_000_000;

pub(crate) fn check_offset(offset: u64) -> Result<(), ApiError> {
    if offset > MAX_OFFSET {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("offset must be at most {MAX_OFFSET}"),
        )
        .field("offset"));
    }
    Ok(())
}

fn role_param(field: &'static str, text: &str) -> Result<Role, ApiError> {
    text.parse::<Role>()
        .map_err(|reason| ApiError::bad_request("invalid_field", reason).field(field))
}

#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    summary = "Users, a page at a time, by role or username",
    params(ListParams),
    responses((status = 200, body = UsersAnswer), BadRequest, Unavailable)
)]
pub async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<UsersAnswer>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    check_offset(params.offset)?;
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
    Ok(Json(UsersAnswer {
        users: users.iter().map(|u| u.public()).collect(),
        total,
        offset: params.offset,
        limit,
    }))
}

#[utoipa::path(
    get,
    path = "/api/users/{id}",
    tag = "users",
    summary = "One user",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 200, body = UserAnswer), NotFound, Unavailable)
)]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<UserAnswer>, ApiError> {
    let user = state
        .accounts
        .user(&id)
        .await?
        .ok_or(AccountError::NotFound("user"))?;
    Ok(Json(user.into()))
}

/// Fields left out stay as they are; `null` clears the email or display name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Unique; empty or null clears it.
    #[serde(default, deserialize_with = "crate::present")]
    #[schema(value_type = Option<String>, max_length = 254, pattern = "^\\s*(?:[^@\\s\\x00-\\x1F\\x7F-\\x9F]+@[^@\\s\\x00-\\x1F\\x7F-\\x9F]*\\.[^@\\s\\x00-\\x1F\\x7F-\\x9F]*)?\\s*$")]
    email: Option<Option<String>>,
    /// At most 100 characters, no control characters; empty or null clears it.
    #[serde(default, deserialize_with = "crate::present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    display_name: Option<Option<String>>,
}

/// Moderators change viewers, analysts and moderators, and never grant admin; admins change
/// anyone, but the last admin stays an admin.
#[utoipa::path(
    put,
    path = "/api/users/{id}",
    tag = "users",
    summary = "Change a user's role, email or display name",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user as changed", body = UserAnswer),
        BadRequest,
        (status = 403, description = "A moderator granting admin or changing an admin (`forbidden`)", body = sluice_http::ErrorBody),
        NotFound,
        Conflict,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn update(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
    JsonBody(update): JsonBody<UserUpdate>,
) -> Result<Json<UserAnswer>, ApiError> {
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
    Ok(Json(user.into()))
}

#[utoipa::path(
    delete,
    path = "/api/users/{id}",
    tag = "users",
    summary = "Delete a user, their sessions and API keys; never the last admin",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "The user is gone"),
        NotFound,
        (status = 409, description = "This is the last admin (`last_admin`)", body = sluice_http::ErrorBody),
        Unavailable,
    )
)]
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.accounts.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
