//! `/api/performance/*`: how fast the shop answers, from `performance` events: percentiles of
//! response and database time, the slowest endpoints, and requests over a threshold.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_http::ApiError;
use sluice_http::QueryParams;
use sluice_store::{Aggregation, AggregationResults, Field, Filter, SearchQuery, Sort, SortField};
use std::ops::Bound;

use crate::ApiState;
use crate::analytics::{AnalyticsParams, aggregate, money, of_type, terms_json, timeline_json};
use crate::search::store_error;

const PERCENTS: [f64; 4] = [50.0, 90.0, 95.0, 99.0];
const DEFAULT_THRESHOLD_MS: f64 = 1_000.0;
const SLOWEST_SHOWN: usize = 10;
/// Every endpoint: the slowest are picked after averaging, so all must be counted.
const ALL_ENDPOINTS: usize = 5_000;

/// Percentiles and stats of one field, as answers show them.
fn latency_json(results: &AggregationResults, stats: &str, percentiles: &str) -> Value {
    let stats = results.stats(stats);
    let mut out = json!({
        "count": stats.count,
        "avg": stats.avg.map(money),
        "min": stats.min,
        "max": stats.max,
    });
    for percent in PERCENTS {
        out[format!("p{percent}")] = json!(results.percentile(percentiles, percent).map(money));
    }
    out
}

fn latency_aggregations(field: Field) -> [Aggregation; 2] {
    [
        Aggregation::stats(field),
        Aggregation::percentiles(field, &PERCENTS),
    ]
}

/// `GET /api/performance/metrics`: P50/P90/P95/P99 of response_time and db_query_time, the
/// share of 5xx answers, and response time over the window.
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    let [rt_stats, rt_percentiles] = latency_aggregations(Field::ResponseTime);
    let [db_stats, db_percentiles] = latency_aggregations(Field::DbQueryTime);
    let results = aggregate(
        &state,
        of_type(&window, "performance"),
        vec![
            ("response", rt_stats.clone()),
            ("response_p", rt_percentiles),
            ("db", db_stats),
            ("db_p", db_percentiles),
            ("codes", Aggregation::terms(Field::StatusCode, 100)),
            (
                "timeline",
                Aggregation::timeline(window.interval_ms)
                    .with("response", rt_stats)
                    .with(
                        "response_p",
                        Aggregation::percentiles(Field::ResponseTime, &[95.0]),
                    ),
            ),
        ],
    )
    .await?;
    let codes = results.terms("codes");
    let requests: u64 = codes.iter().map(|b| b.count).sum();
    let server_errors: u64 = codes
        .iter()
        .filter(|b| b.value.parse::<i64>().is_ok_and(|c| c >= 500))
        .map(|b| b.count)
        .sum();
    Ok(Json(json!({
        "window": window.describe(),
        "requests": requests,
        "server_error_rate": crate::analytics::ratio(server_errors, requests),
        "response_time_ms": latency_json(&results, "response", "response_p"),
        "db_query_time_ms": latency_json(&results, "db", "db_p"),
        "by_status_code": terms_json(codes, |_| json!({})),
        "timeline": timeline_json(results.timeline("timeline"), |bucket| json!({
            "avg_ms": bucket.nested.stats("response").avg.map(money),
            "p95_ms": bucket.nested.percentile("response_p", 95.0).map(money),
        })),
    })))
}

/// `GET /api/performance/api-response-times`: endpoints, slowest average first, with their
/// percentiles and how many requests took longer than `threshold_ms` (default 1000); and the
/// slowest requests themselves.
pub async fn api_response_times(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval"])?;
    let window = params.window()?;
    let limit = params.limit(20, 1_000)?;
    let threshold = params.threshold_ms.unwrap_or(DEFAULT_THRESHOLD_MS);
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "threshold_ms must be a number of milliseconds, 0 or more",
        ));
    }
    let all = of_type(&window, "performance");
    let slow = all.and(Filter::Range {
        field: Field::ResponseTime,
        lower: Bound::Excluded(threshold),
        upper: Bound::Unbounded,
    });
    let [stats, percentiles] = latency_aggregations(Field::ResponseTime);
    let slowest = SearchQuery {
        sort: Sort {
            field: SortField::Field(Field::ResponseTime),
            descending: true,
        },
        size: SLOWEST_SHOWN,
        ..slow.clone()
    };
    let (by_endpoint, slow_by_endpoint, slowest) = tokio::try_join!(
        aggregate(
            &state,
            all,
            vec![(
                "endpoints",
                Aggregation::terms(Field::Endpoint, ALL_ENDPOINTS)
                    .with("stats", stats)
                    .with("percentiles", percentiles),
            )],
        ),
        aggregate(
            &state,
            slow,
            vec![(
                "endpoints",
                Aggregation::terms(Field::Endpoint, ALL_ENDPOINTS)
            )],
        ),
        async { state.store.search(&slowest).await.map_err(store_error) },
    )?;
    let slow_counts = slow_by_endpoint.terms("endpoints");
    let mut endpoints: Vec<(f64, Value)> = by_endpoint
        .terms("endpoints")
        .iter()
        .map(|bucket| {
            let avg = bucket.nested.stats("stats").avg.unwrap_or(0.0);
            let mut entry = json!({
                "endpoint": bucket.value,
                "requests": bucket.count,
                "slow_requests": slow_counts
                    .iter()
                    .find(|s| s.value == bucket.value)
                    .map_or(0, |s| s.count),
            });
            entry["response_time_ms"] = latency_json(&bucket.nested, "stats", "percentiles");
            (avg, entry)
        })
        .collect();
    endpoints.sort_by(|a, b| b.0.total_cmp(&a.0));
    endpoints.truncate(limit);
    let slowest: Vec<Value> = slowest
        .hits
        .iter()
        .filter_map(|hit| serde_json::from_slice::<Value>(&hit.source).ok())
        .map(|mut document| {
            if let Value::Object(map) = &mut document {
                map.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "@timestamp"
                            | "endpoint"
                            | "service"
                            | "response_time"
                            | "db_query_time"
                            | "status_code"
                    )
                });
            }
            document
        })
        .collect();
    Ok(Json(json!({
        "window": window.describe(),
        "threshold_ms": threshold,
        "slow_requests": slow_counts.iter().map(|b| b.count).sum::<u64>(),
        "endpoints": endpoints.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        "slowest": slowest,
    })))
}

/// `GET /api/performance/database-latency`: db_query_time percentiles overall, per service
/// (slowest average first) and over time.
pub async fn database_latency(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(20, 1_000)?;
    let [stats, percentiles] = latency_aggregations(Field::DbQueryTime);
    let results = aggregate(
        &state,
        of_type(&window, "performance"),
        vec![
            ("db", stats.clone()),
            ("db_p", percentiles.clone()),
            (
                "services",
                Aggregation::terms(Field::Service, ALL_ENDPOINTS)
                    .with("db", stats.clone())
                    .with("db_p", percentiles),
            ),
            (
                "timeline",
                Aggregation::timeline(window.interval_ms).with("db", stats),
            ),
        ],
    )
    .await?;
    let mut services: Vec<(f64, Value)> = results
        .terms("services")
        .iter()
        .map(|bucket| {
            (
                bucket.nested.stats("db").avg.unwrap_or(0.0),
                json!({
                    "service": bucket.value,
                    "requests": bucket.count,
                    "db_query_time_ms": latency_json(&bucket.nested, "db", "db_p"),
                }),
            )
        })
        .collect();
    services.sort_by(|a, b| b.0.total_cmp(&a.0));
    services.truncate(limit);
    Ok(Json(json!({
        "window": window.describe(),
        "db_query_time_ms": latency_json(&results, "db", "db_p"),
        "by_service": services.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        "timeline": timeline_json(results.timeline("timeline"), |bucket| {
            let stats = bucket.nested.stats("db");
            json!({ "avg_ms": stats.avg.map(money), "max_ms": stats.max })
        }),
    })))
}
