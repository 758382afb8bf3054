//! `/api/fraud/*`: what the fraud engine (inline in the processor) and upstream detectors
//! flagged: the flagged events themselves, and counts by indicator, country and time.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_common::http::{ApiError, QueryParams};
use sluice_common::store::{Aggregation, Field, Filter, SearchQuery, SortKey};

use crate::ApiState;
use crate::analytics::{AnalyticsParams, aggregate, money, terms_json, timeline_json};
use crate::search::{SearchAnswer, offset_within_window, run, size};
use crate::time_param::{TimeParam, window};

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
    Ok(Json(json!({
        "window": window.describe(),
        "scored": scored.stats("score").count,
        "detected": flagged_score.count,
        "detection_rate": crate::analytics::ratio(flagged_score.count, scored.stats("score").count),
        "average_detected_score": flagged_score.avg.map(money),
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

/// `GET /api/fraud/suspicious-activities`: flagged events, newest first, a page at a time.
pub async fn suspicious_activities(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<SuspiciousParams>,
) -> Result<Json<SearchAnswer>, ApiError> {
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
    run(&state, &query, false).await
}
