//! Validating a batch of raw records and making the valid ones durable: the step every ingest
//! format ends in, so all of them answer alike.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use sluice_event::validate::{
    Buffers, FieldIssue, Limits, RecordError, parse_record_with, validate,
};
use sluice_event::{QueuedRecord, Source, document_id};
use sluice_http::{ApiError, ErrorBody};
use sluice_queue::{Queue, QueueError};
use sluice_telemetry::emit;
use sluice_telemetry::events::{
    EventRejected, EventsAccepted, EventsReceived, QueueBacklog, RequestRefused,
};
use utoipa::ToSchema;

use crate::IngestState;

/// Errors answered per request, at most.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Raw records of one request (or one chunk of an upload), numbered as the producer sees them.
#[derive(Debug, Default)]
pub struct RecordBatch {
    pub records: Vec<RawRecord>,
    /// Problems found while splitting the body (a line too long, a broken CSV row).
    pub issues: Vec<RecordError>,
}

#[derive(Debug)]
pub struct RawRecord {
    /// 1-based: array position, NDJSON line or CSV data row.
    pub number: usize,
    pub bytes: Vec<u8>,
    /// Document id chosen by the producer outside the record (the `_id` of a bulk action).
    pub id: Option<String>,
}

impl RecordBatch {
    /// What the batch offers, as quotas charge it: records (those the splitter already
    /// refused included) and their bytes.
    pub fn offered(&self) -> (usize, usize) {
        let bytes = self.records.iter().map(|r| r.bytes.len()).sum();
        (self.records.len() + self.issues.len(), bytes)
    }
}

/// The outcome of a batch, in the shape answered to producers.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Accepted {
    /// Records durable in the queue.
    pub accepted: usize,
    /// Records refused; each is in `errors` (up to the first 100).
    pub rejected: usize,
    pub errors: Vec<RecordError>,
    /// Document ids of accepted records, by record number (used by `_bulk` answers).
    #[serde(skip)]
    pub ids: Vec<(usize, String)>,
}

/// An error answer that also says how far the request got: nothing was valid, or an upload
/// failed after some of its records were accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedWithOutcome {
    #[serde(flatten)]
    error: ErrorBody,
    /// Present when records were read: what the request got to before it failed.
    #[schema(required = false)]
    accepted: usize,
    #[schema(required = false)]
    rejected: usize,
    #[schema(required = false)]
    errors: Vec<RecordError>,
}

impl FailedWithOutcome {
    pub fn new(error: &ApiError, outcome: &Accepted) -> FailedWithOutcome {
        FailedWithOutcome {
            error: error.body(),
            accepted: outcome.accepted,
            rejected: outcome.rejected,
            errors: outcome.errors.clone(),
        }
    }

    pub fn into_response(self, status: StatusCode) -> axum::response::Response {
        use axum::response::IntoResponse;
        (status, axum::Json(self)).into_response()
    }
}

impl Accepted {
    pub fn merge(&mut self, other: Accepted) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
        self.ids.extend(other.ids);
    }
}

/// How much of the outcome a caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Counts and the first [`MAX_REPORTED_ERRORS`] errors.
    Summary,
    /// Every error and the id of every accepted record (`_bulk` answers item by item).
    PerRecord,
}

/// Validates records on a blocking thread (parsing is CPU work), appends the valid ones to the
/// queue and returns once they are durable. Nothing is appended while a guarded disk is below
/// its free-space floor.
pub async fn accept(
    state: &IngestState,
    batch: RecordBatch,
    source: Source,
    report: Report,
) -> Result<Accepted, ApiError> {
    let received_at_ms = sluice_event::now_ms();
    let limits = state.config.limits;
    let (queued, outcome) =
        tokio::task::spawn_blocking(move || check(batch, source, received_at_ms, &limits, report))
            .await
            .map_err(|e| ApiError::internal(format!("validation thread failed: {e}")))?;
    let queue = state.queue.as_ref();
    if !queued.is_empty() {
        let count = queued.len();
        let bytes: usize = queued.iter().map(|r| r.payload.len()).sum();
        state
            .disk
            .check(bytes as u64)
            .map_err(|low| disk_full(source, &low.path, low.free_bytes, low.to_string()))?;
        let started = Instant::now();
        queue
            .append(queued)
            .await
            .map_err(|e| queue_error(e, source))?;
        emit(EventsAccepted {
            source,
            count,
            append: started.elapsed(),
        });
        let backlog = queue.backlog();
        emit(QueueBacklog {
            records: backlog.records,
            bytes: backlog.bytes,
        });
    }
    Ok(outcome)
}

fn check(
    batch: RecordBatch,
    source: Source,
    received_at_ms: i64,
    limits: &Limits,
    report: Report,
) -> (Vec<QueuedRecord>, Accepted) {
    let mut outcome = Accepted::default();
    let max_errors = match report {
        Report::Summary => MAX_REPORTED_ERRORS,
        Report::PerRecord => usize::MAX,
    };
    let mut queued = Vec::with_capacity(batch.records.len());
    emit(EventsReceived {
        source,
        count: batch.records.len() + batch.issues.len(),
    });
    for issue in batch.issues {
        reject(&mut outcome, source, issue, max_errors);
    }
    let mut scratch = Vec::new();
    let mut buffers = Buffers::default();
    for raw in batch.records {
        let checked = parse_record_with(&raw.bytes, &mut scratch, limits, &mut buffers)
            .map_err(|issue| vec![issue])
            .and_then(|parsed| {
                let record = parsed.tape.as_value();
                let event = validate(record, received_at_ms, limits)?;
                let id = raw
                    .id
                    .clone()
                    .unwrap_or_else(|| document_id(record, received_at_ms));
                Ok((id, event.user_id.map(|user| user.into_owned())))
            });
        match checked {
            Ok((id, partition_key)) => {
                if report == Report::PerRecord {
                    outcome.ids.push((raw.number, id.clone()));
                }
                outcome.accepted += 1;
                queued.push(QueuedRecord {
                    id: Some(id),
                    received_at_ms,
                    source,
                    partition_key,
                    payload: raw.bytes,
                });
            }
            Err(issues) => {
                let mut issues = issues.into_iter().map(|i: FieldIssue| i.at(raw.number));
                // The record counts once; every issue of it is reported.
                if let Some(first) = issues.next() {
                    reject(&mut outcome, source, first, max_errors);
                }
                for issue in issues {
                    if outcome.errors.len() < max_errors {
                        outcome.errors.push(issue);
                    }
                }
            }
        }
    }
    // Problems found while splitting come first; report in the producer's order.
    outcome.errors.sort_by_key(|e| e.record);
    (queued, outcome)
}

fn reject(outcome: &mut Accepted, source: Source, error: RecordError, max_errors: usize) {
    emit(EventRejected {
        source,
        code: error.code,
    });
    outcome.rejected += 1;
    if outcome.errors.len() < max_errors {
        outcome.errors.push(error);
    }
}

/// A queue failure as answered: full → 503 with `Retry-After` (nothing was written, send again
/// later); a full disk → 507 with `Retry-After`; anything else → 503 too, since the records
/// were not made durable.
pub fn queue_error(error: QueueError, source: Source) -> ApiError {
    let message = error.to_string();
    if let QueueError::DiskFull {
        path, free_bytes, ..
    } = &error
    {
        return disk_full(source, path, *free_bytes, message);
    }
    emit(RequestRefused {
        source,
        reason: match error {
            QueueError::Full { .. } => "queue_full",
            _ => "queue_unavailable",
        },
        detail: &message,
    });
    match error {
        QueueError::Full { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            format!("{message}; nothing from this request was accepted, retry later"),
        )
        .retry_after(5),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            format!("records could not be made durable ({message}); nothing was accepted"),
        )
        .retry_after(5),
    }
}

/// How long a producer is asked to wait before sending again to a full disk: space comes back
/// as the processor drains the queue, which takes seconds, not milliseconds.
const DISK_FULL_RETRY_SECS: u64 = 10;

/// 507 Insufficient Storage: nothing of the request was accepted; the path and its free bytes
/// say which disk, so an operator knows where to make room.
pub fn disk_full(source: Source, path: &str, free_bytes: u64, reason: String) -> ApiError {
    emit(RequestRefused {
        source,
        reason: "disk_full",
        detail: &reason,
    });
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        format!("{reason}; nothing from this request was accepted, retry later"),
    )
    .detail("path", path)
    .detail("free_bytes", free_bytes)
    .retry_after(DISK_FULL_RETRY_SECS)
}

/// Refuses work up front, before its body is read, when the queue is past its high-water mark
/// or a guarded disk is below its free-space floor.
pub fn check_room(state: &IngestState, source: Source) -> Result<(), ApiError> {
    state
        .disk
        .check(0)
        .map_err(|low| disk_full(source, &low.path, low.free_bytes, low.to_string()))?;
    let backlog = state.queue.backlog();
    if backlog.is_full() {
        return Err(queue_error(
            QueueError::Full {
                backlog_bytes: backlog.bytes,
                limit_bytes: backlog.limit_bytes,
            },
            source,
        ));
    }
    Ok(())
}

/// Waits until the queue is below its high-water mark, or `limit` has passed (the append that
/// follows then reports the full queue).
pub async fn wait_for_room(queue: &dyn Queue, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while queue.backlog().is_full() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
