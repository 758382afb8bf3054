//! `/api/dashboard/*`: the dashboard page's numbers. `overview` is everything the page shows in
//! one request (its parts run at once); `stats`, `metrics` and `charts` are its parts, for
//! widgets that refresh on their own.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{Aggregation, Field, Filter, SearchQuery};

use crate::ApiState;
use crate::analytics::{
    AnalyticsParams, Window, aggregate, money, of_type, ratio, successful_transactions, terms_json,
    timeline_json,
};
use crate::search::run;

const TOP: usize = 10;
const RECENT_ERRORS: usize = 10;

/// KPIs: events, revenue, error rate, fraud alerts, p95 latency, transactions, active users.
async fn kpis(state: &ApiState, window: &Window) -> Result<Value, ApiError> {
    let (all, paid, latency) = tokio::try_join!(
        aggregate(
            state,
            window.query(),
            vec![
                ("types", Aggregation::terms(Field::LogType, 10)),
                ("detected", Aggregation::terms(Field::FraudDetected, 2)),
                ("users", Aggregation::cardinality(Field::UserId)),
            ],
        ),
        aggregate(
            state,
            successful_transactions(window),
            vec![("amount", Aggregation::stats(Field::Amount))],
        ),
        aggregate(
            state,
            of_type(window, "performance"),
            vec![("p", Aggregation::percentiles(Field::ResponseTime, &[95.0]),)],
        ),
    )?;
    let types = all.terms("types");
    let events: u64 = types.iter().map(|b| b.count).sum();
    let count_of = |t: &str| types.iter().find(|b| b.value == t).map_or(0, |b| b.count);
    let paid = paid.stats("amount");
    Ok(json!({
        "events": events,
        "transactions": count_of("transaction"),
        "revenue": money(paid.sum),
        "average_basket": paid.avg.map(money),
        "errors": count_of("error"),
        "error_rate": ratio(count_of("error"), events),
        "fraud_alerts": all
            .terms("detected")
            .iter()
            .find(|b| b.value == "true")
            .map_or(0, |b| b.count),
        "p95_response_time_ms": latency.percentile("p", 95.0).map(money),
        "active_users": all.cardinality("users"),
    }))
}

/// Events, errors and revenue per interval.
async fn series(state: &ApiState, window: &Window) -> Result<Value, ApiError> {
    let (all, paid) = tokio::try_join!(
        aggregate(
            state,
            window.query(),
            vec![(
                "timeline",
                Aggregation::timeline(window.interval_ms)
                    .with("types", Aggregation::terms(Field::LogType, 10)),
            )],
        ),
        aggregate(
            state,
            successful_transactions(window),
            vec![(
                "timeline",
                Aggregation::timeline(window.interval_ms)
                    .with("amount", Aggregation::stats(Field::Amount)),
            )],
        ),
    )?;
    let paid = paid.timeline("timeline");
    Ok(json!(timeline_json(all.timeline("timeline"), |bucket| {
        let errors = bucket
            .nested
            .terms("types")
            .iter()
            .find(|t| t.value == "error")
            .map_or(0, |t| t.count);
        let revenue = paid
            .iter()
            .find(|p| p.start_ms == bucket.start_ms)
            .map_or(0.0, |p| p.nested.stats("amount").sum);
        json!({ "errors": errors, "revenue": money(revenue) })
    })))
}

/// Distributions: levels, types, and the top services, countries and products.
async fn distributions(state: &ApiState, window: &Window) -> Result<Value, ApiError> {
    let (all, products) = tokio::try_join!(
        aggregate(
            state,
            window.query(),
            vec![
                ("levels", Aggregation::terms(Field::Level, 20)),
                ("types", Aggregation::terms(Field::LogType, 10)),
                ("services", Aggregation::terms(Field::Service, TOP)),
                ("countries", Aggregation::terms(Field::GeoCountry, TOP)),
            ],
        ),
        aggregate(
            state,
            successful_transactions(window),
            vec![(
                "products",
                Aggregation::terms(Field::ProductName, TOP)
                    .with("amount", Aggregation::stats(Field::Amount)),
            )],
        ),
    )?;
    let plain = |name: &str| json!(terms_json(all.terms(name), |_| json!({})));
    Ok(json!({
        "levels": plain("levels"),
        "types": plain("types"),
        "top_services": plain("services"),
        "top_countries": plain("countries"),
        "top_products": terms_json(products.terms("products"), |bucket| {
            json!({ "revenue": money(bucket.nested.stats("amount").sum) })
        }),
    }))
}

/// `GET /api/dashboard/stats`.
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = params.window()?;
    Ok(Json(json!({
        "window": window.describe(),
        "stats": kpis(&state, &window).await?,
    })))
}

/// `GET /api/dashboard/metrics`.
pub async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    Ok(Json(json!({
        "window": window.describe(),
        "timeline": series(&state, &window).await?,
    })))
}

/// `GET /api/dashboard/charts`.
pub async fn charts(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = params.window()?;
    Ok(Json(json!({
        "window": window.describe(),
        "charts": distributions(&state, &window).await?,
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
    let (stats, timeline, charts, errors) = tokio::try_join!(
        kpis(&state, &window),
        series(&state, &window),
        distributions(&state, &window),
        async { run(&state, &recent_errors, false).await },
    )?;
    let errors = serde_json::to_value(errors.0).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({
        "window": window.describe(),
        "stats": stats,
        "timeline": timeline,
        "charts": charts,
        "recent_errors": errors["hits"],
    })))
}
