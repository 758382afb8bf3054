//! Reading a request body into records within the size limit, and telling its format from
//! `Content-Type`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use sluice_event::Source;
use sluice_http::ApiError;
use sluice_telemetry::emit;
use sluice_telemetry::events::RequestRefused;

use crate::accept::RecordBatch;
use crate::admission::{Admission, Admitted};
use crate::split::Splitter;

/// Why a body was not read into records.
#[derive(Debug)]
pub enum BodyError {
    /// Turned away before or while reading: too large, unreadable, no room in flight.
    Refused(ApiError),
    /// The splitter could not go on: the body is not in the format it claims.
    Format(String),
}

/// Reads the body within `limit` bytes (413 past it, without buffering more) and feeds each
/// frame to `splitter` as it arrives, so a body is never held whole beside the records split
/// from it: what a request holds is its records, about the size of its body. The request takes
/// its share of the in-flight bytes first: all of it up front when `Content-Length` says how
/// much comes, frame by frame otherwise.
pub async fn read_split(
    body: Body,
    limit: usize,
    admission: &Admission,
    source: Source,
    splitter: &mut impl Splitter,
    out: &mut RecordBatch,
) -> Result<Admitted, BodyError> {
    let deadline = admission.deadline();
    let mut admitted = admission.empty();
    let declared = usize::try_from(body.size_hint().exact().unwrap_or(0)).unwrap_or(usize::MAX);
    if declared > limit {
        return Err(BodyError::Refused(refuse(
            source,
            "too_large",
            too_large_error(limit),
        )));
    }
    admission
        .grow(&mut admitted, declared, deadline, source)
        .await
        .map_err(BodyError::Refused)?;
    let mut received = 0usize;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            BodyError::Refused(ApiError::bad_request(
                "unreadable_body",
                format!("could not read the request body: {e}"),
            ))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if received + data.len() > limit {
            return Err(BodyError::Refused(refuse(
                source,
                "too_large",
                too_large_error(limit),
            )));
        }
        if received + data.len() > declared {
            let more = received + data.len() - declared.max(received);
            admission
                .grow(&mut admitted, more, deadline, source)
                .await
                .map_err(BodyError::Refused)?;
        }
        received += data.len();
        splitter.feed_chunk(&data, out).map_err(BodyError::Format)?;
    }
    splitter.finish_input(out).map_err(BodyError::Format)?;
    Ok(admitted)
}

pub fn too_large_error(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "request body is larger than {limit} bytes; split it into smaller batches \
             (or use /api/logs/upload for files)"
        ),
    )
}

/// Counts a refused request and hands back its error.
pub fn refuse(source: Source, reason: &'static str, error: ApiError) -> ApiError {
    emit(RequestRefused {
        source,
        reason,
        detail: &error.message,
    });
    error
}

/// Body formats of `POST /api/logs/ingest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One object or an array of objects.
    Json,
    /// One object per line.
    Ndjson,
}

/// The format named by `Content-Type`; 415 for anything else, saying what works.
pub fn body_format(headers: &HeaderMap, source: Source) -> Result<BodyFormat, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Ok(BodyFormat::Ndjson),
        _ => Err(refuse(
            source,
            "unsupported_media_type",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type {:?} is not accepted here; send application/json (an object or \
                     an array) or application/x-ndjson, or upload CSV files to /api/logs/upload",
                    content_type
                ),
            ),
        )),
    }
}
