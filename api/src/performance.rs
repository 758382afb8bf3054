//! `/api/performance/*`: how fast the shop answers, from `performance` events: percentiles of
//! response and database time, the slowest endpoints, and requests over a threshold.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{
    Aggregation, AggregationResults, Field, Filter, SearchQuery, Sort, SortField, Total,
};
use std::ops::Bound;
use utoipa::ToSchema;

use crate::ApiState;
use crate::analytics::{
    AnalyticsParams, Count, Interval, SlowRequests, SpanTimeline, SpanTopTimeline, Term,
    WindowJson, aggregate, counts, money, of_type, timeline,
};
use crate::search::store_error;

const PERCENTS: [f64; 4] = [50.0, 90.0, 95.0, 99.0];
const DEFAULT_THRESHOLD_MS: f64 = 1_000.0;
const SLOWEST_SHOWN: usize = 10;
/// Every endpoint: the slowest are picked after averaging, so all must be counted.
const ALL_ENDPOINTS: usize = 5_000;

/// Stats and percentiles of one field, in milliseconds; null where there were no values.
#[derive(Debug, Serialize, ToSchema)]
pub struct Latency {
    count: u64,
    avg: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

fn latency(results: &AggregationResults, stats: &str, percentiles: &str) -> Latency {
    let stats = results.stats(stats);
    let [p50, p90, p95, p99] =
        PERCENTS.map(|percent| results.percentile(percentiles, percent).map(money));
    Latency {
        count: stats.count,
        avg: stats.avg.map(money),
        min: stats.min,
        max: stats.max,
        p50,
        p90,
        p95,
        p99,
    }
}

fn latency_aggregations(field: Field) -> [Aggregation; 2] {
    [
        Aggregation::stats(field),
        Aggregation::percentiles(field, &PERCENTS),
    ]
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PerformanceMetricsAnswer {
    window: WindowJson,
    /// Performance events in the window.
    requests: u64,
    /// The share of them with a 5xx `status_code`.
    server_error_rate: f64,
    response_time_ms: Latency,
    db_query_time_ms: Latency,
    by_status_code: Vec<Term<Count>>,
    timeline: Vec<Interval<ResponseTimes>>,
}

/// Response time of a bucket; null without requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseTimes {
    avg_ms: Option<f64>,
    p95_ms: Option<f64>,
}

/// `GET /api/performance/metrics`: P50/P90/P95/P99 of response_time and db_query_time, the
/// share of 5xx answers, and response time over the window.
#[utoipa::path(
    get,
    path = "/api/performance/metrics",
    tag = "performance",
    summary = "Percentiles of response and database time, the 5xx share, response time over time",
    params(SpanTimeline),
    responses((status = 200, body = PerformanceMetricsAnswer), BadRequest, Unavailable)
)]
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTimeline>,
) -> Result<Json<PerformanceMetricsAnswer>, ApiError> {
    let window = AnalyticsParams::from(params).window()?;
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
    Ok(Json(PerformanceMetricsAnswer {
        window: window.describe(),
        requests,
        server_error_rate: crate::analytics::ratio(server_errors, requests),
        response_time_ms: latency(&results, "response", "response_p"),
        db_query_time_ms: latency(&results, "db", "db_p"),
        by_status_code: counts(codes),
        timeline: timeline(results.timeline("timeline"), |bucket| ResponseTimes {
            avg_ms: bucket.nested.stats("response").avg.map(money),
            p95_ms: bucket.nested.percentile("response_p", 95.0).map(money),
        }),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseTimesAnswer {
    window: WindowJson,
    threshold_ms: f64,
    /// Requests slower than the threshold.
    slow_requests: u64,
    /// Slowest average first.
    endpoints: Vec<EndpointTimes>,
    /// The slowest requests, slowest first: `@timestamp`, `endpoint`, `service`,
    /// `response_time`, `db_query_time` and `status_code` of each.
    #[schema(value_type = Vec<Object>)]
    slowest: Vec<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointTimes {
    endpoint: String,
    requests: u64,
    /// Requests slower than the threshold.
    slow_requests: u64,
    response_time_ms: Latency,
}

/// `GET /api/performance/api-response-times`: endpoints, slowest average first, with their
/// percentiles and how many requests took longer than `threshold_ms` (default 1000); and the
/// slowest requests themselves.
#[utoipa::path(
    get,
    path = "/api/performance/api-response-times",
    tag = "performance",
    summary = "Endpoints, slowest first, with percentiles and requests over a threshold",
    params(SlowRequests),
    responses((status = 200, body = ResponseTimesAnswer), BadRequest, Unavailable)
)]
pub async fn api_response_times(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SlowRequests>,
) -> Result<Json<ResponseTimesAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
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
        total: Total::NotNeeded,
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
    let mut endpoints: Vec<(f64, EndpointTimes)> = by_endpoint
        .terms("endpoints")
        .iter()
        .map(|bucket| {
            let avg = bucket.nested.stats("stats").avg.unwrap_or(0.0);
            let entry = EndpointTimes {
                endpoint: bucket.value.clone(),
                requests: bucket.count,
                slow_requests: slow_counts
                    .iter()
                    .find(|s| s.value == bucket.value)
                    .map_or(0, |s| s.count),
                response_time_ms: latency(&bucket.nested, "stats", "percentiles"),
            };
            (avg, entry)
        })
        .collect();
    endpoints.sort_by(|a, b| b.0.total_cmp(&a.0));
    endpoints.truncate(limit);
    let slowest = slowest
        .hits
        .iter()
        .filter_map(|hit| serde_json::from_slice::<Map<String, Value>>(&hit.source).ok())
        .map(|mut document| {
            document.retain(|k, _| {
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
            document
        })
        .collect();
    Ok(Json(ResponseTimesAnswer {
        window: window.describe(),
        threshold_ms: threshold,
        slow_requests: slow_counts.iter().map(|b| b.count).sum::<u64>(),
        endpoints: endpoints.into_iter().map(|(_, e)| e).collect(),
        slowest,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseLatencyAnswer {
    window: WindowJson,
    db_query_time_ms: Latency,
    /// Slowest average first.
    by_service: Vec<ServiceLatency>,
    timeline: Vec<Interval<DatabaseTimes>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLatency {
    service: String,
    requests: u64,
    db_query_time_ms: Latency,
}

/// Database time of a bucket; null without requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseTimes {
    avg_ms: Option<f64>,
    max_ms: Option<f64>,
}

/// `GET /api/performance/database-latency`: db_query_time percentiles overall, per service
/// (slowest average first) and over time.
#[utoipa::path(
    get,
    path = "/api/performance/database-latency",
    tag = "performance",
    summary = "Database time percentiles overall, per service (slowest first) and over time",
    params(SpanTopTimeline),
    responses((status = 200, body = DatabaseLatencyAnswer), BadRequest, Unavailable)
)]
pub async fn database_latency(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTopTimeline>,
) -> Result<Json<DatabaseLatencyAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
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
    let mut services: Vec<(f64, ServiceLatency)> = results
        .terms("services")
        .iter()
        .map(|bucket| {
            (
                bucket.nested.stats("db").avg.unwrap_or(0.0),
                ServiceLatency {
                    service: bucket.value.clone(),
                    requests: bucket.count,
                    db_query_time_ms: latency(&bucket.nested, "db", "db_p"),
                },
            )
        })
        .collect();
    services.sort_by(|a, b| b.0.total_cmp(&a.0));
    services.truncate(limit);
    Ok(Json(DatabaseLatencyAnswer {
        window: window.describe(),
        db_query_time_ms: latency(&results, "db", "db_p"),
        by_service: services.into_iter().map(|(_, s)| s).collect(),
        timeline: timeline(results.timeline("timeline"), |bucket| {
            let stats = bucket.nested.stats("db");
            DatabaseTimes {
                avg_ms: stats.avg.map(money),
                max_ms: stats.max,
            }
        }),
    }))
}
