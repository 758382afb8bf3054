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
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_auth::accounts::{AccountError, new_id};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::{Collection, MetaError, Page};

use super::request::{SearchRequest, to_query};
use crate::ApiState;
use crate::auth::CurrentUser;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    name: String,
    /// The search, as `POST /api/logs/search` takes it.
    search: Value,
}

pub async fn save(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(request): JsonBody<SaveRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("name: 1 to {MAX_NAME_CHARS} characters"),
        )
        .field("name"));
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
fn public(id: &str, document: &Value) -> Value {
    json!({
        "id": id,
        "name": document["name"],
        "search": document["search"],
        "created_at": document["created_at"],
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    offset: u64,
    limit: Option<u64>,
}

pub async fn list(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(50);
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
    Ok(Json(json!({
        "saved_searches": found.iter().map(|(id, doc)| public(id, doc)).collect::<Vec<_>>(),
        "total": total,
        "offset": params.offset,
        "limit": limit,
    })))
}

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

/// Puts `search` first in the user's recent searches (moving it up if it is already there).
/// Paging (`offset`, `search_after`) is left out: turning pages is not a new search.
pub async fn remember(state: &ApiState, user_id: &str, search: &Value, total: u64) {
    let mut search = search.clone();
    if let Value::Object(fields) = &mut search {
        fields.remove("offset");
        fields.remove("search_after");
    }
    let cache = state.accounts.cache();
    let key = recent_key(user_id);
    let result = async {
        let mut recent: Vec<Value> = match cache.get(&key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => Vec::new(),
        };
        recent.retain(|entry| entry["search"] != search);
        recent.insert(
            0,
            json!({ "search": search, "at": format_rfc3339_ms(sluice_event::now_ms()), "total": total }),
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

pub async fn recent(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let stored = state
        .accounts
        .cache()
        .get(&recent_key(&claims.sub))
        .await
        .map_err(|e| ApiError::from(AccountError::Cache(e)))?;
    let searches: Vec<Value> = stored
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    Ok(Json(json!({ "searches": searches })))
}
