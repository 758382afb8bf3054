//! Reading a request body within the size limit, and telling its format from `Content-Type`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use sluice_common::event::Source;
use sluice_common::http::ApiError;
use sluice_common::telemetry::emit;
use sluice_common::telemetry::events::RequestRefused;

/// Reads the whole body, refusing (413, JSON body) past `limit` bytes without buffering more.
pub async fn read_limited(body: Body, limit: usize, source: Source) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            refuse(source, "too_large", too_large_error(limit))
        } else {
            ApiError::bad_request(
                "unreadable_body",
                format!("could not read the request body: {e}"),
            )
        }
    })
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
