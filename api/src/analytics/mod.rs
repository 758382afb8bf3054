//! `/api/analytics/*`: what sells, what breaks, how shoppers move, over a time window. Each
//! endpoint asks the store for aggregations (one typed request, run natively by either store)
//! and shapes the answer; requests that do not depend on each other run at once.

pub mod params;
mod shape;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_common::fraud::FAILURE_STATUSES;
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{
    Aggregation, AggregationResults, Aggregations, Field, Filter, SearchQuery, TextQuery,
};

use crate::ApiState;
use crate::search::store_error;
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

/// Transactions whose payment went through: every status but the failures, in any case.
pub fn successful_transactions(window: &Window) -> SearchQuery {
    let mut failures = Vec::new();
    for status in FAILURE_STATUSES {
        let mut capitalized = status.to_string();
        capitalized[..1].make_ascii_uppercase();
        for variant in [status.to_string(), capitalized, status.to_ascii_uppercase()] {
            failures.push(TextQuery::Filter(Filter::Equals(Field::Status, variant)));
        }
    }
    SearchQuery {
        text: Some(TextQuery::Not(Box::new(TextQuery::Or(failures)))),
        ..of_type(window, "transaction")
    }
}

const TOP_DEFAULT: usize = 10;
const TOP_MAX: usize = 1_000;
/// Enough buckets for every value of a low-cardinality field (statuses, methods, actions).
const ALL_VALUES: usize = 200;

/// `GET /api/analytics/transactions`: counts and revenue over time, by payment method and by
/// status; revenue and the average basket count successful payments only.
pub async fn transactions(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["limit", "threshold_ms"])?;
    let window = params.window()?;
    let all = of_type(&window, "transaction");
    let paid = successful_transactions(&window);
    let by_amount = || Aggregation::stats(Field::Amount);
    let (all, paid) = tokio::try_join!(
        aggregate(
            &state,
            all,
            vec![
                ("amount", by_amount()),
                ("timeline", Aggregation::timeline(window.interval_ms)),
                (
                    "methods",
                    Aggregation::terms(Field::PaymentMethod, ALL_VALUES)
                ),
                (
                    "statuses",
                    Aggregation::terms(Field::Status, ALL_VALUES).with("amount", by_amount()),
                ),
            ],
        ),
        aggregate(
            &state,
            paid,
            vec![
                ("amount", by_amount()),
                (
                    "timeline",
                    Aggregation::timeline(window.interval_ms).with("amount", by_amount()),
                ),
                (
                    "methods",
                    Aggregation::terms(Field::PaymentMethod, ALL_VALUES)
                        .with("amount", by_amount()),
                ),
                (
                    "currencies",
                    Aggregation::terms(Field::Currency, ALL_VALUES).with("amount", by_amount()),
                ),
            ],
        ),
    )?;
    let revenue = |results: &AggregationResults| money(results.stats("amount").sum);
    let paid_stats = paid.stats("amount");
    let paid_timeline = paid.timeline("timeline");
    let paid_methods = paid.terms("methods");
    Ok(Json(json!({
        "window": window.describe(),
        "total": all.stats("amount").count,
        "successful": paid_stats.count,
        "failed": all.stats("amount").count - paid_stats.count,
        "revenue": revenue(&paid),
        "average_basket": paid_stats.avg.map(money),
        "timeline": timeline_json(all.timeline("timeline"), |bucket| {
            let revenue = paid_timeline
                .iter()
                .find(|p| p.start_ms == bucket.start_ms)
                .map_or(0.0, |p| p.nested.stats("amount").sum);
            json!({ "revenue": money(revenue) })
        }),
        "by_payment_method": terms_json(all.terms("methods"), |bucket| {
            let paid = paid_methods.iter().find(|p| p.value == bucket.value);
            json!({
                "successful": paid.map_or(0, |p| p.count),
                "revenue": money(paid.map_or(0.0, |p| p.nested.stats("amount").sum)),
            })
        }),
        "by_status": terms_json(all.terms("statuses"), |bucket| {
            json!({ "amount": money(bucket.nested.stats("amount").sum) })
        }),
        "by_currency": terms_json(paid.terms("currencies"), |bucket| {
            json!({ "revenue": money(bucket.nested.stats("amount").sum) })
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
            (
                "actions",
                Aggregation::terms(Field::Action, ALL_VALUES)
                    .with("sessions", Aggregation::cardinality(Field::SessionId)),
            ),
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
            let sessions = actions
                .iter()
                .find(|b| b.value == *action)
                .map_or(0, |b| b.nested.cardinality("sessions"));
            let step = json!({
                "action": action,
                "events": count,
                "sessions": sessions,
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
        "actions": terms_json(actions, |b| json!({ "sessions": b.nested.cardinality("sessions") })),
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
    let (all, paid) = tokio::try_join!(
        aggregate(
            state,
            window.query(),
            vec![
                ("types", Aggregation::terms(Field::LogType, 10)),
                ("latency", Aggregation::stats(Field::ResponseTime)),
                ("detected", Aggregation::terms(Field::FraudDetected, 2)),
            ],
        ),
        aggregate(
            state,
            successful_transactions(window),
            vec![("amount", Aggregation::stats(Field::Amount))],
        ),
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
        ("revenue", money(paid.stats("amount").sum)),
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
    let (all, paid) = tokio::try_join!(
        aggregate(
            &state,
            window.query(),
            vec![("countries", Aggregation::terms(Field::GeoCountry, limit))],
        ),
        aggregate(
            &state,
            successful_transactions(&window),
            vec![(
                "countries",
                Aggregation::terms(Field::GeoCountry, TOP_MAX)
                    .with("amount", Aggregation::stats(Field::Amount)),
            )],
        ),
    )?;
    let paid = paid.terms("countries");
    Ok(Json(json!({
        "window": window.describe(),
        "countries": terms_json(all.terms("countries"), |bucket| {
            let revenue = paid
                .iter()
                .find(|p| p.value == bucket.value)
                .map_or(0.0, |p| p.nested.stats("amount").sum);
            json!({ "revenue": money(revenue) })
        }),
    })))
}

/// `GET /api/analytics/top-products`: the products sold most often (successful payments), with
/// their revenue and units.
pub async fn top_products(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["interval", "threshold_ms"])?;
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let results = aggregate(
        &state,
        successful_transactions(&window),
        vec![(
            "products",
            Aggregation::terms(Field::ProductName, limit)
                .with("amount", Aggregation::stats(Field::Amount))
                .with("quantity", Aggregation::stats(Field::Quantity)),
        )],
    )
    .await?;
    Ok(Json(json!({
        "window": window.describe(),
        "products": terms_json(results.terms("products"), |bucket| {
            json!({
                "revenue": money(bucket.nested.stats("amount").sum),
                "units": bucket.nested.stats("quantity").sum,
            })
        }),
    })))
}
