//! `GET /api/logs/types`, `GET /api/logs/stats` and `GET /api/logs/search/services`: what there
//! is to look at, counted by the store over a time range, for pickers and the dashboard.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sluice_event::LogType;
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Field, SearchQuery, ValueCount};
use utoipa::ToSchema;

use crate::ApiState;
use crate::analytics::{AnalyticsParams, Span, SpanTop};
use crate::search::{size, store_error};
use crate::time_param::window;

/// Everything in `from`/`to` or `range`; without them, everything.
fn range_query(params: AnalyticsParams) -> Result<SearchQuery, ApiError> {
    let (from_ms, to_ms) = window(params.from, params.to, params.range.as_deref())?;
    Ok(SearchQuery::range(from_ms, to_ms))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypesAnswer {
    total: u64,
    types: Vec<TypeCount>,
}

#[derive(Debug, Serialize, ToSchema)]
struct TypeCount {
    log_type: &'static str,
    count: u64,
}

/// Every log type, those without events included (with 0), most frequent first.
#[utoipa::path(
    get,
    path = "/api/logs/types",
    tag = "logs",
    summary = "Every log type with its events in the range (all time without one), most first",
    params(Span),
    responses((status = 200, body = TypesAnswer), BadRequest, Unavailable)
)]
pub async fn types(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<TypesAnswer>, ApiError> {
    let query = range_query(params.into())?;
    let counted = state
        .store
        .count_by(&query, Field::LogType, LogType::ALL.len())
        .await
        .map_err(store_error)?;
    let mut types: Vec<TypeCount> = LogType::ALL
        .iter()
        .map(|log_type| TypeCount {
            log_type: log_type.as_str(),
            count: counted
                .iter()
                .find(|c| c.value == log_type.as_str())
                .map_or(0, |c| c.count),
        })
        .collect();
    types.sort_by(|a, b| b.count.cmp(&a.count).then(a.log_type.cmp(b.log_type)));
    Ok(Json(TypesAnswer {
        total: types.iter().map(|t| t.count).sum(),
        types,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesAnswer {
    services: Vec<ServiceCount>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ServiceCount {
    service: String,
    count: u64,
}

const SERVICES_DEFAULT: usize = 100;
const SERVICES_MAX: usize = 1_000;

/// The services that logged in the range, most events first.
#[utoipa::path(
    get,
    path = "/api/logs/search/services",
    tag = "logs",
    summary = "The services that logged in the range (all time without one), most events first",
    params(SpanTop),
    responses((status = 200, body = ServicesAnswer), BadRequest, Unavailable)
)]
pub async fn services(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTop>,
) -> Result<Json<ServicesAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
    let limit = size(params.limit, SERVICES_DEFAULT, SERVICES_MAX)?;
    let query = range_query(params)?;
    let counted = state
        .store
        .count_by(&query, Field::Service, limit)
        .await
        .map_err(store_error)?;
    Ok(Json(ServicesAnswer {
        services: counted
            .into_iter()
            .map(|c| ServiceCount {
                service: c.value,
                count: c.count,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogStatsAnswer {
    total: u64,
    by_type: Vec<Counted>,
    by_level: Vec<Counted>,
    /// The ten services with the most events.
    top_services: Vec<Counted>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Counted {
    value: String,
    count: u64,
}

const TOP_SERVICES: usize = 10;
/// More levels than any logging library has; the rest would be noise.
const MAX_LEVELS: usize = 20;

/// Events in the range by type, by level and by service, in one answer (three counts at once).
#[utoipa::path(
    get,
    path = "/api/logs/stats",
    tag = "logs",
    summary = "Events in the range (all time without one) by type, level and service",
    params(Span),
    responses((status = 200, body = LogStatsAnswer), BadRequest, Unavailable)
)]
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<LogStatsAnswer>, ApiError> {
    let query = range_query(params.into())?;
    let store = &state.store;
    let (by_type, by_level, top_services) = tokio::try_join!(
        store.count_by(&query, Field::LogType, LogType::ALL.len()),
        store.count_by(&query, Field::Level, MAX_LEVELS),
        store.count_by(&query, Field::Service, TOP_SERVICES),
    )
    .map_err(store_error)?;
    let counted = |counts: Vec<ValueCount>| -> Vec<Counted> {
        counts
            .into_iter()
            .map(|c| Counted {
                value: c.value,
                count: c.count,
            })
            .collect()
    };
    Ok(Json(LogStatsAnswer {
        total: by_type.iter().map(|c| c.count).sum(),
        by_type: counted(by_type),
        by_level: counted(by_level),
        top_services: counted(top_services),
    }))
}
