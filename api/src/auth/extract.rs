//! What handlers behind the guard take as arguments: the calling user, and the client address
//! the login throttle counts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sluice_auth::tokens::Claims;
use sluice_auth::{AccountError, Principal};
use sluice_http::ApiError;

/// The user whose access token the guard accepted.
pub struct CurrentUser(pub Claims);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<Principal>() {
            Some(Principal::User(claims)) => Ok(CurrentUser(claims.clone())),
            // Only reachable if a route's policy entry lets API keys or everyone in.
            _ => Err(AccountError::SessionEnded.into()),
        }
    }
}

/// The peer address of the connection. Behind a reverse proxy every client shares the proxy's
/// address; see docs/api.md.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
        ))
    }
}
