//! `GET /api/dead-letters`: what the pipeline could not index, newest first, with the reason and
//! the record as it was received.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_event::format_rfc3339_ms;
use sluice_http::responses::{BadRequest, Unavailable};
use sluice_http::{ApiError, QueryParams};
use sluice_queue::DeadLetter;
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::search::size;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// Dead letters listed, newest first, up to 1,000 (default 50).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersAnswer {
    /// Dead letters kept.
    total: u64,
    dead_letters: Vec<Letter>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Letter {
    /// The document id the record would have had.
    id: Option<String>,
    /// RFC 3339.
    failed_at: String,
    /// RFC 3339: when ingest took the record.
    received_at: String,
    /// How it came: http, upload, bulk or queue.
    source: &'static str,
    /// Where it failed: `validate`, `index` or `process`.
    stage: String,
    #[schema(value_type = sluice_event::validate::RejectCode)]
    code: &'static str,
    field: Option<String>,
    reason: String,
    /// The original bytes as text (invalid UTF-8 shown as U+FFFD).
    record: String,
}

impl From<DeadLetter> for Letter {
    fn from(letter: DeadLetter) -> Self {
        Letter {
            id: letter.id,
            failed_at: format_rfc3339_ms(letter.failed_at_ms),
            received_at: format_rfc3339_ms(letter.received_at_ms),
            source: letter.source.as_str(),
            stage: letter.stage,
            code: letter.code.as_str(),
            field: letter.field,
            reason: letter.reason,
            record: String::from_utf8_lossy(&letter.payload).into_owned(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/dead-letters",
    tag = "dead letters",
    summary = "What the pipeline could not index, newest first, with the reason and the record",
    params(Params),
    responses((status = 200, body = DeadLettersAnswer), BadRequest, Unavailable)
)]
pub async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Params>,
) -> Result<Json<DeadLettersAnswer>, ApiError> {
    let limit = size(params.limit, 50, 1_000)?;
    let page = state.dead_letters.newest(limit).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            e.to_string(),
        )
    })?;
    Ok(Json(DeadLettersAnswer {
        total: page.total,
        dead_letters: page.letters.into_iter().map(Letter::from).collect(),
    }))
}
