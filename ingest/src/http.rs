//! `POST /api/logs/ingest`: one JSON object, a JSON array, or NDJSON.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_event::Source;
use sluice_http::ApiError;

use crate::IngestState;
use crate::accept::{Accepted, RecordBatch, Report, accept, check_room};
use crate::body::{BodyError, body_format, read_split};
use crate::split::BodySplitter;

pub async fn ingest(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source = Source::Http;
    let format = body_format(&headers, source)?;
    check_room(&state, source)?;
    let mut splitter = BodySplitter::new(format, state.config.limits.max_record_bytes);
    let mut batch = RecordBatch::default();
    let _admitted = read_split(
        body,
        state.config.max_body_bytes,
        &state.admission,
        source,
        &mut splitter,
        &mut batch,
    )
    .await
    .map_err(|e| match e {
        BodyError::Refused(e) => e,
        BodyError::Format(reason) => ApiError::bad_request(
            "malformed_json",
            format!("body is not a valid JSON array: {reason}"),
        ),
    })?;
    if batch.records.is_empty() && batch.issues.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body holds no records: send a JSON object, an array of objects, or NDJSON",
        ));
    }
    let outcome = accept(&state, batch, source, Report::Summary).await?;
    Ok(answer(outcome))
}

/// 202 with the counts when anything was accepted; 400 with the same details when nothing was.
pub fn answer(outcome: Accepted) -> Response {
    if outcome.accepted == 0 {
        let body = json!({
            "error": {
                "code": "no_valid_records",
                "message": format!("none of the {} records is valid; see errors", outcome.rejected),
            },
            "accepted": 0,
            "rejected": outcome.rejected,
            "errors": outcome.errors,
        });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    (StatusCode::ACCEPTED, Json(outcome)).into_response()
}
