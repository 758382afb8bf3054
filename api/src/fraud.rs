//! `/api/fraud/*`: what the fraud engine (inline in the processor) and upstream detectors
//! flagged: the flagged events themselves with their review, counts by indicator, country and
//! time, and the review of an alert (new, confirmed, false_positive), kept in the meta store by
//! event id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_auth::accounts::AccountError;
use sluice_fraud::DetectError;
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_meta::{Collection, MetaError};
use sluice_store::{Aggregation, Field, Filter, SearchQuery, SortKey};

use crate::ApiState;
use crate::analytics::{AnalyticsParams, aggregate, money, terms_json, timeline_json};
use crate::auth::CurrentUser;
use crate::search::{hit_document, offset_within_window, size, store_error};
use crate::time_param::{TimeParam, window};
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

/// `GET /api/fraud/stats`: events scored and flagged, flagged ones by indicator, by country and
/// over time, and their average score.
pub async fn stats(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<AnalyticsParams>,
) -> Result<Json<Value>, ApiError> {
    params.refuse(&["threshold_ms"])?;
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
    Ok(Json(json!({
        "window": window.describe(),
        "scored": scored.stats("score").count,
        "detected": flagged_score.count,
        "detection_rate": crate::analytics::ratio(flagged_score.count, scored.stats("score").count),
        "average_detected_score": flagged_score.avg.map(money),
        "reviews": { "confirmed": confirmed, "false_positive": false_positives },
        "by_indicator": terms_json(flagged.terms("indicators"), |_| json!({})),
        "by_country": terms_json(flagged.terms("countries"), |_| json!({})),
        "timeline": timeline_json(flagged.timeline("timeline"), |_| json!({})),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspiciousParams {
    from: Option<TimeParam>,
    to: Option<TimeParam>,
    range: Option<String>,
    /// Only events scored at least this; without it, the events flagged as detected.
    min_score: Option<f64>,
    /// Only events with this indicator.
    indicator: Option<String>,
    size: Option<i64>,
    offset: Option<i64>,
    /// `next_search_after` of the previous page, as `value,id`.
    search_after: Option<String>,
}

/// `GET /api/fraud/suspicious-activities`: flagged events, newest first, a page at a time, each
/// with its review (`_review`; status `new` until someone reviews it).
pub async fn suspicious_activities(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SuspiciousParams>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "total": results.total,
        "hits": activities,
        "next_search_after": next_search_after,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    status: String,
    note: Option<String>,
}

/// `PUT /api/fraud/alerts/{id}/review`: marks a flagged event confirmed, a false positive, or
/// new again, with an optional note; who and when are recorded.
pub async fn review(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ReviewRequest>,
) -> Result<Json<Value>, ApiError> {
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
    let review = json!({
        "status": request.status,
        "note": note,
        "reviewed_by": { "id": claims.sub, "username": claims.name },
        "reviewed_at": format_rfc3339_ms(sluice_event::now_ms()),
    });
    let meta = state.accounts.meta();
    let replaced = meta
        .replace(&FRAUD_REVIEWS, &id, &review, &[])
        .await
        .map_err(meta_error)?;
    if !replaced {
        match meta.insert(&FRAUD_REVIEWS, &id, &review).await {
            Ok(()) => {}
            // Reviewed by someone else at the same instant: theirs stands, ours replaces it.
            Err(MetaError::Conflict { .. }) => {
                meta.replace(&FRAUD_REVIEWS, &id, &review, &[])
                    .await
                    .map_err(meta_error)?;
            }
            Err(e) => return Err(meta_error(e)),
        }
    }
    Ok(Json(json!({ "id": id, "review": review })))
}

/// `POST /api/fraud/detect`: scores a transaction (JSON, as producers send it) with the engine
/// and the state the processor uses, without remembering it.
pub async fn detect(State(state): State<ApiState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    match state.fraud.detect(&body).await {
        Ok(detection) => serde_json::to_value(detection)
            .map(Json)
            .map_err(|e| ApiError::internal(e.to_string())),
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
