//! `POST /api/logs/upload`: a file in the multipart field `file`, as a JSON array, NDJSON or CSV,
//! up to `ingest.max_upload_bytes`. The file is read as a stream and appended to the queue in
//! chunks, so memory stays flat whatever the file size; the answer comes once every chunk is
//! durable.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sluice_auth::Principal;
use sluice_event::Source;
use sluice_http::responses::{InsufficientStorage, Unavailable, UnsupportedMediaType};
use sluice_http::{ApiError, ErrorObject, QueryParams};
use tokio_util::io::StreamReader;
use utoipa::{IntoParams, ToSchema};

use crate::IngestState;
use crate::accept::{
    Accepted, FailedWithOutcome, RecordBatch, Report, accept, check_room, wait_for_room,
};
use crate::body::{refuse, too_large_error};
use crate::csv::{CsvError, CsvRecords};
use crate::quota::Producer;
use crate::split::{ArraySplitter, NdjsonSplitter, Splitter};

/// How long an upload may wait for room in the queue before it is answered 503.
const UPLOAD_STALL_LIMIT: Duration = Duration::from_secs(60);

/// Bytes of records an upload appends at a time (or `ingest.upload_chunk_records`, whichever
/// comes first).
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Room for the multipart framing around the file when checking `Content-Length` up front.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Json,
    Ndjson,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Overrides detection from the file name, the part's type and the first byte.
    #[param(inline)]
    format: Option<FileFormat>,
}

#[derive(Debug, Serialize, ToSchema)]
struct UploadAnswer {
    #[serde(flatten)]
    outcome: Accepted,
    /// Lines of the file (quoted CSV newlines included).
    lines: usize,
    format: FileFormat,
    /// On a 400 only: no record of the file is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
}

/// The form `POST /api/logs/upload` reads. The handler streams the part and never holds it, so
/// this type only describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file: a JSON array, NDJSON or CSV with a header row.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[utoipa::path(
    post,
    path = "/api/logs/upload",
    tag = "ingest",
    summary = "Upload a file of events: a JSON array, NDJSON or CSV",
    description = "The file is streamed and appended to the queue in chunks, so it may be as \
                   large as `ingest.max_upload_bytes` (100 MB by default); the answer comes once \
                   every chunk is durable. The format is taken from `format`, else the file name, \
                   the part's type and its first byte. A producer with a quota (`[ingest.quota]`) \
                   is slowed to it, chunk by chunk, rather than refused.",
    params(UploadParams),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "The valid records are durable in the queue", body = UploadAnswer),
        (status = 400, description = "No `file` field, an empty or malformed file, or no valid record; what was accepted before a failure is said", body = FailedWithOutcome),
        (status = 413, description = "The file is over `ingest.max_upload_bytes`; the records read before the limit were accepted", body = FailedWithOutcome),
        UnsupportedMediaType,
        Unavailable,
        InsufficientStorage,
    )
)]
pub async fn upload(
    State(state): State<IngestState>,
    principal: Option<Extension<Principal>>,
    QueryParams(params): QueryParams<UploadParams>,
    request: Request,
) -> Result<Response, ApiError> {
    let producer = Producer::of(principal.as_deref());
    let source = Source::Upload;
    let limit = state.config.max_upload_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit + MULTIPART_OVERHEAD) {
        return Err(refuse(source, "too_large", too_large_error(limit)));
    }
    // Unlike a batch, a file can be 100 MB: wait for room before reading it, and past the limit
    // refuse without storing it (`discard_unread_body` reads the rest so the client sees why).
    wait_for_room(state.queue.as_ref(), UPLOAD_STALL_LIMIT).await;
    check_room(&state, source)?;
    // A file streams through one chunk at a time: that, and the record being split, is what
    // it holds in memory, whatever its size.
    let mut admitted = state.admission.empty();
    let share = CHUNK_BYTES + state.config.limits.max_record_bytes;
    state
        .admission
        .grow(&mut admitted, share, state.admission.deadline(), source)
        .await?;
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| {
            refuse(
                source,
                "unsupported_media_type",
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("send the file as multipart/form-data in a field named `file` ({e})"),
                ),
            )
        })?;
    loop {
        let field = multipart.next_field().await.map_err(|e| {
            ApiError::bad_request(
                "malformed_multipart",
                format!("cannot read the upload: {e}"),
            )
        })?;
        let Some(field) = field else {
            return Err(ApiError::bad_request(
                "missing_file",
                "no multipart field named `file` in the upload",
            ));
        };
        if field.name() != Some("file") {
            continue;
        }
        let hint = params.format.or_else(|| {
            format_from_name(field.file_name()).or_else(|| format_from_type(field.content_type()))
        });
        let lines = Arc::new(LineCount::default());
        let stream = limited(field, limit, Arc::clone(&lines));
        return read_file(&state, producer, stream, hint, limit, &lines).await;
    }
}

/// Lines of the file, counted as its bytes pass (quoted CSV newlines included).
#[derive(Debug, Default)]
struct LineCount {
    newlines: AtomicUsize,
    /// Whether the bytes so far end in the middle of a line.
    open_line: AtomicBool,
}

impl LineCount {
    fn lines(&self) -> usize {
        self.newlines.load(Ordering::Relaxed) + usize::from(self.open_line.load(Ordering::Relaxed))
    }
}

/// The part's bytes, failing with an I/O error once more than `limit` bytes came.
fn limited<S, E>(
    stream: S,
    limit: usize,
    lines: Arc<LineCount>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut total = 0usize;
    stream.map(move |chunk| {
        let chunk = chunk.map_err(io::Error::other)?;
        total += chunk.len();
        let newlines = chunk.iter().filter(|b| **b == b'\n').count();
        lines.newlines.fetch_add(newlines, Ordering::Relaxed);
        if let Some(last) = chunk.last() {
            lines.open_line.store(*last != b'\n', Ordering::Relaxed);
        }
        if total > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "upload too large",
            ));
        }
        Ok(chunk)
    })
}

fn format_from_name(name: Option<&str>) -> Option<FileFormat> {
    let extension = name?.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(FileFormat::Csv),
        "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
        "json" => Some(FileFormat::Json),
        _ => None,
    }
}

fn format_from_type(content_type: Option<&str>) -> Option<FileFormat> {
    match content_type?.split(';').next()?.trim() {
        "text/csv" => Some(FileFormat::Csv),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Some(FileFormat::Ndjson)
        }
        "application/json" => Some(FileFormat::Json),
        _ => None,
    }
}

/// From the first meaningful byte: `[` an array, `{` NDJSON, anything else CSV.
fn sniff(first: &[u8]) -> FileFormat {
    match first
        .iter()
        .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
    {
        Some(b'[') => FileFormat::Json,
        Some(b'{') => FileFormat::Ndjson,
        _ => FileFormat::Csv,
    }
}

/// Appends full chunks as the file streams in, so memory holds one chunk at a time.
struct ChunkedAccept<'a> {
    state: &'a IngestState,
    producer: Producer,
    batch: RecordBatch,
    outcome: Accepted,
    /// Records of `batch` counted into `batch_bytes` so far.
    counted: usize,
    batch_bytes: usize,
}

impl ChunkedAccept<'_> {
    fn new(state: &IngestState, producer: Producer) -> ChunkedAccept<'_> {
        ChunkedAccept {
            state,
            producer,
            batch: RecordBatch::default(),
            outcome: Accepted::default(),
            counted: 0,
            batch_bytes: 0,
        }
    }

    async fn maybe_flush(&mut self) -> Result<(), ApiError> {
        let new = &self.batch.records[self.counted..];
        self.batch_bytes += new.iter().map(|r| r.bytes.len()).sum::<usize>();
        self.counted = self.batch.records.len();
        if self.batch.records.len() + self.batch.issues.len()
            >= self.state.config.upload_chunk_records
            || self.batch_bytes >= CHUNK_BYTES
        {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ApiError> {
        let batch = std::mem::take(&mut self.batch);
        (self.counted, self.batch_bytes) = (0, 0);
        if batch.records.is_empty() && batch.issues.is_empty() {
            return Ok(());
        }
        // A file is worth finishing: when the queue is at its high-water mark, stop reading the
        // upload (TCP pushes back on the client) until the processor has caught up.
        wait_for_room(self.state.queue.as_ref(), UPLOAD_STALL_LIMIT).await;
        let (records, bytes) = batch.offered();
        self.state.quotas.wait(&self.producer, records, bytes).await;
        let outcome = accept(self.state, batch, Source::Upload, Report::Summary)
            .await
            .map_err(|e| {
                let accepted = self.outcome.accepted;
                ApiError {
                    message: format!(
                        "{} ({accepted} records of this file were accepted before)",
                        e.message
                    ),
                    ..e
                }
            })?;
        self.outcome.merge(outcome);
        Ok(())
    }
}

async fn read_file<S>(
    state: &IngestState,
    producer: Producer,
    mut stream: S,
    hint: Option<FileFormat>,
    limit: usize,
    lines: &LineCount,
) -> Result<Response, ApiError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    let first = match stream.next().await {
        Some(chunk) => chunk.map_err(|e| stream_error(e, 0, limit))?,
        None => Bytes::new(),
    };
    let format = hint.unwrap_or_else(|| sniff(&first));
    let mut chunks = ChunkedAccept::new(state, producer);
    let max_record = state.config.limits.max_record_bytes;
    let rest = futures::stream::iter(std::iter::once(Ok(first))).chain(stream);
    let read = match format {
        FileFormat::Ndjson => read_split(rest, &mut chunks, NdjsonSplitter::new(max_record)).await,
        FileFormat::Json => read_split(rest, &mut chunks, ArraySplitter::new(max_record)).await,
        FileFormat::Csv => read_csv(rest, &mut chunks).await,
    };
    match read {
        Ok(()) => {}
        Err(ReadError::Api(e)) => return Err(e),
        Err(ReadError::Io(e)) => {
            // What was complete before the failure is already durable; say so.
            let e = stream_error(e, chunks.outcome.accepted, limit);
            return Ok(partial_failure(e, &chunks.outcome));
        }
        Err(ReadError::Format(reason)) => {
            chunks.flush().await?;
            let e = ApiError::bad_request(
                "malformed_file",
                format!("{format:?} file is malformed: {reason}"),
            );
            return Ok(partial_failure(e, &chunks.outcome));
        }
    };
    chunks.flush().await?;
    if chunks.outcome.accepted + chunks.outcome.rejected == 0 {
        return Err(ApiError::bad_request(
            "empty_file",
            "the uploaded file holds no records",
        ));
    }
    let status = if chunks.outcome.accepted == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    let answer = UploadAnswer {
        outcome: chunks.outcome,
        lines: lines.lines(),
        format,
        error: None,
    };
    let answer = if status == StatusCode::BAD_REQUEST {
        let error = ApiError::bad_request(
            "no_valid_records",
            "none of the records in the file is valid; see errors",
        );
        UploadAnswer {
            error: Some(error.body().error),
            ..answer
        }
    } else {
        answer
    };
    Ok((status, Json(answer)).into_response())
}

enum ReadError {
    Io(io::Error),
    Api(ApiError),
    Format(String),
}

impl From<ApiError> for ReadError {
    fn from(e: ApiError) -> Self {
        ReadError::Api(e)
    }
}

fn stream_error(e: io::Error, accepted: usize, limit: usize) -> ApiError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        refuse(
            Source::Upload,
            "too_large",
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the file is larger than {limit} bytes; the {accepted} records read before the \
                     limit were accepted"
                ),
            ),
        )
    } else {
        ApiError::bad_request(
            "upload_interrupted",
            format!("reading the upload failed: {e}"),
        )
    }
}

/// An error answered with how far the file got.
fn partial_failure(error: ApiError, outcome: &Accepted) -> Response {
    FailedWithOutcome::new(&error, outcome).into_response(error.status)
}

/// Streams NDJSON or a JSON array through its splitter, appending as chunks fill.
async fn read_split<S>(
    mut stream: S,
    chunks: &mut ChunkedAccept<'_>,
    mut splitter: impl Splitter,
) -> Result<(), ReadError>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Io)?;
        splitter
            .feed_chunk(&chunk, &mut chunks.batch)
            .map_err(ReadError::Format)?;
        chunks.maybe_flush().await?;
    }
    splitter
        .finish_input(&mut chunks.batch)
        .map_err(ReadError::Format)
}

async fn read_csv<S>(stream: S, chunks: &mut ChunkedAccept<'_>) -> Result<(), ReadError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    let Some(mut rows) = CsvRecords::open(StreamReader::new(stream))
        .await
        .map_err(csv_error)?
    else {
        return Ok(());
    };
    while let Some(row) = rows.next().await.map_err(csv_error)? {
        match row {
            Ok(record) => chunks.batch.records.push(record),
            Err(issue) => chunks.batch.issues.push(issue),
        }
        chunks.maybe_flush().await?;
    }
    Ok(())
}

fn csv_error(e: CsvError) -> ReadError {
    match e {
        CsvError::Io(io) => ReadError::Io(io),
        CsvError::Format(reason) => ReadError::Format(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_type_and_first_byte() {
        assert_eq!(format_from_name(Some("orders.CSV")), Some(FileFormat::Csv));
        assert_eq!(format_from_name(Some("x.jsonl")), Some(FileFormat::Ndjson));
        assert_eq!(format_from_name(Some("noext")), None);
        assert_eq!(
            format_from_type(Some("text/csv; charset=utf-8")),
            Some(FileFormat::Csv)
        );
        assert_eq!(sniff(b"\xEF\xBB\xBF [{}]"), FileFormat::Json);
        assert_eq!(sniff(b"{\"a\":1}\n"), FileFormat::Ndjson);
        assert_eq!(sniff(b"log_type,amount\n"), FileFormat::Csv);
    }
}
