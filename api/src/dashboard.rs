//! `/api/dashboard/*`: the dashboard page's numbers. `overview` is everything the page shows in
//! one request; `stats`, `metrics` and `charts` are its parts, for widgets that refresh on their
//! own. Whatever parts are asked for, the store makes one pass over the window's events, one
//! over its transactions and (for the KPIs) one over its performance events, at once.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{Aggregation, AggregationResults, Field, Filter, SearchQuery};

use crate::ApiState;
use crate::analytics::{
    AnalyticsParams, Paid, Window, aggregate, interval_of, money, of_type, paid_aggregations,
    products, products_json, ratio, terms_json, timeline_json, transactions_and_failures,
    with_paid,
};
use crate::search::run;

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

/// `GET /api/dashboard/stats`.
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = params.window()?;
    let parts = Parts {
        kpis: true,
        timeline: false,
        charts: false,
    };
    let passes = passes(&state, &window, parts).await?;
    Ok(Json(json!({
        "window": window.describe(),
        "stats": kpis(&passes),
    })))
}

/// `GET /api/dashboard/metrics`.
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    let parts = Parts {
        kpis: false,
        timeline: true,
        charts: false,
    };
    let passes = passes(&state, &window, parts).await?;
    Ok(Json(json!({
        "window": window.describe(),
        "timeline": series(&passes),
    })))
}

/// `GET /api/dashboard/charts`.
pub async fn charts(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = params.window()?;
    let parts = Parts {
        kpis: false,
        timeline: false,
        charts: true,
    };
    let passes = passes(&state, &window, parts).await?;
    Ok(Json(json!({
        "window": window.describe(),
        "charts": distributions(&passes),
    })))
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
        run(&state, &recent_errors, false).await
    },)?;
    let errors = serde_json::to_value(errors.0).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({
        "window": window.describe(),
        "stats": kpis(&passes),
        "timeline": series(&passes),
        "charts": distributions(&passes),
        "recent_errors": errors["hits"],
    })))
}
