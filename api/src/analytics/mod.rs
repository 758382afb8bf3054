//! `/api/analytics/*`: what sells, what breaks, how shoppers move, over a time window. Each
//! endpoint asks the store for aggregations (one typed request, run natively by either store)
//! and shapes the answer; requests that do not depend on each other run at once.

mod paid;
pub mod params;
mod shape;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Aggregation, AggregationResults, Aggregations, Field, Filter, SearchQuery};

use crate::ApiState;
use crate::search::store_error;
pub use paid::{
    Paid, bucket_of, interval_of, paid_aggregations, transactions_and_failures, with_paid,
    with_paid_units,
};
pub use params::{AnalyticsParams, Window};
pub use shape::{money, ratio, terms_json, timeline_json};

/// Runs named aggregations over `query`.
pub async fn aggregate(
    state: &ApiState,
    query: SearchQuery,
    named: Vec<(&str, Aggregation)>,
) -> Result<AggregationResults, ApiError> {
    let request: Aggregations = named
        .into_iter()
        .map(|(name, aggregation)| (name.to_owned(), aggregation))
        .collect();
    state
        .store
        .aggregate(&query, &request)
        .await
        .map_err(store_error)
}

pub fn of_type(window: &Window, log_type: &str) -> SearchQuery {
    window
        .query()
        .and(Filter::Equals(Field::LogType, log_type.into()))
}

const TOP_DEFAULT: usize = 10;
const TOP_MAX: usize = 1_000;
/// Enough buckets for every value of a low-cardinality field (statuses, methods, actions).
pub(crate) const ALL_VALUES: usize = 200;

/// `GET /api/analytics/transactions`: counts and revenue over time, by payment method, status
/// and currency; revenue and the average basket count successful payments only.
pub async fn transactions(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    let mut named = paid_aggregations();
    named.extend([
        (
            "timeline",
            with_paid(Aggregation::timeline(window.interval_ms)),
        ),
        (
            "methods",
            with_paid(Aggregation::terms(Field::PaymentMethod, ALL_VALUES)),
        ),
        (
            "statuses",
            with_paid(Aggregation::terms(Field::Status, ALL_VALUES)),
        ),
        (
            "currencies",
            with_paid(Aggregation::terms(Field::Currency, ALL_VALUES)),
        ),
    ]);
    let (all, failed) = transactions_and_failures(&state, &window, named).await?;
    let paid = Paid::of(&all, &failed);
    let total = Paid::all_count(&all);
    let paid_in = |name: &'static str, bucket: &sluice_store::TermBucket| {
        Paid::of(&bucket.nested, bucket_of(&failed, name, &bucket.value))
    };
    Ok(Json(json!({
        "window": window.describe(),
        "total": total,
        "successful": paid.count,
        "failed": total - paid.count,
        "revenue": money(paid.revenue),
        "average_basket": paid.average_basket().map(money),
        "timeline": timeline_json(all.timeline("timeline"), |bucket| {
            let failed = interval_of(&failed, "timeline", bucket.start_ms);
            json!({ "revenue": money(Paid::of(&bucket.nested, failed).revenue) })
        }),
        "by_payment_method": terms_json(all.terms("methods"), |bucket| {
            let paid = paid_in("methods", bucket);
            json!({ "successful": paid.count, "revenue": money(paid.revenue) })
        }),
        "by_status": terms_json(all.terms("statuses"), |bucket| {
            json!({ "amount": money(bucket.nested.stats("amount").sum) })
        }),
        "by_currency": terms_json(all.terms("currencies"), |bucket| {
            json!({ "revenue": money(paid_in("currencies", bucket).revenue) })
        }),
    })))
}

/// `GET /api/analytics/errors`: errors by code, type and service, over time, and their share
/// of all events.
pub async fn errors(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let all_events = window.query();
    let (errors, all) = tokio::try_join!(
        aggregate(
            &state,
            of_type(&window, "error"),
            vec![
                ("codes", Aggregation::terms(Field::ErrorCode, limit)),
                ("types", Aggregation::terms(Field::ErrorType, limit)),
                ("services", Aggregation::terms(Field::Service, limit)),
                ("timeline", Aggregation::timeline(window.interval_ms)),
            ],
        ),
        async { state.store.search(&all_events).await.map_err(store_error) },
    )?;
    let total: u64 = errors.timeline("timeline").iter().map(|b| b.count).sum();
    Ok(Json(json!({
        "window": window.describe(),
        "total": total,
        "error_rate": ratio(total, all.total),
        "by_code": terms_json(errors.terms("codes"), |_| json!({})),
        "by_type": terms_json(errors.terms("types"), |_| json!({})),
        "by_service": terms_json(errors.terms("services"), |_| json!({})),
        "timeline": timeline_json(errors.timeline("timeline"), |_| json!({})),
    })))
}

/// The shopping funnel, in order.
const FUNNEL: [&str; 4] = ["view", "add_to_cart", "checkout", "purchase"];

/// `GET /api/analytics/user-behavior`: actions, the view → add_to_cart → checkout → purchase
/// funnel with its conversion rates, cart abandonment, and visitors.
pub async fn user_behavior(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let results = aggregate(
        &state,
        of_type(&window, "user_behavior"),
        vec![
            ("actions", Aggregation::terms(Field::Action, ALL_VALUES)),
            ("pages", Aggregation::terms(Field::Page, limit)),
            ("users", Aggregation::cardinality(Field::UserId)),
            ("sessions", Aggregation::cardinality(Field::SessionId)),
        ],
    )
    .await?;
    let actions = results.terms("actions");
    let count_of = |action: &str| {
        actions
            .iter()
            .find(|b| b.value == action)
            .map_or(0, |b| b.count)
    };
    let first = count_of(FUNNEL[0]);
    let mut previous = None;
    let funnel: Vec<Value> = FUNNEL
        .iter()
        .map(|action| {
            let count = count_of(action);
            let step = json!({
                "action": action,
                "events": count,
                "rate_from_previous": previous.map(|p| ratio(count, p)),
                "rate_from_start": ratio(count, first),
            });
            previous = Some(count);
            step
        })
        .collect();
    let carts = count_of("add_to_cart");
    let purchases = count_of("purchase");
    Ok(Json(json!({
        "window": window.describe(),
        "total": actions.iter().map(|b| b.count).sum::<u64>(),
        "unique_users": results.cardinality("users"),
        "sessions": results.cardinality("sessions"),
        "actions": terms_json(actions, |_| json!({})),
        "funnel": funnel,
        "cart_abandonment_rate": (carts > 0).then(|| 1.0 - ratio(purchases.min(carts), carts)),
        "top_pages": terms_json(results.terms("pages"), |_| json!({})),
    })))
}

/// Figures compared between a window and the one before it.
async fn period_figures(
    state: &ApiState,
    window: &Window,
) -> Result<Vec<(&'static str, f64)>, ApiError> {
    let (all, (transactions, failed)) = tokio::try_join!(
        aggregate(
            state,
            window.query(),
            vec![
                ("types", Aggregation::terms(Field::LogType, 10)),
                ("latency", Aggregation::stats(Field::ResponseTime)),
                ("detected", Aggregation::terms(Field::FraudDetected, 2)),
            ],
        ),
        transactions_and_failures(state, window, paid_aggregations()),
    )?;
    let of_type = |t: &str| {
        all.terms("types")
            .iter()
            .find(|b| b.value == t)
            .map_or(0, |b| b.count)
    };
    let events: u64 = all.terms("types").iter().map(|b| b.count).sum();
    let detected = all
        .terms("detected")
        .iter()
        .find(|b| b.value == "true")
        .map_or(0, |b| b.count);
    Ok(vec![
        ("events", events as f64),
        ("errors", of_type("error") as f64),
        ("error_rate", ratio(of_type("error"), events)),
        ("transactions", of_type("transaction") as f64),
        ("revenue", money(Paid::of(&transactions, &failed).revenue)),
        (
            "avg_response_time_ms",
            all.stats("latency").avg.map_or(0.0, money),
        ),
        ("fraud_detected", detected as f64),
    ])
}

/// `GET /api/analytics/trends`: each figure in this window against the window of the same
/// length before it.
pub async fn trends(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = params.window()?;
    let previous = window.previous();
    let (now, before) = tokio::try_join!(
        period_figures(&state, &window),
        period_figures(&state, &previous)
    )?;
    let figures: Vec<Value> = now
        .iter()
        .zip(&before)
        .map(|((name, current), (_, earlier))| {
            json!({
                "name": name,
                "current": current,
                "previous": earlier,
                "change_pct": (*earlier != 0.0).then(|| money((current - earlier) / earlier * 100.0)),
            })
        })
        .collect();
    Ok(Json(json!({
        "window": window.describe(),
        "previous_window": previous.describe(),
        "figures": figures,
    })))
}

/// `GET /api/analytics/logs-per-hour`: events per hour and type, over the last 24 hours unless
/// a window is given.
pub async fn logs_per_hour(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "limit", "threshold_ms"])?;
    let window = Window {
        interval_ms: 3_600_000,
        ..params.window()?
    };
    let results = aggregate(
        &state,
        window.query(),
        vec![(
            "hours",
            Aggregation::timeline(window.interval_ms)
                .with("types", Aggregation::terms(Field::LogType, 10)),
        )],
    )
    .await?;
    Ok(Json(json!({
        "window": window.describe(),
        "hours": timeline_json(results.timeline("hours"), |bucket| {
            let by_type: serde_json::Map<String, Value> = bucket
                .nested
                .terms("types")
                .iter()
                .map(|t| (t.value.clone(), json!(t.count)))
                .collect();
            json!({ "by_type": by_type })
        }),
    })))
}

/// `GET /api/analytics/top-countries`: where events come from (the GeoIP country), with the
/// revenue of the successful payments from there.
pub async fn top_countries(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let (all, (transactions, failed)) = tokio::try_join!(
        aggregate(
            &state,
            window.query(),
            vec![("countries", Aggregation::terms(Field::GeoCountry, limit))],
        ),
        transactions_and_failures(
            &state,
            &window,
            vec![(
                "countries",
                with_paid(Aggregation::terms(Field::GeoCountry, TOP_MAX)),
            )],
        ),
    )?;
    Ok(Json(json!({
        "window": window.describe(),
        "countries": terms_json(all.terms("countries"), |bucket| {
            let revenue = bucket_of(&transactions, "countries", &bucket.value);
            let failed = bucket_of(&failed, "countries", &bucket.value);
            json!({ "revenue": money(Paid::of(revenue, failed).revenue) })
        }),
    })))
}

/// `GET /api/analytics/top-products`: the products ordered most often, with the revenue and
/// units of their successful payments.
pub async fn top_products(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let (all, failed) =
        transactions_and_failures(&state, &window, vec![("products", products(limit))]).await?;
    Ok(Json(json!({
        "window": window.describe(),
        "products": products_json(&all, &failed),
    })))
}

/// The most ordered products, with what [`products_json`] reads.
pub fn products(limit: usize) -> Aggregation {
    with_paid_units(Aggregation::terms(Field::ProductName, limit))
}

pub fn products_json(all: &AggregationResults, failed: &AggregationResults) -> Vec<Value> {
    terms_json(all.terms("products"), |bucket| {
        let paid = Paid::of(&bucket.nested, bucket_of(failed, "products", &bucket.value));
        json!({ "revenue": money(paid.revenue), "units": paid.units })
    })
}
