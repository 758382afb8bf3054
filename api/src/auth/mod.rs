//! `/api/auth`: register, login, refresh, logout, the caller's own profile and password, token
//! verification, and producer API keys. Who may call each is in `sluice_auth::policy`.

mod extract;
mod throttle;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sluice_auth::accounts::{
    ApiKey, KeyQuota, NewApiKey, NewUser, ProfileChange, PublicUser, TokenPair, User,
};
use sluice_auth::{AccountError, Role};
use sluice_http::responses::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unavailable, UnsupportedMediaType,
};
use sluice_http::{ApiError, JsonBody};
use sluice_telemetry::emit;
use sluice_telemetry::events::LoginAttempted;
use utoipa::ToSchema;

pub use extract::{ClientIp, CurrentUser};
pub use throttle::LoginThrottle;

use crate::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// 3 to 32 letters, digits, `.`, `_` or `-`, starting with a letter or digit; unique, and
    /// kept lower-cased.
    #[schema(pattern = "^\\s*[A-Za-z0-9][A-Za-z0-9._-]{2,31}\\s*$")]
    username: String,
    /// 10 characters to 72 bytes, with three of lower case, upper case, digits and symbols (or
    /// 16 characters or more), neither a common password nor holding the username.
    #[schema(min_length = 10, max_length = 72)]
    password: String,
    /// Unique when given; empty is none.
    #[schema(
        max_length = 254,
        pattern = "^\\s*(?:[^@\\s\\x00-\\x1F\\x7F-\\x9F]+@[^@\\s\\x00-\\x1F\\x7F-\\x9F]*\\.[^@\\s\\x00-\\x1F\\x7F-\\x9F]*)?\\s*$"
    )]
    email: Option<String>,
    /// At most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    display_name: Option<String>,
}

/// One user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswer {
    user: PublicUser,
}

impl From<User> for UserAnswer {
    fn from(user: User) -> UserAnswer {
        UserAnswer {
            user: user.public(),
        }
    }
}

/// Creates an account with the viewer role, when `auth.allow_registration` allows it.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    summary = "Create an account (viewer role), where registration is open",
    request_body = Registration,
    responses(
        (status = 201, description = "The account, with the viewer role", body = UserAnswer),
        (status = 400, description = "A username, password or email that does not fit; the error names the field", body = sluice_http::ErrorBody),
        (status = 403, description = "Registration is closed here (`registration_closed`)", body = sluice_http::ErrorBody),
        (status = 409, description = "The username or email is taken; the error names the field", body = sluice_http::ErrorBody),
        UnsupportedMediaType,
        TooManyRequests,
        Unavailable,
    )
)]
pub async fn register(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    if !state.registration_open {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "registration is closed here; ask an administrator for an account",
        ));
    }
    // Each registration costs a bcrypt hash: counted with logins so it cannot burn the CPU.
    state.login.admit_address(ip)?;
    let user = state
        .accounts
        .create_user(NewUser {
            username: registration.username,
            password: registration.password,
            email: registration.email,
            display_name: registration.display_name,
            role: Role::Viewer,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserAnswer::from(user))).into_response())
}

/// Whether this server takes new accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationAnswer {
    /// `POST /api/auth/register` creates viewer accounts; when false, an administrator creates
    /// them.
    open: bool,
}

/// Whether anyone may create an account here, so the login page offers it only where it works.
#[utoipa::path(
    get,
    path = "/api/auth/registration",
    tag = "auth",
    summary = "Whether registration is open here",
    responses(
        (status = 200, description = "Whether `POST /api/auth/register` takes new accounts", body = RegistrationAnswer),
    )
)]
pub async fn registration(State(state): State<ApiState>) -> Json<RegistrationAnswer> {
    Json(RegistrationAnswer {
        open: state.registration_open,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    summary = "Log in: an access token (15 minutes by default) and a refresh token",
    request_body = Credentials,
    responses(
        (status = 200, description = "A new session's tokens", body = TokenPair),
        BadRequest,
        (status = 401, description = "Wrong username or password (`invalid_credentials`)", body = sluice_http::ErrorBody),
        UnsupportedMediaType,
        (status = 429, description = "Too many attempts from this address or for this username (`login_rate_limited`, `login_locked`); Retry-After says when to try again", body = sluice_http::ErrorBody),
        Unavailable,
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let username = LoginThrottle::username_key(&credentials.username);
    if let Err(refused) = state.login.admit(ip, &username).await {
        let outcome = if refused.code == "login_locked" {
            "locked"
        } else {
            "rate_limited"
        };
        emit(LoginAttempted {
            username: &username,
            outcome,
        });
        return Err(refused);
    }
    match state
        .accounts
        .check_password(&username, &credentials.password)
        .await
    {
        Ok(user) => {
            state.login.succeeded(&username).await?;
            emit(LoginAttempted {
                username: &username,
                outcome: "success",
            });
            let tokens = state.accounts.start_session(&user).await?;
            Ok(Json(tokens).into_response())
        }
        Err(AccountError::InvalidCredentials) => {
            state.login.failed(&username).await?;
            emit(LoginAttempted {
                username: &username,
                outcome: "invalid_credentials",
            });
            Err(AccountError::InvalidCredentials.into())
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Rotates the session's refresh token: the one presented is spent.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    summary = "Trade a refresh token for a new pair; presenting a spent one revokes the session",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The session's new tokens", body = TokenPair),
        BadRequest,
        (status = 401, description = "The refresh token is invalid, expired, or was already used (the session is then revoked)", body = sluice_http::ErrorBody),
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn refresh(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens = state.accounts.refresh(&request.refresh_token).await?;
    Ok(Json(tokens).into_response())
}

/// Ends the session of the token presented.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    summary = "End this session",
    responses((status = 204, description = "The session is over"), Unavailable)
)]
pub async fn logout(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.end_session(&claims.sid, "logout").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    sessions_ended: usize,
}

/// Ends every session of the caller, this one included.
#[utoipa::path(
    post,
    path = "/api/auth/logout-all",
    tag = "auth",
    summary = "End every session of the caller, this one included",
    responses((status = 200, body = SessionsEnded), Unavailable)
)]
pub async fn logout_all(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state.accounts.end_sessions_of(&claims.sub, None).await?;
    Ok(Json(SessionsEnded {
        sessions_ended: ended,
    }))
}

/// The caller as stored now (not as the token remembers it).
pub async fn current_user(
    state: &ApiState,
    claims: &sluice_auth::tokens::Claims,
) -> Result<User, ApiError> {
    state
        .accounts
        .user(&claims.sub)
        .await?
        .ok_or_else(|| AccountError::SessionEnded.into())
}

#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    summary = "The caller, as stored now",
    responses((status = 200, body = UserAnswer), Unavailable)
)]
pub async fn me(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<UserAnswer>, ApiError> {
    let user = current_user(&state, &claims).await?;
    Ok(Json(user.into()))
}

/// Fields left out stay as they are; `null` clears one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Unique; empty or null clears it.
    #[serde(default, deserialize_with = "crate::present")]
    #[schema(value_type = Option<String>, max_length = 254, pattern = "^\\s*(?:[^@\\s\\x00-\\x1F\\x7F-\\x9F]+@[^@\\s\\x00-\\x1F\\x7F-\\x9F]*\\.[^@\\s\\x00-\\x1F\\x7F-\\x9F]*)?\\s*$")]
    email: Option<Option<String>>,
    /// At most 100 characters, no control characters; empty or null clears it.
    #[serde(default, deserialize_with = "crate::present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    display_name: Option<Option<String>>,
}

#[utoipa::path(
    put,
    path = "/api/auth/me",
    tag = "auth",
    summary = "Change the caller's email or display name",
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The caller as changed", body = UserAnswer),
        BadRequest,
        Conflict,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn update_me(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(update): JsonBody<ProfileUpdate>,
) -> Result<Json<UserAnswer>, ApiError> {
    let me = current_user(&state, &claims).await?;
    let user = state
        .accounts
        .update_user(
            me.role,
            &me.id,
            ProfileChange {
                email: update.email,
                display_name: update.display_name,
                role: None,
            },
        )
        .await?;
    Ok(Json(user.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// 10 characters to 72 bytes, with three of lower case, upper case, digits and symbols (or
    /// 16 characters or more), neither a common password nor holding the username.
    #[schema(min_length = 10, max_length = 72)]
    new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    password_changed: bool,
    /// The caller's other sessions, ended with the change.
    other_sessions_ended: usize,
}

/// Changes the caller's password; every other session of theirs ends.
#[utoipa::path(
    post,
    path = "/api/auth/change-password",
    tag = "auth",
    summary = "Change the caller's password; their other sessions end",
    request_body = PasswordChange,
    responses(
        (status = 200, body = PasswordChanged),
        (status = 400, description = "The current password is wrong, or the new one does not fit the rules; the error names the field", body = sluice_http::ErrorBody),
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn change_password(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let ended = state
        .accounts
        .change_password(
            &claims.sub,
            &change.current_password,
            &change.new_password,
            &claims.sid,
        )
        .await?;
    Ok(Json(PasswordChanged {
        password_changed: true,
        other_sessions_ended: ended,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    valid: bool,
    user: TokenUser,
    /// When the access token expires, epoch seconds.
    expires_at: i64,
}

/// The user as the token names them.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenUser {
    id: String,
    username: String,
    role: Role,
}

/// Whether the token presented is good, and whose it is: for proxies and the UI.
#[utoipa::path(
    get,
    path = "/api/auth/verify",
    tag = "auth",
    summary = "Whether the token presented is good, and whose it is",
    responses((status = 200, body = Verification))
)]
pub async fn verify(CurrentUser(claims): CurrentUser) -> Json<Verification> {
    Json(Verification {
        valid: true,
        user: TokenUser {
            id: claims.sub,
            username: claims.name,
            role: claims.role,
        },
        expires_at: claims.exp,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// What the key is for (a shipper, a host): 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    name: String,
    /// The key's own quota instead of `[ingest.quota]`'s defaults; administrators only.
    #[serde(default)]
    quota: Option<KeyQuota>,
}

/// A new producer API key; its secret is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = "/api/auth/api-keys",
    tag = "auth",
    summary = "Create a producer API key; its secret is in this answer only",
    request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret (`api_key`) and the form Elasticsearch clients send (`encoded`)", body = NewApiKey),
        BadRequest,
        Forbidden,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn create_api_key(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(request): JsonBody<ApiKeyRequest>,
) -> Result<Response, ApiError> {
    let owner = current_user(&state, &claims).await?;
    if request.quota.is_some() && owner.role < Role::Admin {
        return Err(quota_needs_admin(&owner));
    }
    let quota = request.quota.unwrap_or_default();
    let created = state
        .accounts
        .create_api_key(&owner, &request.name, quota)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeys {
    /// The caller's keys, without their secrets.
    api_keys: Vec<ApiKey>,
}

#[utoipa::path(
    get,
    path = "/api/auth/api-keys",
    tag = "auth",
    summary = "The caller's API keys, without their secrets",
    responses((status = 200, body = ApiKeys), Unavailable)
)]
pub async fn list_api_keys(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<ApiKeys>, ApiError> {
    let keys = state.accounts.api_keys_of(&claims.sub).await?;
    Ok(Json(ApiKeys { api_keys: keys }))
}

fn quota_needs_admin(user: &User) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_role",
        format!(
            "a key's own quota is an administrator's to give; {} is {}: leave quota out to take \
             the defaults",
            user.username, user.role
        ),
    )
    .field("quota")
}

/// Gives a key its own quota, in place of `[ingest.quota]`'s defaults, from its next request.
#[utoipa::path(
    put,
    path = "/api/auth/api-keys/{id}/quota",
    tag = "auth",
    summary = "Set an API key's own quota (administrators)",
    params(("id" = String, Path, description = "The key's id")),
    request_body = KeyQuota,
    responses(
        (status = 200, description = "The key, with its quota", body = ApiKey),
        BadRequest,
        Forbidden,
        NotFound,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn set_api_key_quota(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(quota): JsonBody<KeyQuota>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(state.accounts.set_api_key_quota(&id, quota).await?))
}

/// Revokes one of the caller's keys (an admin may revoke anyone's).
#[utoipa::path(
    delete,
    path = "/api/auth/api-keys/{id}",
    tag = "auth",
    summary = "Revoke an API key",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "The key no longer works"),
        NotFound,
        Unavailable,
    )
)]
pub async fn delete_api_key(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = current_user(&state, &claims).await?;
    state.accounts.revoke_api_key(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
