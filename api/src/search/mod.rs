//! `POST /api/logs/search` and `GET /api/logs/recent`: pages of events, newest first or in the
//! order asked, with what matched highlighted.

mod export;
mod highlight;
mod request;
pub mod saved;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Hit, SearchQuery, SearchResults, StoreError, TextField};

use crate::ApiState;
use crate::auth::CurrentUser;
pub use export::export;
pub use request::{SearchRequest, offset_within_window, size, to_query};

#[derive(Debug, Serialize)]
pub struct SearchAnswer {
    pub total: u64,
    hits: Vec<Box<RawValue>>,
    /// Pass as `search_after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_search_after: Option<(f64, String)>,
}

pub async fn search(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    body: Bytes,
) -> Result<Json<SearchAnswer>, ApiError> {
    let (raw, request) = parse_body(&body)?;
    let highlight = request.highlight.unwrap_or(true);
    let query = to_query(request)?;
    let answer = run(&state, &query, highlight).await?;
    if query.offset == 0 && query.search_after.is_none() {
        saved::remember(&state, &claims.sub, &raw, answer.total).await;
    }
    Ok(answer)
}

/// A search body, as sent (for recent searches) and checked. An empty body is the empty search.
pub fn parse_body(body: &[u8]) -> Result<(Value, SearchRequest), ApiError> {
    let raw: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("malformed_json", format!("search body: {e}")))?
    };
    // With the path of what is wrong (`search_after[0]`), which serde alone leaves out.
    let request = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request("invalid_request", format!("search body: {at}{}", e.inner()))
    })?;
    Ok((raw, request))
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
    run(&state, &query, false).await
}

async fn run(
    state: &ApiState,
    query: &SearchQuery,
    highlight: bool,
) -> Result<Json<SearchAnswer>, ApiError> {
    let SearchResults { total, hits } = state.store.search(query).await.map_err(store_error)?;
    let next_search_after = match hits.last() {
        Some(last) if hits.len() == query.size => Some((last.sort.value, last.sort.id.clone())),
        _ => None,
    };
    let phrases: Vec<&str> = match (&query.text, highlight) {
        (Some(text), true) => text.positive_phrases(),
        _ => Vec::new(),
    };
    let hits = hits
        .into_iter()
        .map(|hit| hit_json(hit, &phrases))
        .collect::<Result<_, _>>()?;
    Ok(Json(SearchAnswer {
        total,
        hits,
        next_search_after,
    }))
}

/// A hit as answers and exports show it: the stored document with its id as `_id` and, where the
/// search's words occur in its text, the marked fragments as `_highlight`.
pub(crate) fn hit_document(hit: Hit, phrases: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let mut document: Map<String, Value> = serde_json::from_slice(&hit.source).map_err(|e| {
        ApiError::internal(format!("stored document {} is not JSON: {e}", hit.id()))
    })?;
    if !phrases.is_empty() {
        let marked = |field: TextField| {
            document
                .get(field.name())
                .and_then(Value::as_str)
                .map(|text| highlight::fragments(text, phrases))
                .unwrap_or_default()
        };
        let highlights = highlight::Highlights {
            message: marked(TextField::Message),
            error_message: marked(TextField::ErrorMessage),
        };
        if !highlights.is_empty() {
            let highlights =
                serde_json::to_value(highlights).map_err(|e| ApiError::internal(e.to_string()))?;
            document.insert("_highlight".into(), highlights);
        }
    }
    document.insert("_id".into(), Value::String(hit.sort.id));
    Ok(document)
}

fn hit_json(hit: Hit, phrases: &[&str]) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(&hit_document(hit, phrases)?)
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        e.to_string(),
    )
}
