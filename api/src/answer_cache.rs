//! Reuse of analytics answers for a few seconds (`cache.answer_ttl_secs`, default 10), through
//! the cache trait, so a dashboard open on many screens, refreshing every few seconds, costs the
//! store one set of aggregations per interval instead of one per screen.
//!
//! The key is the path and the query string with its parameters sorted; answers do not depend
//! on who asks (the guard has already checked that they may). Only 200 answers are kept, and
//! only small ones. A cache that fails is logged and counted and the answer computed.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_telemetry::emit;
use sluice_telemetry::events::AnswerCacheLookup;

use crate::ApiState;

/// Answers larger than this are not kept.
const MAX_CACHED_BYTES: usize = 2 * 1024 * 1024;
/// Analytics answers are bounded (top lists, buckets); this only guards against a runaway one.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
const CACHE_HEADER: &str = "x-sluice-cache";

fn key(request: &Request) -> String {
    let mut params: Vec<&str> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    params.sort_unstable();
    format!("answer:{}?{}", request.uri().path(), params.join("&"))
}

pub async fn reuse_answers(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    if state.answer_ttl.is_zero() {
        return next.run(request).await;
    }
    let key = key(&request);
    let cache = state.accounts.cache();
    match cache.get(&key).await {
        Ok(Some(bytes)) => {
            emit(AnswerCacheLookup {
                outcome: "hit",
                error: None,
            });
            return answer(StatusCode::OK, Body::from(bytes), "hit");
        }
        Ok(None) => emit(AnswerCacheLookup {
            outcome: "miss",
            error: None,
        }),
        Err(e) => emit(AnswerCacheLookup {
            outcome: "error",
            error: Some(&e.to_string()),
        }),
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return sluice_http::ApiError::internal(format!("reading the answer: {e}"))
                .into_response();
        }
    };
    if bytes.len() <= MAX_CACHED_BYTES
        && let Err(e) = cache.set(&key, bytes.to_vec(), state.answer_ttl).await
    {
        emit(AnswerCacheLookup {
            outcome: "error",
            error: Some(&e.to_string()),
        });
    }
    let mut response = Response::from_parts(parts, Body::from(bytes));
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
    response
}

fn answer(status: StatusCode, body: Body, outcome: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(CACHE_HEADER, HeaderValue::from_static(outcome));
    response
}
