//! `POST /api/logs/search` and `GET /api/logs/recent`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sluice_common::event::LogType;
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{
    DEFAULT_SEARCH_SIZE, Hit, MAX_SEARCH_SIZE, SearchQuery, SearchResults, StoreError,
};

use crate::ApiState;
use crate::time_param::{TimeParam, time_range};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchRequest {
    query: Option<String>,
    log_type: Option<String>,
    level: Option<String>,
    service: Option<String>,
    from: Option<TimeParam>,
    to: Option<TimeParam>,
    size: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SearchAnswer {
    total: u64,
    hits: Vec<Box<RawValue>>,
}

pub async fn search(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<SearchAnswer>, ApiError> {
    let request: SearchRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SearchRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_request", format!("search body: {e}")))?
    };
    let query = to_query(request)?;
    run(&state, &query).await
}

fn to_query(request: SearchRequest) -> Result<SearchQuery, ApiError> {
    let log_type = request
        .log_type
        .as_deref()
        .map(|t| {
            t.parse::<LogType>().map_err(|()| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("log_type {t:?} is not one of transaction, error, user_behavior, performance, fraud"),
                )
            })
        })
        .transpose()?;
    let (from_ms, to_ms) = time_range(request.from, request.to)?;
    Ok(SearchQuery {
        text: request.query.filter(|q| !q.trim().is_empty()),
        log_type,
        level: request.level,
        service: request.service,
        from_ms,
        to_ms,
        size: size(request.size, DEFAULT_SEARCH_SIZE, MAX_SEARCH_SIZE)?,
    })
}

pub fn size(requested: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if n >= 0 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(ApiError::bad_request(
            "invalid_request",
            format!("size/limit must be between 0 and {max}, got {n}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct RecentParams {
    limit: Option<i64>,
}

const RECENT_DEFAULT: usize = 50;
const RECENT_MAX: usize = 1_000;

pub async fn recent(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<RecentParams>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let query = SearchQuery {
        size: size(params.limit, RECENT_DEFAULT, RECENT_MAX)?,
        ..SearchQuery::default()
    };
    run(&state, &query).await
}

async fn run(state: &ApiState, query: &SearchQuery) -> Result<Json<SearchAnswer>, ApiError> {
    let SearchResults { total, hits } = state.store.search(query).await.map_err(store_error)?;
    let hits = hits.into_iter().map(hit_json).collect::<Result<_, _>>()?;
    Ok(Json(SearchAnswer { total, hits }))
}

/// The stored document with its id first, as `_id`.
fn hit_json(hit: Hit) -> Result<Box<RawValue>, ApiError> {
    let mut document: Map<String, Value> = serde_json::from_slice(&hit.source)
        .map_err(|e| ApiError::internal(format!("stored document {} is not JSON: {e}", hit.id)))?;
    document.insert("_id".into(), Value::String(hit.id));
    serde_json::value::to_raw_value(&document).map_err(|e| ApiError::internal(e.to_string()))
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        e.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SearchQuery, ApiError> {
        to_query(serde_json::from_str(json).expect("request parses"))
    }

    #[test]
    fn defaults_and_bounds() {
        let q = parse("{}").expect("valid");
        assert_eq!(q.size, DEFAULT_SEARCH_SIZE);
        let q = parse(
            r#"{"from":"2024-05-01T00:00:00Z","to":1714564800000,"size":5,"log_type":"error"}"#,
        )
        .expect("valid");
        assert_eq!(
            (q.from_ms, q.to_ms, q.size),
            (Some(1_714_521_600_000), Some(1_714_564_800_000), 5)
        );
        assert_eq!(q.log_type, Some(LogType::Error));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert!(
            parse(r#"{"log_type":"audit"}"#)
                .expect_err("bad")
                .message
                .contains("audit")
        );
        assert!(
            parse(r#"{"size":100000}"#)
                .expect_err("bad")
                .message
                .contains("10000")
        );
        assert!(parse(r#"{"from":"2024-05-02T00:00:00Z","to":"2024-05-01T00:00:00Z"}"#).is_err());
        assert!(
            parse(r#"{"from":"soon"}"#)
                .expect_err("bad")
                .message
                .starts_with("from")
        );
        let unknown: Result<SearchRequest, _> = serde_json::from_str(r#"{"qeury":"x"}"#);
        assert!(
            unknown
                .expect_err("unknown field")
                .to_string()
                .contains("qeury")
        );
    }
}
