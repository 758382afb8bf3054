//! `/api/auth`: register, login, refresh, logout, the caller's own profile and password, token
//! verification, and producer API keys. Who may call each is in `sluice_auth::policy`.

mod extract;
mod throttle;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_auth::accounts::{NewUser, ProfileChange, User};
use sluice_auth::{AccountError, Role};
use sluice_http::{ApiError, JsonBody};
use sluice_telemetry::emit;
use sluice_telemetry::events::LoginAttempted;

pub use extract::{ClientIp, CurrentUser};
pub use throttle::LoginThrottle;

use crate::ApiState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    username: String,
    password: String,
    email: Option<String>,
    display_name: Option<String>,
}

pub async fn register(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    if !state.accounts.config().allow_registration {
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
    Ok((StatusCode::CREATED, Json(json!({ "user": user.public() }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens = state.accounts.refresh(&request.refresh_token).await?;
    Ok(Json(tokens).into_response())
}

/// Ends the session of the token presented.
pub async fn logout(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.end_session(&claims.sid, "logout").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller, this one included.
pub async fn logout_all(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let ended = state.accounts.end_sessions_of(&claims.sub, None).await?;
    Ok(Json(json!({ "sessions_ended": ended })))
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

pub async fn me(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    Ok(Json(json!({ "user": user.public() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default, deserialize_with = "crate::present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::present")]
    display_name: Option<Option<String>>,
}

pub async fn update_me(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(update): JsonBody<ProfileUpdate>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "user": user.public() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<Value>, ApiError> {
    let ended = state
        .accounts
        .change_password(
            &claims.sub,
            &change.current_password,
            &change.new_password,
            &claims.sid,
        )
        .await?;
    Ok(Json(
        json!({ "password_changed": true, "other_sessions_ended": ended }),
    ))
}

/// Whether the token presented is good, and whose it is: for proxies and the UI.
pub async fn verify(CurrentUser(claims): CurrentUser) -> Json<Value> {
    Json(json!({
        "valid": true,
        "user": {"id": claims.sub, "username": claims.name, "role": claims.role},
        "expires_at": claims.exp,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    name: String,
}

/// A new producer API key; its secret is in this answer and nowhere else.
pub async fn create_api_key(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(request): JsonBody<ApiKeyRequest>,
) -> Result<Response, ApiError> {
    let owner = current_user(&state, &claims).await?;
    let created = state.accounts.create_api_key(&owner, &request.name).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list_api_keys(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let keys = state.accounts.api_keys_of(&claims.sub).await?;
    Ok(Json(json!({ "api_keys": keys })))
}

pub async fn delete_api_key(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = current_user(&state, &claims).await?;
    state.accounts.revoke_api_key(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
