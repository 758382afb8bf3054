//! HTTP pieces every role shares: the JSON error body (`{"error": {"code", "message"}}`), the
//! per-route latency middleware, the lingering read of refused bodies and the accept loop.

mod json;
mod linger;
mod query;
pub mod responses;
mod server;
mod tls;

pub use json::JsonBody;
pub use linger::discard_unread_body;
pub use query::QueryParams;
pub use responses::{ErrorBody, ErrorObject};
pub use server::{READ_BUFFER_BYTES, serve};
pub use tls::{TlsError, TlsListener};

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use sluice_telemetry::emit;
use sluice_telemetry::events::HttpRequestServed;

/// An error answered to a client: a status, a stable machine-readable code and a sentence a
/// person can act on. Never a stack trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429/503 answers.
    pub retry_after: Option<u64>,
    /// The request field at fault, when there is one.
    pub field: Option<&'static str>,
    /// A `WWW-Authenticate` challenge, for 401 answers.
    pub challenge: Option<Box<str>>,
    /// Further facts for the client, as members of the error object (the path and free bytes
    /// of a full disk). A list rather than a map keeps `ApiError` small: it is the error type
    /// of most handlers, and there are rarely more than two.
    pub details: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            field: None,
            challenge: None,
            details: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn field(mut self, field: &'static str) -> ApiError {
        self.field = Some(field);
        self
    }

    pub fn detail(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> ApiError {
        self.details.push((key, value.into()));
        self
    }

    pub fn challenge(mut self, challenge: impl Into<String>) -> ApiError {
        self.challenge = Some(challenge.into().into_boxed_str());
        self
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorObject {
                code: self.code.to_owned(),
                message: self.message.clone(),
                field: self.field.map(str::to_owned),
                details: self
                    .details
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), value.clone()))
                    .collect(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Tells browsers to come back over HTTPS only, for a year (HSTS): added to every answer of a
/// listener that speaks TLS, so the web UI is never loaded over plain HTTP again.
pub async fn strict_transport_security(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::STRICT_TRANSPORT_SECURITY)
        .or_insert(HeaderValue::from_static("max-age=31536000"));
    response
}

/// Records each request's latency under its route template (`/api/logs/{id}`, not the raw path,
/// so the label set stays bounded).
pub async fn track_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    emit(HttpRequestServed {
        method,
        route,
        status: response.status().as_u16(),
        duration: started.elapsed(),
    });
    response
}
