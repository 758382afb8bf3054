//! `/api/analytics/*`: what sells, what breaks, how shoppers move, over a time window. Each
//! endpoint asks the store for aggregations (one typed request, run natively by either store)
//! and shapes the answer; requests that do not depend on each other run at once.

mod paid;
pub mod params;
mod shape;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_store::{Aggregation, AggregationResults, Aggregations, Field, Filter, SearchQuery};
use utoipa::ToSchema;

use crate::ApiState;
use crate::search::store_error;
pub use paid::{
    Paid, bucket_of, interval_of, paid_aggregations, transactions_and_failures, with_paid,
    with_paid_units,
};
pub use params::{
    AnalyticsParams, SlowRequests, Span, SpanTimeline, SpanTop, SpanTopTimeline, Window, WindowJson,
};
pub use shape::{
    Count, Interval, Revenue, Term, counts, counts_over_time, money, ratio, terms, timeline,
};

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
    crate::aggregation_path::record(state.store.answers_from_rollups(&query, &request));
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

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionsAnswer {
    window: WindowJson,
    /// Transactions in the window.
    total: u64,
    /// Of them, those whose payment went through (every status but the failures).
    successful: u64,
    failed: u64,
    /// The amounts of the successful ones.
    revenue: f64,
    /// Revenue per successful transaction; null without any.
    average_basket: Option<f64>,
    timeline: Vec<Interval<Revenue>>,
    by_payment_method: Vec<Term<MethodFigures>>,
    by_status: Vec<Term<StatusAmount>>,
    by_currency: Vec<Term<Revenue>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MethodFigures {
    successful: u64,
    revenue: f64,
}

/// The sum of the amounts with this status, failed or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAmount {
    amount: f64,
}

/// `GET /api/analytics/transactions`: counts and revenue over time, by payment method, status
/// and currency; revenue and the average basket count successful payments only.
#[utoipa::path(
    get,
    path = "/api/analytics/transactions",
    tag = "analytics",
    summary = "Transactions and revenue over time, by payment method, status and currency",
    params(SpanTimeline),
    responses(
        (status = 200, description = "Revenue and the average basket count successful payments only", body = TransactionsAnswer),
        BadRequest,
        Unavailable,
    )
)]
pub async fn transactions(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTimeline>,
) -> Result<Json<TransactionsAnswer>, ApiError> {
    let window = AnalyticsParams::from(params).window()?;
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
    Ok(Json(TransactionsAnswer {
        window: window.describe(),
        total,
        successful: paid.count,
        failed: total - paid.count,
        revenue: money(paid.revenue),
        average_basket: paid.average_basket().map(money),
        timeline: timeline(all.timeline("timeline"), |bucket| {
            let failed = interval_of(&failed, "timeline", bucket.start_ms);
            Revenue {
                revenue: money(Paid::of(&bucket.nested, failed).revenue),
            }
        }),
        by_payment_method: terms(all.terms("methods"), |bucket| {
            let paid = paid_in("methods", bucket);
            MethodFigures {
                successful: paid.count,
                revenue: money(paid.revenue),
            }
        }),
        by_status: terms(all.terms("statuses"), |bucket| StatusAmount {
            amount: money(bucket.nested.stats("amount").sum),
        }),
        by_currency: terms(all.terms("currencies"), |bucket| Revenue {
            revenue: money(paid_in("currencies", bucket).revenue),
        }),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorsAnswer {
    window: WindowJson,
    /// Error events in the window.
    total: u64,
    /// Their share of all events in the window.
    error_rate: f64,
    by_code: Vec<Term<Count>>,
    by_type: Vec<Term<Count>>,
    by_service: Vec<Term<Count>>,
    timeline: Vec<Interval<Count>>,
}

/// `GET /api/analytics/errors`: errors by code, type and service, over time, and their share
/// of all events.
#[utoipa::path(
    get,
    path = "/api/analytics/errors",
    tag = "analytics",
    summary = "Errors by code, type and service, over time, and their share of all events",
    params(SpanTopTimeline),
    responses((status = 200, body = ErrorsAnswer), BadRequest, Unavailable)
)]
pub async fn errors(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTopTimeline>,
) -> Result<Json<ErrorsAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
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
    Ok(Json(ErrorsAnswer {
        window: window.describe(),
        total,
        error_rate: ratio(total, all.total),
        by_code: counts(errors.terms("codes")),
        by_type: counts(errors.terms("types")),
        by_service: counts(errors.terms("services")),
        timeline: counts_over_time(errors.timeline("timeline")),
    }))
}

/// The shopping funnel, in order.
const FUNNEL: [&str; 4] = ["view", "add_to_cart", "checkout", "purchase"];

#[derive(Debug, Serialize, ToSchema)]
pub struct UserBehaviorAnswer {
    window: WindowJson,
    /// User-behaviour events in the window.
    total: u64,
    /// Distinct `user_id`s (approximate above 40,000, as Elasticsearch's cardinality is).
    unique_users: u64,
    /// Distinct `session_id`s (approximate likewise).
    sessions: u64,
    actions: Vec<Term<Count>>,
    funnel: Vec<FunnelStep>,
    /// The share of carts not bought; null without carts.
    cart_abandonment_rate: Option<f64>,
    top_pages: Vec<Term<Count>>,
}

/// A step of view → add_to_cart → checkout → purchase.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelStep {
    action: &'static str,
    events: u64,
    /// Null for the first step.
    rate_from_previous: Option<f64>,
    rate_from_start: f64,
}

/// `GET /api/analytics/user-behavior`: actions, the view → add_to_cart → checkout → purchase
/// funnel with its conversion rates, cart abandonment, and visitors.
#[utoipa::path(
    get,
    path = "/api/analytics/user-behavior",
    tag = "analytics",
    summary = "Actions, the shopping funnel with its conversion rates, cart abandonment and visitors",
    params(SpanTop),
    responses((status = 200, body = UserBehaviorAnswer), BadRequest, Unavailable)
)]
pub async fn user_behavior(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTop>,
) -> Result<Json<UserBehaviorAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
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
    let funnel = FUNNEL
        .iter()
        .map(|action| {
            let count = count_of(action);
            let step = FunnelStep {
                action,
                events: count,
                rate_from_previous: previous.map(|p| ratio(count, p)),
                rate_from_start: ratio(count, first),
            };
            previous = Some(count);
            step
        })
        .collect();
    let carts = count_of("add_to_cart");
    let purchases = count_of("purchase");
    Ok(Json(UserBehaviorAnswer {
        window: window.describe(),
        total: actions.iter().map(|b| b.count).sum::<u64>(),
        unique_users: results.cardinality("users"),
        sessions: results.cardinality("sessions"),
        actions: counts(actions),
        funnel,
        cart_abandonment_rate: (carts > 0).then(|| 1.0 - ratio(purchases.min(carts), carts)),
        top_pages: counts(results.terms("pages")),
    }))
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

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendsAnswer {
    window: WindowJson,
    /// The window of the same length just before.
    previous_window: WindowJson,
    /// events, errors, error_rate, transactions, revenue, avg_response_time_ms and
    /// fraud_detected, in that order.
    figures: Vec<Trend>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    name: &'static str,
    current: f64,
    previous: f64,
    /// The change in percent; null when the previous figure is 0.
    change_pct: Option<f64>,
}

/// `GET /api/analytics/trends`: each figure in this window against the window of the same
/// length before it.
#[utoipa::path(
    get,
    path = "/api/analytics/trends",
    tag = "analytics",
    summary = "Each headline figure in the window against the window of the same length before it",
    params(Span),
    responses((status = 200, body = TrendsAnswer), BadRequest, Unavailable)
)]
pub async fn trends(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<TrendsAnswer>, ApiError> {
    let window = AnalyticsParams::from(params).window()?;
    let previous = window.previous();
    let (now, before) = tokio::try_join!(
        period_figures(&state, &window),
        period_figures(&state, &previous)
    )?;
    let figures = now
        .iter()
        .zip(&before)
        .map(|((name, current), (_, earlier))| Trend {
            name,
            current: *current,
            previous: *earlier,
            change_pct: (*earlier != 0.0).then(|| money((current - earlier) / earlier * 100.0)),
        })
        .collect();
    Ok(Json(TrendsAnswer {
        window: window.describe(),
        previous_window: previous.describe(),
        figures,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogsPerHourAnswer {
    window: WindowJson,
    hours: Vec<Interval<ByType>>,
}

/// Events of the bucket by log type.
#[derive(Debug, Serialize, ToSchema)]
pub struct ByType {
    by_type: BTreeMap<String, u64>,
}

const HOUR_MS: i64 = 3_600_000;
/// As many buckets as a timeline with an `interval` may have.
const MAX_HOURS: i64 = 2_000;

/// `GET /api/analytics/logs-per-hour`: events per hour and type, over the last 24 hours unless
/// a window is given.
#[utoipa::path(
    get,
    path = "/api/analytics/logs-per-hour",
    tag = "analytics",
    summary = "Events per hour and log type, over the last 24 hours unless a window is given (at most 2,000 hours)",
    params(Span),
    responses((status = 200, body = LogsPerHourAnswer), BadRequest, Unavailable)
)]
pub async fn logs_per_hour(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Span>,
) -> Result<Json<LogsPerHourAnswer>, ApiError> {
    let window = Window {
        interval_ms: HOUR_MS,
        ..AnalyticsParams::from(params).window()?
    };
    if (window.to_ms - window.from_ms) / HOUR_MS > MAX_HOURS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "logs-per-hour answers at most {MAX_HOURS} hours (about 83 days); narrow the \
                 window, or use /api/dashboard/metrics, which chooses its interval"
            ),
        ));
    }
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
    Ok(Json(LogsPerHourAnswer {
        window: window.describe(),
        hours: timeline(results.timeline("hours"), |bucket| ByType {
            by_type: bucket
                .nested
                .terms("types")
                .iter()
                .map(|t| (t.value.clone(), t.count))
                .collect(),
        }),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopCountriesAnswer {
    window: WindowJson,
    countries: Vec<Term<Revenue>>,
}

/// `GET /api/analytics/top-countries`: where events come from (the GeoIP country), with the
/// revenue of the successful payments from there.
#[utoipa::path(
    get,
    path = "/api/analytics/top-countries",
    tag = "analytics",
    summary = "Where events come from (the GeoIP country), with the revenue of the payments from there",
    params(SpanTop),
    responses((status = 200, body = TopCountriesAnswer), BadRequest, Unavailable)
)]
pub async fn top_countries(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTop>,
) -> Result<Json<TopCountriesAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
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
    Ok(Json(TopCountriesAnswer {
        window: window.describe(),
        countries: terms(all.terms("countries"), |bucket| {
            let revenue = bucket_of(&transactions, "countries", &bucket.value);
            let failed = bucket_of(&failed, "countries", &bucket.value);
            Revenue {
                revenue: money(Paid::of(revenue, failed).revenue),
            }
        }),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopProductsAnswer {
    window: WindowJson,
    products: Vec<Term<ProductSales>>,
}

/// What a product's successful payments brought in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSales {
    revenue: f64,
    /// The quantities ordered.
    units: f64,
}

/// `GET /api/analytics/top-products`: the products ordered most often, with the revenue and
/// units of their successful payments.
#[utoipa::path(
    get,
    path = "/api/analytics/top-products",
    tag = "analytics",
    summary = "The products ordered most often, with the revenue and units of their payments",
    params(SpanTop),
    responses((status = 200, body = TopProductsAnswer), BadRequest, Unavailable)
)]
pub async fn top_products(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTop>,
) -> Result<Json<TopProductsAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
    let window = params.window()?;
    let limit = params.limit(TOP_DEFAULT, TOP_MAX)?;
    let (all, failed) =
        transactions_and_failures(&state, &window, vec![("products", products(limit))]).await?;
    Ok(Json(TopProductsAnswer {
        window: window.describe(),
        products: product_sales(&all, &failed),
    }))
}

/// The most ordered products, with what [`product_sales`] reads.
pub fn products(limit: usize) -> Aggregation {
    with_paid_units(Aggregation::terms(Field::ProductName, limit))
}

pub fn product_sales(
    all: &AggregationResults,
    failed: &AggregationResults,
) -> Vec<Term<ProductSales>> {
    terms(all.terms("products"), |bucket| {
        let paid = Paid::of(&bucket.nested, bucket_of(failed, "products", &bucket.value));
        ProductSales {
            revenue: money(paid.revenue),
            units: paid.units,
        }
    })
}

/// The `limit` products that earned most, out of [`product_sales`] over the
/// [`ALL_VALUES`] most ordered: the store ranks terms by count, and revenue is known only once
/// the failures are subtracted, so the ranking by revenue is made here.
pub fn products_by_revenue(
    all: &AggregationResults,
    failed: &AggregationResults,
    limit: usize,
) -> Vec<Term<ProductSales>> {
    let mut sales = product_sales(all, failed);
    sales.sort_by(|a, b| {
        b.extra
            .revenue
            .total_cmp(&a.extra.revenue)
            .then_with(|| a.value.cmp(&b.value))
    });
    sales.truncate(limit);
    sales
}
