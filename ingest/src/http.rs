//! `POST /api/logs/ingest`: one JSON object, a JSON array, or NDJSON.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_auth::Principal;
use sluice_event::{LogRecord, Source};
use sluice_http::ApiError;
use sluice_http::responses::{
    InsufficientStorage, PayloadTooLarge, TooManyRequests, Unavailable, UnsupportedMediaType,
};
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::IngestState;
use crate::accept::{Accepted, FailedWithOutcome, RecordBatch, Report, accept, check_room};
use crate::body::{BodyError, body_format, read_split};
use crate::quota::Producer;
use crate::split::BodySplitter;

#[utoipa::path(
    post,
    path = "/api/logs/ingest",
    tag = "ingest",
    summary = "Send events: one JSON object, a JSON array of them, or NDJSON",
    description = "Answers 202 once every valid record is durable in the queue; each invalid one \
                   is named in `errors` by record number, field, code and reason, and the valid \
                   ones beside it are kept. The body may be compressed (`Content-Encoding`: gzip, \
                   deflate or zstd); every limit applies to the decompressed bytes.",
    request_body(
        description = "Records; NDJSON is one record per line.",
        content(
            (IngestBody = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 202, description = "The valid records are durable in the queue", body = Accepted),
        (status = 400, description = "No record was valid (each is named in `errors`), or the body is empty or not JSON", body = FailedWithOutcome),
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        Unavailable,
        InsufficientStorage,
    )
)]
pub async fn ingest(
    State(state): State<IngestState>,
    principal: Option<Extension<Principal>>,
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
    let (records, bytes) = batch.offered();
    let producer = Producer::of(principal.as_deref());
    state.quotas.admit(&producer, records, bytes)?;
    let outcome = accept(&state, batch, source, Report::Summary).await?;
    Ok(answer(outcome))
}

/// 202 with the counts when anything was accepted; 400 with the same details when nothing was.
pub fn answer(outcome: Accepted) -> Response {
    if outcome.accepted == 0 {
        let error = ApiError::bad_request(
            "no_valid_records",
            format!(
                "none of the {} records is valid; see errors",
                outcome.rejected
            ),
        );
        return FailedWithOutcome::new(&error, &outcome).into_response(error.status);
    }
    (StatusCode::ACCEPTED, Json(outcome)).into_response()
}

/// The JSON body of `POST /api/logs/ingest`: one record or an array of them. The handler splits
/// the body as it streams and never holds it as a value, so this type only describes it.
pub struct IngestBody;

impl PartialSchema for IngestBody {
    fn schema() -> RefOr<Schema> {
        let record = || Ref::from_schema_name(LogRecord::name());
        OneOfBuilder::new()
            .item(record())
            .item(ArrayBuilder::new().items(record()).min_items(Some(1)))
            .into()
    }
}

impl ToSchema for IngestBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((LogRecord::name().into_owned(), LogRecord::schema()));
    }
}
