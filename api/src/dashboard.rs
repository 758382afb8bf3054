//! `/api/dashboard/*`: the dashboard page's numbers. `overview` is everything the page shows in
//! one request; `stats`, `metrics` and `charts` are its parts, for widgets that refresh on their
//! own. Whatever parts are asked for, the store makes one pass over the window's events, one
//! over its transactions and (for the KPIs) one over its performance events, at once.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Aggregation, AggregationResults, Field, Filter, SearchQuery, Total};
use utoipa::ToSchema;

use crate::ApiState;
use crate::analytics::{
    ALL_VALUES, AnalyticsParams, Count, Interval, Paid, ProductSales, Span, SpanTimeline, Term,
    Window, WindowJson, aggregate, counts, interval_of, money, of_type, paid_aggregations,
    products, products_by_revenue, ratio, timeline, transactions_and_failures, with_paid,
};
use crate::search::{hit_document, store_error};

const TOP: usize = 10;
const RECENT_ERRORS: usize = 10;

/// Which parts of the dashboard a request wants.
#[derive(Clone, Copy)]
struct Parts {
    kpis: bool,
    timeline: bool,
    charts: bool,
}

/// The passes over the store's events, with the aggregations the parts need.
struct Passes {
    events: AggregationResults,
    transactions: AggregationResults,
    /// The same aggregations over the failed transactions, for revenue.
    failed: AggregationResults,
    performance: AggregationResults,
}

async fn passes(state: &ApiState, window: &Window, parts: Parts) -> Result<Passes, ApiError> {
    let mut events = Vec::new();
    let mut transactions = Vec::new();
    if parts.kpis || parts.charts {
        events.push(("types", Aggregation::terms(Field::LogType, 10)));
    }
    if parts.kpis {
        events.push(("detected", Aggregation::terms(Field::FraudDetected, 2)));
        events.push(("users", Aggregation::cardinality(Field::UserId)));
        transactions.extend(paid_aggregations());
    }
    if parts.timeline {
        events.push((
            "timeline",
            Aggregation::timeline(window.interval_ms)
                .with("types", Aggregation::terms(Field::LogType, 10)),
        ));
        transactions.push((
            "timeline",
            with_paid(Aggregation::timeline(window.interval_ms)),
        ));
    }
    if parts.charts {
        events.push(("levels", Aggregation::terms(Field::Level, 20)));
        events.push(("services", Aggregation::terms(Field::Service, TOP)));
        events.push(("countries", Aggregation::terms(Field::GeoCountry, TOP)));
        transactions.push(("products", products(ALL_VALUES)));
    }
    let performance = match parts.kpis {
        true => vec![("p", Aggregation::percentiles(Field::ResponseTime, &[95.0]))],
        false => Vec::new(),
    };
    let skip_empty = |named: Vec<(&'static str, Aggregation)>, query: SearchQuery| async move {
        match named.is_empty() {
            true => Ok(AggregationResults::default()),
            false => aggregate(state, query, named).await,
        }
    };
    let both = |named: Vec<(&'static str, Aggregation)>| async move {
        match named.is_empty() {
            true => Ok((AggregationResults::default(), AggregationResults::default())),
            false => transactions_and_failures(state, window, named).await,
        }
    };
    let (events, (transactions, failed), performance) = tokio::try_join!(
        skip_empty(events, window.query()),
        both(transactions),
        skip_empty(performance, of_type(window, "performance")),
    )?;
    Ok(Passes {
        events,
        transactions,
        failed,
        performance,
    })
}

/// KPIs: events, revenue, error rate, fraud alerts, p95 latency, transactions, active users.
#[derive(Debug, Serialize, ToSchema)]
pub struct Kpis {
    events: u64,
    transactions: u64,
    /// The amounts of successful payments.
    revenue: f64,
    /// Null without successful payments.
    average_basket: Option<f64>,
    errors: u64,
    error_rate: f64,
    /// Events the fraud engine flagged.
    fraud_alerts: u64,
    /// Null without performance events.
    p95_response_time_ms: Option<f64>,
    /// Distinct `user_id`s.
    active_users: u64,
}

fn kpis(passes: &Passes) -> Kpis {
    let types = passes.events.terms("types");
    let events: u64 = types.iter().map(|b| b.count).sum();
    let count_of = |t: &str| types.iter().find(|b| b.value == t).map_or(0, |b| b.count);
    let paid = Paid::of(&passes.transactions, &passes.failed);
    Kpis {
        events,
        transactions: count_of("transaction"),
        revenue: money(paid.revenue),
        average_basket: paid.average_basket().map(money),
        errors: count_of("error"),
        error_rate: ratio(count_of("error"), events),
        fraud_alerts: passes
            .events
            .terms("detected")
            .iter()
            .find(|b| b.value == "true")
            .map_or(0, |b| b.count),
        p95_response_time_ms: passes.performance.percentile("p", 95.0).map(money),
        active_users: passes.events.cardinality("users"),
    }
}

/// Errors and revenue of a bucket, beside its events.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorsAndRevenue {
    errors: u64,
    revenue: f64,
}

/// Events, errors and revenue per interval.
fn series(passes: &Passes) -> Vec<Interval<ErrorsAndRevenue>> {
    let paid = passes.transactions.timeline("timeline");
    timeline(passes.events.timeline("timeline"), |bucket| {
        let errors = bucket
            .nested
            .terms("types")
            .iter()
            .find(|t| t.value == "error")
            .map_or(0, |t| t.count);
        let revenue = paid
            .iter()
            .find(|p| p.start_ms == bucket.start_ms)
            .map_or(0.0, |p| {
                let failed = interval_of(&passes.failed, "timeline", bucket.start_ms);
                Paid::of(&p.nested, failed).revenue
            });
        ErrorsAndRevenue {
            errors,
            revenue: money(revenue),
        }
    })
}

/// Distributions: levels, types, and the top services, countries and products.
#[derive(Debug, Serialize, ToSchema)]
pub struct Charts {
    levels: Vec<Term<Count>>,
    types: Vec<Term<Count>>,
    top_services: Vec<Term<Count>>,
    /// By the GeoIP country.
    top_countries: Vec<Term<Count>>,
    /// The products that earned most, by the revenue of their successful payments.
    top_products: Vec<Term<ProductSales>>,
}

fn distributions(passes: &Passes) -> Charts {
    let plain = |name: &str| counts(passes.events.terms(name));
    Charts {
        levels: plain("levels"),
        types: plain("types"),
        top_services: plain("services"),
        top_countries: plain("countries"),
        top_products: products_by_revenue(&passes.transactions, &passes.failed, TOP),
    }
}

/// The window and the passes over it that `parts` need.
async fn window_and_passes(
    state: &ApiState,
    params: AnalyticsParams,
    parts: Parts,
) -> Result<(WindowJson, Passes), ApiError> {
    let window = params.window()?;
    let passes = passes(state, &window, parts).await?;
    Ok((window.describe(), passes))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardStatsAnswer {
    window: WindowJson,
    stats: Kpis,
}

/// `GET /api/dashboard/stats`.
#[utoipa::path(
    get,
    path = "/api/dashboard/stats",
    tag = "dashboard",
    summary = "The dashboard's KPIs",
    params(Span),
    responses((status = 200, body = DashboardStatsAnswer), BadRequest, Unavailable)
)]
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<DashboardStatsAnswer>, ApiError> {
    let parts = Parts {
        kpis: true,
        timeline: false,
        charts: false,
    };
    let (window, passes) = window_and_passes(&state, params.into(), parts).await?;
    Ok(Json(DashboardStatsAnswer {
        window,
        stats: kpis(&passes),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardMetricsAnswer {
    window: WindowJson,
    timeline: Vec<Interval<ErrorsAndRevenue>>,
}

/// `GET /api/dashboard/metrics`.
#[utoipa::path(
    get,
    path = "/api/dashboard/metrics",
    tag = "dashboard",
    summary = "The dashboard's timeline: events, errors and revenue per interval",
    params(SpanTimeline),
    responses((status = 200, body = DashboardMetricsAnswer), BadRequest, Unavailable)
)]
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTimeline>,
) -> Result<Json<DashboardMetricsAnswer>, ApiError> {
    let parts = Parts {
        kpis: false,
        timeline: true,
        charts: false,
    };
    let (window, passes) = window_and_passes(&state, params.into(), parts).await?;
    Ok(Json(DashboardMetricsAnswer {
        window,
        timeline: series(&passes),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardChartsAnswer {
    window: WindowJson,
    charts: Charts,
}

/// `GET /api/dashboard/charts`.
#[utoipa::path(
    get,
    path = "/api/dashboard/charts",
    tag = "dashboard",
    summary = "The dashboard's distributions: levels, types, top services, countries and products",
    params(Span),
    responses((status = 200, body = DashboardChartsAnswer), BadRequest, Unavailable)
)]
pub async fn charts(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<DashboardChartsAnswer>, ApiError> {
    let parts = Parts {
        kpis: false,
        timeline: false,
        charts: true,
    };
    let (window, passes) = window_and_passes(&state, params.into(), parts).await?;
    Ok(Json(DashboardChartsAnswer {
        window,
        charts: distributions(&passes),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardOverviewAnswer {
    window: WindowJson,
    stats: Kpis,
    timeline: Vec<Interval<ErrorsAndRevenue>>,
    charts: Charts,
    /// The latest error events, newest first, as stored (with `_id`).
    #[schema(value_type = Vec<Object>)]
    recent_errors: Vec<Map<String, Value>>,
}

/// `GET /api/dashboard/overview`: KPIs, the timeline, the charts and the latest errors.
#[utoipa::path(
    get,
    path = "/api/dashboard/overview",
    tag = "dashboard",
    summary = "Everything the dashboard shows, in one request: KPIs, timeline, charts, latest errors",
    params(SpanTimeline),
    responses((status = 200, body = DashboardOverviewAnswer), BadRequest, Unavailable)
)]
pub async fn overview(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTimeline>,
) -> Result<Json<DashboardOverviewAnswer>, ApiError> {
    let window = AnalyticsParams::from(params).window()?;
    let recent_errors = SearchQuery {
        size: RECENT_ERRORS,
        total: Total::NotNeeded,
        ..window
            .query()
            .and(Filter::Equals(Field::LogType, "error".into()))
    };
    let parts = Parts {
        kpis: true,
        timeline: true,
        charts: true,
    };
    let (passes, errors) = tokio::try_join!(passes(&state, &window, parts), async {
        state
            .store
            .search(&recent_errors)
            .await
            .map_err(store_error)
    },)?;
    let errors = errors
        .hits
        .into_iter()
        .map(|hit| hit_document(hit, &[]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(DashboardOverviewAnswer {
        window: window.describe(),
        stats: kpis(&passes),
        timeline: series(&passes),
        charts: distributions(&passes),
        recent_errors: errors,
    }))
}
