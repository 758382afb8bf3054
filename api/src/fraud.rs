//! `/api/fraud/*`: what the fraud engine (inline in the processor) and upstream detectors
//! flagged: the flagged events themselves with their review, counts by indicator, country and
//! time, and the review of an alert (new, confirmed, false_positive), kept in the meta store by
//! event id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sluice_auth::accounts::AccountError;
use sluice_event::{LogType, record_schema};
use sluice_fraud::{DetectError, Detection};
use sluice_http::responses::{BadRequest, NotFound, Unavailable, UnsupportedMediaType};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::{Collection, MetaError};
use sluice_store::{Aggregation, Field, Filter, SearchQuery, SortKey, Total};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::ApiState;
use crate::analytics::{
    AnalyticsParams, Count, Interval, SpanTopTimeline, Term, WindowJson, aggregate, counts,
    counts_over_time, money,
};
use crate::auth::CurrentUser;
use crate::search::{hit_document, offset_within_window, size, store_error};
use crate::time_param::{TimeBound, TimeParam, window};
use sluice_event::format_rfc3339_ms;

/// Reviews of fraud alerts, keyed by the event's id.
pub const FRAUD_REVIEWS: Collection = Collection {
    name: "fraud_reviews",
    unique: &[],
    indexed: &["status"],
};

const REVIEW_STATUSES: [&str; 3] = ["new", "confirmed", "false_positive"];
const MAX_NOTE_CHARS: usize = 2_000;

fn meta_error(e: MetaError) -> ApiError {
    AccountError::Meta(e).into()
}

fn detected() -> Filter {
    Filter::Equals(Field::FraudDetected, "true".into())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FraudStatsAnswer {
    window: WindowJson,
    /// Events with a fraud score.
    scored: u64,
    /// Events flagged as fraud.
    detected: u64,
    detection_rate: f64,
    /// Null without detections.
    average_detected_score: Option<f64>,
    reviews: ReviewCounts,
    by_indicator: Vec<Term<Count>>,
    /// By the GeoIP country.
    by_country: Vec<Term<Count>>,
    timeline: Vec<Interval<Count>>,
}

/// Reviews made so far, whatever the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewCounts {
    confirmed: u64,
    false_positive: u64,
}

/// `GET /api/fraud/stats`: events scored and flagged, flagged ones by indicator, by country and
/// over time, and their average score.
#[utoipa::path(
    get,
    path = "/api/fraud/stats",
    tag = "fraud",
    summary = "Events scored and flagged; flagged ones by indicator, country and time; reviews",
    params(SpanTopTimeline),
    responses((status = 200, body = FraudStatsAnswer), BadRequest, Unavailable)
)]
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SpanTopTimeline>,
) -> Result<Json<FraudStatsAnswer>, ApiError> {
    let params = AnalyticsParams::from(params);
    let window = params.window()?;
    let limit = params.limit(10, 1_000)?;
    let scored = window.query().and(Filter::Exists(Field::FraudScore));
    let flagged = window.query().and(detected());
    let (scored, flagged) = tokio::try_join!(
        aggregate(
            &state,
            scored,
            vec![("score", Aggregation::stats(Field::FraudScore))],
        ),
        aggregate(
            &state,
            flagged,
            vec![
                ("score", Aggregation::stats(Field::FraudScore)),
                (
                    "indicators",
                    Aggregation::terms(Field::FraudIndicators, 100)
                ),
                ("countries", Aggregation::terms(Field::GeoCountry, limit)),
                ("timeline", Aggregation::timeline(window.interval_ms)),
            ],
        ),
    )?;
    let flagged_score = flagged.stats("score");
    let meta = state.accounts.meta();
    let confirmed_filter = [("status", json!("confirmed"))];
    let false_positive_filter = [("status", json!("false_positive"))];
    let (confirmed, false_positives) = tokio::try_join!(
        meta.count(&FRAUD_REVIEWS, &confirmed_filter),
        meta.count(&FRAUD_REVIEWS, &false_positive_filter),
    )
    .map_err(meta_error)?;
    Ok(Json(FraudStatsAnswer {
        window: window.describe(),
        scored: scored.stats("score").count,
        detected: flagged_score.count,
        detection_rate: crate::analytics::ratio(flagged_score.count, scored.stats("score").count),
        average_detected_score: flagged_score.avg.map(money),
        reviews: ReviewCounts {
            confirmed,
            false_positive: false_positives,
        },
        by_indicator: counts(flagged.terms("indicators")),
        by_country: counts(flagged.terms("countries")),
        timeline: counts_over_time(flagged.timeline("timeline")),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuspiciousParams {
    /// Start of the window, inclusive: RFC 3339 or epoch milliseconds. Not after `to`; not
    /// with `range`.
    #[param(value_type = Option<TimeBound>, inline)]
    from: Option<TimeParam>,
    /// End of the window, inclusive: RFC 3339 or epoch milliseconds.
    #[param(value_type = Option<TimeBound>, inline)]
    to: Option<TimeParam>,
    /// A window back from now instead of `from`/`to` (`15m`, `24h`, `30d`; at most 366 days).
    #[param(pattern = "^[1-9][0-9]{0,5}[mhd]$")]
    range: Option<String>,
    /// Only events scored at least this; without it, the events flagged as detected.
    #[param(minimum = 0, maximum = 100)]
    min_score: Option<f64>,
    /// Only events with this indicator.
    indicator: Option<String>,
    /// Events per page (default 20).
    #[param(minimum = 0, maximum = 1000)]
    size: Option<i64>,
    /// Events to skip; `offset + size` at most 10,000 (page deeper with `search_after`).
    #[param(minimum = 0, maximum = 10000)]
    offset: Option<i64>,
    /// `next_search_after` of the previous page, as `value,id`.
    #[param(pattern = "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?,.*$")]
    search_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuspiciousAnswer {
    total: u64,
    /// Flagged events as stored, each with its `_id` and its review as `_review` (status `new`
    /// until someone reviews it).
    #[schema(value_type = Vec<Object>)]
    hits: Vec<Map<String, Value>>,
    /// Pass as `search_after` for the next page; null on the last page.
    next_search_after: Option<String>,
}

/// `GET /api/fraud/suspicious-activities`: flagged events, newest first, a page at a time, each
/// with its review (`_review`; status `new` until someone reviews it).
#[utoipa::path(
    get,
    path = "/api/fraud/suspicious-activities",
    tag = "fraud",
    summary = "Flagged events, newest first, a page at a time, each with its review",
    params(SuspiciousParams),
    responses((status = 200, body = SuspiciousAnswer), BadRequest, Unavailable)
)]
pub async fn suspicious_activities(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SuspiciousParams>,
) -> Result<Json<SuspiciousAnswer>, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_request", message);
    let (from_ms, to_ms) = window(params.from, params.to, params.range.as_deref())?;
    let mut filters = vec![match params.min_score {
        Some(score) if (0.0..=100.0).contains(&score) => {
            Filter::between(Field::FraudScore, Some(score), None)
        }
        Some(score) => return Err(invalid(format!("min_score {score} is not within 0..=100"))),
        None => detected(),
    }];
    if let Some(indicator) = params.indicator {
        filters.push(Filter::Equals(Field::FraudIndicators, indicator));
    }
    let size = size(params.size, 20, 1_000)?;
    let offset = offset_within_window(params.offset, size)?;
    let search_after = params
        .search_after
        .map(|cursor| {
            cursor
                .split_once(',')
                .and_then(|(value, id)| {
                    value.parse::<f64>().ok().map(|value| SortKey {
                        value,
                        id: id.to_owned(),
                    })
                })
                .ok_or_else(|| {
                    invalid(format!(
                        "search_after {cursor:?}: expected the previous page's next_search_after \
                         as value,id"
                    ))
                })
        })
        .transpose()?;
    let query = SearchQuery {
        filters,
        from_ms,
        to_ms,
        search_after,
        offset,
        size,
        ..SearchQuery::default()
    };
    let results = state.store.search(&query).await.map_err(store_error)?;
    let next_search_after = match results.hits.last() {
        Some(last) if results.hits.len() == query.size => {
            Some(format!("{},{}", last.sort.value, last.sort.id))
        }
        _ => None,
    };
    let meta = state.accounts.meta();
    let reviews = futures::future::try_join_all(
        results
            .hits
            .iter()
            .map(|hit| meta.get(&FRAUD_REVIEWS, hit.id())),
    )
    .await
    .map_err(meta_error)?;
    let mut activities = Vec::with_capacity(results.hits.len());
    for (hit, review) in results.hits.into_iter().zip(reviews) {
        let mut activity = hit_document(hit, &[])?;
        activity.insert(
            "_review".into(),
            review.unwrap_or_else(|| json!({ "status": "new" })),
        );
        activities.push(activity);
    }
    Ok(Json(SuspiciousAnswer {
        total: results.total,
        hits: activities,
        next_search_after,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    #[schema(value_type = ReviewStatus)]
    status: String,
    /// At most 2,000 characters.
    #[schema(max_length = 2000)]
    note: Option<String>,
}

/// What a review says of an alert.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum ReviewStatus {
    New,
    Confirmed,
    FalsePositive,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewAnswer {
    /// The event's id.
    id: String,
    review: Review,
}

/// A review as the meta store keeps it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Review {
    #[schema(value_type = ReviewStatus)]
    status: String,
    note: String,
    reviewed_by: Reviewer,
    /// RFC 3339.
    reviewed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reviewer {
    id: String,
    username: String,
}

/// `PUT /api/fraud/alerts/{id}/review`: marks a flagged event confirmed, a false positive, or
/// new again, with an optional note; who and when are recorded.
#[utoipa::path(
    put,
    path = "/api/fraud/alerts/{id}/review",
    tag = "fraud",
    summary = "Review an alert: confirmed, a false positive, or new again, with a note",
    params(("id" = String, Path, description = "The event's id (`_id`)")),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "The review, with who made it and when", body = ReviewAnswer),
        (status = 400, description = "A status or note that does not fit, or an event that was not scored", body = sluice_http::ErrorBody),
        NotFound,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn review(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ReviewRequest>,
) -> Result<Json<ReviewAnswer>, ApiError> {
    if !REVIEW_STATUSES.contains(&request.status.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!(
                "status {:?} is not one of new, confirmed, false_positive",
                request.status
            ),
        )
        .field("status"));
    }
    let note = request.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("note: at most {MAX_NOTE_CHARS} characters"),
        )
        .field("note"));
    }
    let flagged = SearchQuery {
        filters: vec![Filter::Equals(Field::DocumentId, id.clone())],
        size: 1,
        total: Total::NotNeeded,
        ..SearchQuery::default()
    };
    let found = state.store.search(&flagged).await.map_err(store_error)?;
    let Some(hit) = found.hits.first() else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no event has the id {id:?}"),
        ));
    };
    let document: Value = serde_json::from_slice(&hit.source).unwrap_or_default();
    if document["fraud"]["score"].as_f64().is_none() {
        return Err(ApiError::bad_request(
            "not_scored",
            format!("event {id:?} was not scored for fraud; only scored events are reviewed"),
        ));
    }
    let review = Review {
        status: request.status,
        note,
        reviewed_by: Reviewer {
            id: claims.sub,
            username: claims.name,
        },
        reviewed_at: format_rfc3339_ms(sluice_event::now_ms()),
    };
    let stored = serde_json::to_value(&review).map_err(|e| ApiError::internal(e.to_string()))?;
    let review_json = &stored;
    let meta = state.accounts.meta();
    let replaced = meta
        .replace(&FRAUD_REVIEWS, &id, review_json, &[])
        .await
        .map_err(meta_error)?;
    if !replaced {
        match meta.insert(&FRAUD_REVIEWS, &id, review_json).await {
            Ok(()) => {}
            // Reviewed by someone else at the same instant: theirs stands, ours replaces it.
            Err(MetaError::Conflict { .. }) => {
                meta.replace(&FRAUD_REVIEWS, &id, review_json, &[])
                    .await
                    .map_err(meta_error)?;
            }
            Err(e) => return Err(meta_error(e)),
        }
    }
    Ok(Json(ReviewAnswer { id, review }))
}

/// A transaction to score: as producers send one, `log_type` and `transaction_id` optional.
pub struct TransactionToScore;

impl PartialSchema for TransactionToScore {
    fn schema() -> RefOr<Schema> {
        let defaulted = sluice_fraud::SCORING_DEFAULTS.map(|(field, _)| field);
        record_schema(LogType::Transaction, &defaulted).into()
    }
}

impl ToSchema for TransactionToScore {}

/// `POST /api/fraud/detect`: scores a transaction (JSON, as producers send it) with the engine
/// and the state the processor uses, without remembering it.
#[utoipa::path(
    post,
    path = "/api/fraud/detect",
    tag = "fraud",
    summary = "Score a transaction as the processor would, without keeping it",
    description = "The record is validated as ingest validates it (`log_type` may be left out) \
                   and scored with the engine and the users' and IPs' recent history the \
                   processor uses.",
    request_body = TransactionToScore,
    responses(
        (status = 200, description = "The score, the indicators that fired and where the history came from", body = Detection),
        (status = 400, description = "The record is not valid, or not a transaction; the code is the first problem's", body = sluice_http::ErrorBody),
        Unavailable,
    )
)]
pub async fn detect(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<Detection>, ApiError> {
    match state.fraud.detect(&body).await {
        Ok(detection) => Ok(Json(detection)),
        Err(DetectError::Invalid(issues)) => {
            let code = issues.first().map_or("invalid_value", |i| i.code.as_str());
            let message = issues
                .iter()
                .map(|issue| match issue.field.as_str() {
                    "" => issue.reason.clone(),
                    field => format!("{field}: {}", issue.reason),
                })
                .collect::<Vec<_>>()
                .join("; ");
            Err(ApiError::bad_request(code, message))
        }
        Err(DetectError::NotATransaction(reason)) => {
            Err(ApiError::bad_request("not_a_transaction", reason))
        }
        Err(DetectError::Store(e)) => Err(store_error(e)),
        Err(DetectError::Failed(reason)) => Err(ApiError::internal(reason)),
    }
}
