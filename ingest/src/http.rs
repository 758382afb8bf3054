//! `POST /api/logs/ingest`: one JSON object, a JSON array, or NDJSON.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_common::event::Source;
use sluice_common::http::ApiError;

use crate::IngestState;
use crate::accept::{Accepted, RawRecord, RecordBatch, Report, accept, check_room};
use crate::body::{BodyFormat, body_format, read_admitted};
use crate::split::{ArraySplitter, NdjsonSplitter};

pub async fn ingest(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source = Source::Http;
    let format = body_format(&headers, source)?;
    check_room(&state, source)?;
    let (bytes, _admitted) =
        read_admitted(body, state.config.max_body_bytes, &state.admission, source).await?;
    let limits = state.config.limits;
    let batch = split_body(&bytes, format, limits.max_record_bytes)?;
    if batch.records.is_empty() && batch.issues.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body holds no records: send a JSON object, an array of objects, or NDJSON",
        ));
    }
    drop(bytes);
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

fn split_body(
    bytes: &[u8],
    format: BodyFormat,
    max_record_bytes: usize,
) -> Result<RecordBatch, ApiError> {
    let mut batch = RecordBatch::default();
    let first = bytes
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF));
    match (format, first) {
        (_, None) => {}
        (BodyFormat::Json, Some(b'[')) => {
            let mut splitter = ArraySplitter::new(max_record_bytes);
            splitter
                .feed(bytes, &mut batch)
                .and_then(|()| splitter.finish(&mut batch))
                .map_err(|e| {
                    ApiError::bad_request(
                        "malformed_json",
                        format!("body is not a valid JSON array: {e}"),
                    )
                })?;
        }
        (BodyFormat::Json, Some(_)) => {
            let start = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
                3
            } else {
                0
            };
            batch.records.push(RawRecord {
                number: 1,
                bytes: bytes[start..].to_vec(),
                id: None,
            });
        }
        (BodyFormat::Ndjson, Some(_)) => {
            let mut splitter = NdjsonSplitter::new(max_record_bytes);
            splitter.feed(bytes, &mut batch);
            splitter.finish(&mut batch);
        }
    }
    Ok(batch)
}
