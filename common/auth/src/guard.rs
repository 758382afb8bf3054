//! The middleware in front of every route: looks the route up in [`policy::ROUTES`], checks the
//! credentials it needs, and hands the handler a [`Principal`] in the request extensions.
//! Without credentials: 401; with too small a role, or an API key off the ingest routes: 403.
//! Both answer with the JSON error body.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::accounts::{AccountError, Accounts, ApiKeyPrincipal};
use super::policy::{self, Access};
use super::tokens::{Claims, TokenKind};
use sluice_http::ApiError;
use sluice_telemetry::emit;
use sluice_telemetry::events::AuthRefused;

/// Who is calling, as the guard established it.
#[derive(Debug, Clone)]
pub enum Principal {
    User(Claims),
    ApiKey(ApiKeyPrincipal),
}

const CHALLENGE: &str = "Bearer realm=\"sluice\", ApiKey realm=\"sluice\"";

pub async fn authorize(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Unmatched paths go on to the router's 404.
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let access = match policy::access_for(request.method().as_str(), &route) {
        Some(access) => access,
        // A method the route does not have: the router answers 405.
        None if policy::ROUTES.iter().any(|(_, r, _)| *r == route) => {
            return next.run(request).await;
        }
        None => {
            tracing::error!(%route, "route has no entry in the access policy; refusing");
            return refuse(
                &route,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no_access_rule",
                    "this route has no access rule, so nobody may call it",
                ),
            );
        }
    };
    let required = match access {
        Access::Public => return next.run(request).await,
        Access::User(role) => role,
        Access::Ingest => super::Role::Analyst,
    };
    let principal = match authenticate(&accounts, request.headers()).await {
        Ok(principal) => principal,
        Err(error) => return refuse(&route, error),
    };
    match &principal {
        Principal::User(claims) if claims.role < required => {
            return refuse(
                &route,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_role",
                    format!(
                        "this needs the {required} role or higher; {} is {}",
                        claims.name, claims.role
                    ),
                ),
            );
        }
        Principal::ApiKey(_) if access != Access::Ingest => {
            return refuse(
                &route,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "api_key_not_allowed",
                    "API keys can only send logs; log in for anything else",
                ),
            );
        }
        _ => {}
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn refuse(route: &str, error: ApiError) -> Response {
    emit(AuthRefused {
        route,
        status: error.status.as_u16(),
        reason: error.code,
    });
    error.into_response()
}

/// The principal named by the `Authorization` header.
async fn authenticate(accounts: &Accounts, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_credentials",
            "send Authorization: Bearer <access token> (from /api/auth/login), or \
             ApiKey <key> to send logs",
        )
        .challenge(CHALLENGE));
    };
    let value = value.to_str().unwrap_or_default().trim();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        let claims = accounts
            .tokens()
            .verify(credential, TokenKind::Access)
            .map_err(AccountError::from)?;
        if !accounts.session_is_live(&claims).await? {
            return Err(AccountError::SessionEnded.into());
        }
        Ok(Principal::User(claims))
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Ok(Principal::ApiKey(
            accounts.authenticate_api_key(credential).await?,
        ))
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unsupported_credentials",
            format!(
                "the {scheme:?} scheme is not accepted; use Bearer <access token> or ApiKey <key>"
            ),
        )
        .challenge(CHALLENGE))
    }
}
