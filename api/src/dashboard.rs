//! `/api/dashboard/*`: the dashboard page's numbers. `overview` is everything the page shows in
//! one request; `stats`, `metrics` and `charts` are its parts, for widgets that refresh on their
//! own. Whatever parts are asked for, the store makes one pass over the window's events, one
//! over its transactions and (for the KPIs) one over its performance events, at once.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Aggregation, AggregationResults, Field, Filter, SearchQuery};

use crate::ApiState;
use crate::analytics::{
    AnalyticsParams, Paid, Window, aggregate, interval_of, money, of_type, paid_aggregations,
    products, products_json, ratio, terms_json, timeline_json, transactions_and_failures,
    with_paid,
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
        transactions.push(("products", products(TOP)));
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
fn kpis(passes: &Passes) -> Value {
    let types = passes.events.terms("types");
    let events: u64 = types.iter().map(|b| b.count).sum();
    let count_of = |t: &str| types.iter().find(|b| b.value == t).map_or(0, |b| b.count);
    let paid = Paid::of(&passes.transactions, &passes.failed);
    json!({
        "events": events,
        "transactions": count_of("transaction"),
        "revenue": money(paid.revenue),
        "average_basket": paid.average_basket().map(money),
        "errors": count_of("error"),
        "error_rate": ratio(count_of("error"), events),
        "fraud_alerts": passes
            .events
            .terms("detected")
            .iter()
            .find(|b| b.value == "true")
            .map_or(0, |b| b.count),
        "p95_response_time_ms": passes.performance.percentile("p", 95.0).map(money),
        "active_users": passes.events.cardinality("users"),
    })
}

/// Events, errors and revenue per interval.
fn series(passes: &Passes) -> Value {
    let paid = passes.transactions.timeline("timeline");
    json!(timeline_json(
        passes.events.timeline("timeline"),
        |bucket| {
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
            json!({ "errors": errors, "revenue": money(revenue) })
        }
    ))
}

/// Distributions: levels, types, and the top services, countries and products.
fn distributions(passes: &Passes) -> Value {
    let plain = |name: &str| json!(terms_json(passes.events.terms(name), |_| json!({})));
    json!({
        "levels": plain("levels"),
        "types": plain("types"),
        "top_services": plain("services"),
        "top_countries": plain("countries"),
        "top_products": products_json(&passes.transactions, &passes.failed),
    })
}

/// One part of the dashboard on its own: the window, the passes that part needs, and the part
/// under `name`.
async fn part(
    state: &ApiState,
    params: &AnalyticsParams,
    parts: Parts,
    name: &str,
    shape: fn(&Passes) -> Value,
) -> Result<Json<Value>, ApiError> {
    let unused: &[&str] = if parts.timeline {
        &["limit", "threshold_ms"]
    } else {
        &["interval", "limit", "threshold_ms"]
    };
    params.refuse(unused)?;
    let window = params.window()?;
    let passes = passes(state, &window, parts).await?;
    let mut answer = json!({ "window": window.describe() });
    answer[name] = shape(&passes);
    Ok(Json(answer))
}

/// `GET /api/dashboard/stats`.
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    let parts = Parts {
        kpis: true,
        timeline: false,
        charts: false,
    };
    part(&state, &params, parts, "stats", kpis).await
}

/// `GET /api/dashboard/metrics`.
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    let parts = Parts {
        kpis: false,
        timeline: true,
        charts: false,
    };
    part(&state, &params, parts, "timeline", series).await
}

/// `GET /api/dashboard/charts`.
pub async fn charts(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    let parts = Parts {
        kpis: false,
        timeline: false,
        charts: true,
    };
    part(&state, &params, parts, "charts", distributions).await
}

/// `GET /api/dashboard/overview`: KPIs, the timeline, the charts and the latest errors.
pub async fn overview(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    let recent_errors = SearchQuery {
        size: RECENT_ERRORS,
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
    Ok(Json(json!({
        "window": window.describe(),
        "stats": kpis(&passes),
        "timeline": series(&passes),
        "charts": distributions(&passes),
        "recent_errors": errors,
    })))
}
