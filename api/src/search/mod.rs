//! `POST /api/logs/search` and `GET /api/logs/recent`: pages of events, newest first or in the
//! order asked, with what matched highlighted.

pub mod export;
mod highlight;
mod request;
pub mod saved;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Hit, SearchQuery, SearchResults, StoreError, TextField, TotalRelation};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::CurrentUser;
pub use request::{SearchRequest, SortCursor, offset_within_window, size, to_query};

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    /// Events matching, on every page, as far as `track_total_hits` counts them.
    pub total: u64,
    /// `eq` when `total` is every match, `gte` when more may match (Elasticsearch's
    /// `hits.total.relation`).
    pub total_relation: Relation,
    /// The stored documents, each with its id as `_id` and, where the search's words occur in
    /// `message` or `error_message`, the marked fragments as `_highlight`.
    #[schema(value_type = Vec<Object>)]
    hits: Vec<Box<RawValue>>,
    /// Pass as `search_after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SortCursor>)]
    next_search_after: Option<(f64, String)>,
}

/// Whether a total is every match or a lower bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    #[default]
    Eq,
    Gte,
}

impl From<TotalRelation> for Relation {
    fn from(relation: TotalRelation) -> Relation {
        match relation {
            TotalRelation::Exact => Relation::Eq,
            TotalRelation::AtLeast => Relation::Gte,
        }
    }
}

/// A page of events; the first page of a search is kept among the caller's recent searches.
#[utoipa::path(
    post,
    path = "/api/logs/search",
    tag = "search",
    summary = "Search events: text, filters, a window, sorting and paging",
    request_body(content = Option<SearchRequest>, description = "An empty body is the empty search: the newest events."),
    responses(
        (status = 200, body = SearchAnswer),
        (status = 400, description = "A body that is not JSON or does not fit, or a query that cannot be read; the error names the field", body = sluice_http::ErrorBody),
        Unavailable,
    )
)]
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
        saved::remember(
            &state,
            &claims.sub,
            &raw,
            answer.total,
            answer.total_relation,
        )
        .await;
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
    if !raw.is_object() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "search body: a JSON object, as the search box and filters fill it",
        ));
    }
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecentParams {
    /// Events, newest first, up to 1,000 (default 50).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<i64>,
}

const RECENT_DEFAULT: usize = 50;
const RECENT_MAX: usize = 1_000;

#[utoipa::path(
    get,
    path = "/api/logs/recent",
    tag = "logs",
    summary = "The newest events",
    params(RecentParams),
    responses((status = 200, body = SearchAnswer), BadRequest, Unavailable)
)]
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
    let SearchResults {
        total,
        total_relation,
        hits,
    } = state.store.search(query).await.map_err(store_error)?;
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
        total_relation: total_relation.into(),
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
