//! `GET /api/dead-letters`: what the pipeline could not index, newest first, with the reason and
//! the record as it was received.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_event::format_rfc3339_ms;
use sluice_http::{ApiError, QueryParams};
use sluice_queue::DeadLetter;

use crate::ApiState;
use crate::search::size;

#[derive(Debug, Deserialize)]
pub struct Params {
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    total: u64,
    dead_letters: Vec<Letter>,
}

#[derive(Debug, Serialize)]
struct Letter {
    id: Option<String>,
    failed_at: String,
    received_at: String,
    source: &'static str,
    stage: String,
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

pub async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Params>,
) -> Result<Json<Answer>, ApiError> {
    let limit = size(params.limit, 50, 1_000)?;
    let page = state.dead_letters.newest(limit).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            e.to_string(),
        )
    })?;
    Ok(Json(Answer {
        total: page.total,
        dead_letters: page.letters.into_iter().map(Letter::from).collect(),
    }))
}
