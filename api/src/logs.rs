//! `GET /api/logs/types` and `GET /api/logs/search/services`: what there is to look at, counted
//! by the store over a time range, for pickers and the dashboard.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sluice_common::event::LogType;
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{CountField, SearchQuery};

use crate::ApiState;
use crate::search::{size, store_error};
use crate::time_param::{TimeParam, time_range};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    from: Option<TimeParam>,
    to: Option<TimeParam>,
    limit: Option<i64>,
}

fn range_query(params: &RangeParams) -> Result<SearchQuery, ApiError> {
    let (from_ms, to_ms) = time_range(params.from.clone(), params.to.clone())?;
    Ok(SearchQuery {
        from_ms,
        to_ms,
        ..SearchQuery::default()
    })
}

#[derive(Debug, Serialize)]
pub struct TypesAnswer {
    total: u64,
    types: Vec<TypeCount>,
}

#[derive(Debug, Serialize)]
struct TypeCount {
    log_type: &'static str,
    count: u64,
}

/// Every log type, those without events included (with 0), most frequent first.
pub async fn types(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<RangeParams>,
) -> Result<Json<TypesAnswer>, ApiError> {
    let query = range_query(&params)?;
    let counted = state
        .store
        .count_by(&query, CountField::LogType, LogType::ALL.len())
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

#[derive(Debug, Serialize)]
pub struct ServicesAnswer {
    services: Vec<ServiceCount>,
}

#[derive(Debug, Serialize)]
struct ServiceCount {
    service: String,
    count: u64,
}

const SERVICES_DEFAULT: usize = 100;
const SERVICES_MAX: usize = 1_000;

/// The services that logged in the range, most events first.
pub async fn services(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<RangeParams>,
) -> Result<Json<ServicesAnswer>, ApiError> {
    let query = range_query(&params)?;
    let limit = size(params.limit, SERVICES_DEFAULT, SERVICES_MAX)?;
    let counted = state
        .store
        .count_by(&query, CountField::Service, limit)
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
