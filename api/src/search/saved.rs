//! Saved searches (`POST /api/logs/search/save`, `GET /api/logs/search/saved`,
//! `DELETE /api/logs/search/saved/{id}`), kept in the meta store per user, and recent searches
//! (`GET /api/logs/search/recent`), the last 20 per user, kept in the cache.
//!
//! A saved search is checked like a search when it is saved, so one that would be refused is
//! never stored. Recent searches are a convenience: a cache that is down loses them and costs the
//! search nothing, and two searches by one user at the same instant may keep only one of them.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_auth::accounts::{AccountError, new_id};
use sluice_http::responses::{BadRequest, NotFound, Unavailable, UnsupportedMediaType};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::{Collection, MetaError, Page};
use utoipa::{IntoParams, ToSchema};

use super::Relation;
use super::request::{SearchRequest, to_query};
use crate::ApiState;
use crate::auth::CurrentUser;
use crate::users::check_offset;
use sluice_event::format_rfc3339_ms;

pub const SAVED_SEARCHES: Collection = Collection {
    name: "saved_searches",
    // One name per user: the owner and the name, joined.
    unique: &["owner_name"],
    indexed: &["user_id"],
};

const MAX_NAME_CHARS: usize = 100;
const MAX_SAVED_PAGE: u64 = 200;
const RECENT_KEPT: usize = 20;
const RECENT_TTL: Duration = Duration::from_secs(30 * 86_400);

fn meta_error(e: MetaError) -> ApiError {
    AccountError::Meta(e).into()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    /// 1 to 100 characters, one of a kind among the caller's saved searches.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// The search, as `POST /api/logs/search` takes it; checked as a search is.
    #[schema(value_type = SearchRequest)]
    search: Value,
}

/// A saved search as answers show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSearch {
    id: String,
    name: String,
    #[schema(value_type = SearchRequest)]
    search: Value,
    /// RFC 3339.
    created_at: String,
}

#[utoipa::path(
    post,
    path = "/api/logs/search/save",
    tag = "search",
    summary = "Save a search under a name, for the caller",
    request_body = SaveRequest,
    responses(
        (status = 201, description = "Saved", body = SavedSearch),
        (status = 400, description = "A name that does not fit, or a search that would be refused (the error says why)", body = sluice_http::ErrorBody),
        (status = 409, description = "The caller already has a saved search of that name (`name_taken`)", body = sluice_http::ErrorBody),
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn save(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(request): JsonBody<SaveRequest>,
) -> Result<(StatusCode, Json<SavedSearch>), ApiError> {
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("name: 1 to {MAX_NAME_CHARS} characters"),
        )
        .field("name"));
    }
    if !request.search.is_object() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "search: a JSON object, as POST /api/logs/search takes it",
        )
        .field("search"));
    }
    let search: SearchRequest = serde_json::from_value(request.search.clone()).map_err(|e| {
        ApiError::bad_request("invalid_field", format!("search: {e}")).field("search")
    })?;
    to_query(search).map_err(|e| e.field("search"))?;
    let id = new_id("s");
    let created_at = format_rfc3339_ms(sluice_event::now_ms());
    let document = json!({
        "user_id": claims.sub,
        "owner_name": format!("{}\u{1f}{name}", claims.sub),
        "name": name,
        "search": request.search,
        "created_at": created_at,
    });
    match state
        .accounts
        .meta()
        .insert(&SAVED_SEARCHES, &id, &document)
        .await
    {
        Ok(()) => Ok((StatusCode::CREATED, Json(public(&id, &document)))),
        Err(MetaError::Conflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("you already have a saved search named {name:?}"),
        )
        .field("name")),
        Err(e) => Err(meta_error(e)),
    }
}

/// A saved search as answers show it.
fn public(id: &str, document: &Value) -> SavedSearch {
    let text = |name: &str| document[name].as_str().unwrap_or_default().to_owned();
    SavedSearch {
        id: id.to_owned(),
        name: text("name"),
        search: document["search"].clone(),
        created_at: text("created_at"),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Saved searches to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    offset: u64,
    /// Saved searches per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSearches {
    saved_searches: Vec<SavedSearch>,
    /// The caller's saved searches, on every page.
    total: u64,
    offset: u64,
    limit: u64,
}

#[utoipa::path(
    get,
    path = "/api/logs/search/saved",
    tag = "search",
    summary = "The caller's saved searches, a page at a time",
    params(ListParams),
    responses((status = 200, body = SavedSearches), BadRequest, Unavailable)
)]
pub async fn list(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<SavedSearches>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    check_offset(params.offset)?;
    if !(1..=MAX_SAVED_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("limit must be between 1 and {MAX_SAVED_PAGE}"),
        )
        .field("limit"));
    }
    let meta = state.accounts.meta();
    let mine = [("user_id", json!(claims.sub))];
    let page = Page {
        offset: params.offset,
        limit,
    };
    let (found, total) = tokio::try_join!(
        meta.find(&SAVED_SEARCHES, &mine, page),
        meta.count(&SAVED_SEARCHES, &mine),
    )
    .map_err(meta_error)?;
    Ok(Json(SavedSearches {
        saved_searches: found.iter().map(|(id, doc)| public(id, doc)).collect(),
        total,
        offset: params.offset,
        limit,
    }))
}

/// Another user's saved search answers as a missing one.
#[utoipa::path(
    delete,
    path = "/api/logs/search/saved/{id}",
    tag = "search",
    summary = "Delete one of the caller's saved searches",
    params(("id" = String, Path, description = "The saved search's id")),
    responses((status = 204, description = "Deleted"), NotFound, Unavailable)
)]
pub async fn delete(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let meta = state.accounts.meta();
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no saved search of yours has this id",
        )
    };
    // Another user's saved search answers as a missing one: ids are not for guessing.
    let document = meta
        .get(&SAVED_SEARCHES, &id)
        .await
        .map_err(meta_error)?
        .ok_or_else(not_found)?;
    if document["user_id"] != json!(claims.sub) {
        return Err(not_found());
    }
    meta.delete(&SAVED_SEARCHES, &id)
        .await
        .map_err(meta_error)?;
    Ok(StatusCode::NO_CONTENT)
}

fn recent_key(user_id: &str) -> String {
    format!("recent_searches:{user_id}")
}

/// A search the user made, as the cache keeps it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecentSearch {
    /// As it was sent, without its paging.
    #[schema(value_type = SearchRequest)]
    search: Value,
    /// RFC 3339.
    at: String,
    /// Events it matched then, as far as counted.
    total: u64,
    #[serde(default)]
    total_relation: Relation,
}

/// Puts `search` first in the user's recent searches (moving it up if it is already there).
/// Paging (`offset`, `search_after`) is left out: turning pages is not a new search.
pub async fn remember(
    state: &ApiState,
    user_id: &str,
    search: &Value,
    total: u64,
    total_relation: Relation,
) {
    let mut search = search.clone();
    if let Value::Object(fields) = &mut search {
        fields.remove("offset");
        fields.remove("search_after");
    }
    let cache = state.accounts.cache();
    let key = recent_key(user_id);
    let result = async {
        let mut recent: Vec<RecentSearch> = match cache.get(&key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => Vec::new(),
        };
        recent.retain(|entry| entry.search != search);
        recent.insert(
            0,
            RecentSearch {
                search,
                at: format_rfc3339_ms(sluice_event::now_ms()),
                total,
                total_relation,
            },
        );
        recent.truncate(RECENT_KEPT);
        let bytes = serde_json::to_vec(&recent).unwrap_or_default();
        cache.set(&key, bytes, RECENT_TTL).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record a recent search");
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentSearches {
    /// Newest first, at most 20.
    searches: Vec<RecentSearch>,
}

#[utoipa::path(
    get,
    path = "/api/logs/search/recent",
    tag = "search",
    summary = "The caller's last 20 searches, newest first",
    responses((status = 200, body = RecentSearches), Unavailable)
)]
pub async fn recent(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<RecentSearches>, ApiError> {
    let stored = state
        .accounts
        .cache()
        .get(&recent_key(&claims.sub))
        .await
        .map_err(|e| ApiError::from(AccountError::Cache(e)))?;
    let searches = stored
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    Ok(Json(RecentSearches { searches }))
}
