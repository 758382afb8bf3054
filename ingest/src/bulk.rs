//! The Elasticsearch bulk API (`POST /_bulk`, `POST /{index}/_bulk`), so shippers configured for
//! Elasticsearch send to Sluice unchanged. `index` and `create` actions are accepted; the answer
//! follows Elasticsearch's format item by item, with the validation error as the item's reason.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_auth::Principal;
use sluice_event::Source;
use sluice_event::validate::RecordError;
use utoipa::ToSchema;

use crate::IngestState;
use crate::accept::{RawRecord, RecordBatch, Report, accept, check_room};
use crate::body::{BodyError, read_split};
use crate::elasticsearch::product_header;
use crate::quota::Producer;
use crate::split::NdjsonSplitter;

#[utoipa::path(
    method(post, put),
    path = "/_bulk",
    tag = "elasticsearch",
    summary = "The Elasticsearch bulk API, for shippers configured for Elasticsearch",
    description = BULK_DESCRIPTION,
    request_body(content = String, content_type = "application/x-ndjson", description = BULK_BODY),
    responses(
        (status = 200, description = BULK_OK, body = BulkAnswer),
        (status = 400, description = "The request as a whole cannot be read (a malformed action line, no body, no actions)", body = EsErrorBody),
        (status = 413, description = "The body (after decompression) is over `ingest.max_body_bytes`, or holds more than the producer's quota allows at once", body = EsErrorBody),
        (status = 429, description = BULK_REFUSED, body = EsErrorBody),
    )
)]
pub async fn bulk(
    State(state): State<IngestState>,
    principal: Option<Extension<Principal>>,
    body: Body,
) -> Response {
    run(state, Producer::of(principal.as_deref()), None, body).await
}

#[utoipa::path(
    method(post, put),
    path = "/{index}/_bulk",
    tag = "elasticsearch",
    summary = "The Elasticsearch bulk API with a default index",
    description = BULK_DESCRIPTION,
    params(("index" = String, Path, description = "The index of actions that name none (kept as the event's `_index`)")),
    request_body(content = String, content_type = "application/x-ndjson", description = BULK_BODY),
    responses(
        (status = 200, description = BULK_OK, body = BulkAnswer),
        (status = 400, description = "The request as a whole cannot be read (a malformed action line, no body, no actions)", body = EsErrorBody),
        (status = 413, description = "The body (after decompression) is over `ingest.max_body_bytes`", body = EsErrorBody),
        (status = 429, description = BULK_REFUSED, body = EsErrorBody),
    )
)]
pub async fn bulk_into(
    State(state): State<IngestState>,
    principal: Option<Extension<Principal>>,
    Path(index): Path<String>,
    body: Body,
) -> Response {
    run(state, Producer::of(principal.as_deref()), Some(index), body).await
}

const BULK_DESCRIPTION: &str = "`index` and `create` actions are taken (each source line is a \
    record, validated as `/api/logs/ingest` validates it); other actions are refused item by item. \
    The answer follows Elasticsearch's, item by item in request order. Bodies may be compressed \
    (gzip, deflate, zstd).";
const BULK_BODY: &str = "NDJSON: an action line (`{\"index\":{}}`, optionally with `_index` and \
    `_id`), then the record, for each item.";
const BULK_OK: &str = "Items taken are durable in the queue (`status` 201); refused ones carry \
    Elasticsearch's error, with the validation reason (`document_parsing_exception`)";
const BULK_REFUSED: &str = "Nothing was taken; send again after Retry-After, as to a busy \
    Elasticsearch node (`es_rejected_execution_exception`: the queue is full or unavailable) \
    or one past its flood-stage watermark (`cluster_block_exception`: the disk is below its floor); \
    also the answer to a producer over its quota (`[ingest.quota]`)";

/// The answer to a bulk request, as Elasticsearch gives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkAnswer {
    took: u64,
    /// Whether any item was refused.
    errors: bool,
    items: Vec<BulkItem>,
}

/// One item, under its action's name (`index`, `create`, …) as the only key.
#[derive(Debug, Serialize, ToSchema)]
struct BulkItem(BTreeMap<String, BulkItemResult>);

#[derive(Debug, Serialize, ToSchema)]
struct BulkItemResult {
    #[serde(rename = "_index")]
    index: String,
    #[serde(rename = "_id")]
    id: Option<String>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    shards: Option<Shards>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    seq_no: Option<usize>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    primary_term: Option<u64>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<EsCause>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

/// Elasticsearch's error of a whole request.
#[derive(Debug, Serialize, ToSchema)]
pub struct EsErrorBody {
    error: EsError,
    status: u16,
}

#[derive(Debug, Serialize, ToSchema)]
struct EsError {
    root_cause: Vec<EsCause>,
    #[serde(rename = "type")]
    kind: String,
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct EsCause {
    #[serde(rename = "type")]
    kind: String,
    reason: String,
}

/// One action of the request, in order, with what became of it.
pub(crate) struct Item {
    action: String,
    index: String,
    id: Option<String>,
    accepted: bool,
    outcome: Option<ItemError>,
}

impl Item {
    /// An item not accepted yet; `outcome` is its error when it is refused before validation.
    fn new(action: &str, index: String, id: Option<String>, outcome: Option<ItemError>) -> Item {
        Item {
            action: action.to_owned(),
            index,
            id,
            accepted: false,
            outcome,
        }
    }
}

pub(crate) struct ItemError {
    status: u16,
    kind: &'static str,
    reason: String,
}

async fn run(
    state: IngestState,
    producer: Producer,
    path_index: Option<String>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let source = Source::Bulk;
    if let Err(e) = check_room(&state, source) {
        return refused(e);
    }
    // Elasticsearch tells a request without a body from one without actions.
    let bodiless = body.size_hint().exact() == Some(0);
    let mut lines = RecordBatch::default();
    let mut splitter = NdjsonSplitter::new(state.config.limits.max_record_bytes);
    let read = read_split(
        body,
        state.config.max_body_bytes,
        &state.admission,
        source,
        &mut splitter,
        &mut lines,
    )
    .await;
    let _admitted = match read {
        Ok(admitted) => admitted,
        Err(BodyError::Refused(e)) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            return refused(e);
        }
        Err(BodyError::Refused(e)) => {
            return es_error(e.status, "illegal_argument_exception", &e.message, None);
        }
        Err(BodyError::Format(reason)) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
                None,
            );
        }
    };
    let (items, batch) = match pair_actions(in_order(lines), path_index.as_deref()) {
        Ok(parsed) => parsed,
        Err(reason) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
                None,
            );
        }
    };
    if items.is_empty() {
        let (kind, reason) = if bodiless {
            ("parse_exception", "request body is required")
        } else {
            (
                "action_request_validation_exception",
                "Validation Failed: 1: no requests added;",
            )
        };
        return es_error(StatusCode::BAD_REQUEST, kind, reason, None);
    }
    let mut items = items;
    if !batch.records.is_empty() {
        let (records, bytes) = batch.offered();
        if let Err(e) = state.quotas.admit(&producer, records, bytes) {
            return refused(e);
        }
        let outcome = match accept(&state, batch, source, Report::PerRecord).await {
            Ok(outcome) => outcome,
            Err(e) => return refused(e),
        };
        for (number, id) in outcome.ids {
            if let Some(item) = items.get_mut(number - 1) {
                item.id = Some(id);
                item.accepted = true;
            }
        }
        // Items with all their validation errors folded into one reason, as ES gives one.
        let mut reasons: Map<String, Value> = Map::new();
        for error in outcome.errors {
            let text = if error.field.is_empty() {
                error.reason
            } else {
                format!("[{}] {}", error.field, error.reason)
            };
            let key = error.record.to_string();
            let joined = match reasons.remove(&key) {
                Some(Value::String(prev)) => format!("{prev}; {text}"),
                _ => text,
            };
            reasons.insert(key, Value::String(joined));
        }
        for (number, reason) in reasons {
            if let (Ok(n), Value::String(reason)) = (number.parse::<usize>(), reason)
                && let Some(item) = items.get_mut(n - 1)
            {
                item.outcome = Some(ItemError {
                    status: 400,
                    kind: "document_parsing_exception",
                    reason,
                });
            }
        }
        // Every record is reported, but make sure no refused one could look accepted.
        for item in items
            .iter_mut()
            .filter(|i| !i.accepted && i.outcome.is_none())
        {
            item.outcome = Some(ItemError {
                status: 400,
                kind: "document_parsing_exception",
                reason: "record is invalid".into(),
            });
        }
    }
    answer(items, started)
}

/// A request turned away whole, as Elasticsearch turns it away, so shippers back off and send
/// it again: a busy node answers 429 `es_rejected_execution_exception`; a node whose disk passed
/// the flood-stage watermark answers 429 `cluster_block_exception` (Sluice's 507 elsewhere).
fn refused(e: sluice_http::ApiError) -> Response {
    // More than a quota takes at once: as Elasticsearch answers a body over its limit, on which
    // Beats and Logstash split the request.
    if e.status == StatusCode::PAYLOAD_TOO_LARGE {
        return es_error(e.status, "illegal_argument_exception", &e.message, None);
    }
    let kind = match e.status {
        StatusCode::INSUFFICIENT_STORAGE => "cluster_block_exception",
        _ => "es_rejected_execution_exception",
    };
    es_error(
        StatusCode::TOO_MANY_REQUESTS,
        kind,
        &e.message,
        e.retry_after,
    )
}

/// A line of the body: its text, or why the splitter could not keep it (longer than a record
/// may be).
pub(crate) enum Line {
    Text(RawRecord),
    Refused(RecordError),
}

/// The body's lines in order, those the splitter refused in their places.
pub(crate) fn in_order(lines: RecordBatch) -> Vec<Line> {
    let mut all: Vec<(usize, Line)> = lines
        .records
        .into_iter()
        .map(|r| (r.number, Line::Text(r)))
        .chain(
            lines
                .issues
                .into_iter()
                .map(|i| (i.record, Line::Refused(i))),
        )
        .collect();
    all.sort_by_key(|(number, _)| *number);
    all.into_iter().map(|(_, line)| line).collect()
}

/// Reads action lines and their source lines. Items are numbered from 1 in request order; the
/// batch holds the source lines of `index`/`create` items under those numbers. A source line
/// too long to be a record is that item's error; an action line that cannot be read is the
/// whole request's, as in Elasticsearch.
pub(crate) fn pair_actions(
    lines: Vec<Line>,
    path_index: Option<&str>,
) -> Result<(Vec<Item>, RecordBatch), String> {
    let mut items = Vec::new();
    let mut batch = RecordBatch::default();
    let mut lines = lines.into_iter();
    while let Some(line) = lines.next() {
        let line = match line {
            Line::Text(line) => line,
            Line::Refused(issue) => {
                return Err(format!(
                    "Malformed action/metadata line [{}]: {}",
                    issue.record, issue.reason
                ));
            }
        };
        let action: Value = serde_json::from_slice(&line.bytes).map_err(|e| {
            format!(
                "Malformed action/metadata line [{}], expected START_OBJECT: {e}",
                line.number
            )
        })?;
        let Some((name, meta)) = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(format!(
                "Malformed action/metadata line [{}], expected an object with exactly one action",
                line.number
            ));
        };
        let meta = meta.as_object().cloned().unwrap_or_default();
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(path_index)
            .unwrap_or("sluice")
            .to_owned();
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        let number = items.len() + 1;
        match name.as_str() {
            "index" | "create" => {
                let source = match lines.next() {
                    Some(Line::Text(source)) => source,
                    Some(Line::Refused(issue)) => {
                        let error = ItemError {
                            status: 400,
                            kind: "document_parsing_exception",
                            reason: issue.reason,
                        };
                        items.push(Item::new(name, index, id, Some(error)));
                        continue;
                    }
                    None => {
                        return Err(format!(
                            "Validation Failed: action [{name}] on line [{}] has no source line",
                            line.number
                        ));
                    }
                };
                batch.records.push(RawRecord {
                    number,
                    bytes: source.bytes,
                    id: id.clone().filter(|id| !id.is_empty()),
                });
                items.push(Item::new(name, index, id, None));
            }
            "update" | "delete" => {
                if name == "update" {
                    lines.next();
                }
                let error = ItemError {
                    status: 400,
                    kind: "action_request_validation_exception",
                    reason: format!(
                        "Sluice keeps logs append-only: [{name}] is not supported, use index or create"
                    ),
                };
                items.push(Item::new(name, index, id, Some(error)));
            }
            other => {
                return Err(format!(
                    "Malformed action/metadata line [{}], expected one of [create, delete, index, update] but found [{other}]",
                    line.number
                ));
            }
        }
    }
    Ok((items, batch))
}

fn answer(items: Vec<Item>, started: Instant) -> Response {
    let errors = items.iter().any(|i| i.outcome.is_some());
    let items = items
        .into_iter()
        .enumerate()
        .map(|(seq, item)| {
            let result = match item.outcome {
                None => BulkItemResult {
                    index: item.index,
                    id: item.id,
                    version: Some(1),
                    result: Some("created"),
                    shards: Some(Shards {
                        total: 1,
                        successful: 1,
                        failed: 0,
                    }),
                    seq_no: Some(seq),
                    primary_term: Some(1),
                    status: 201,
                    error: None,
                },
                Some(error) => BulkItemResult {
                    index: item.index,
                    id: item.id,
                    version: None,
                    result: None,
                    shards: None,
                    seq_no: None,
                    primary_term: None,
                    status: error.status,
                    error: Some(EsCause {
                        kind: error.kind.to_owned(),
                        reason: error.reason,
                    }),
                },
            };
            BulkItem(BTreeMap::from([(item.action, result)]))
        })
        .collect();
    let body = BulkAnswer {
        took: started.elapsed().as_millis() as u64,
        errors,
        items,
    };
    ([product_header()], Json(body)).into_response()
}

/// A whole-request error in Elasticsearch's shape.
fn es_error(status: StatusCode, kind: &str, reason: &str, retry_after: Option<u64>) -> Response {
    let cause = || EsCause {
        kind: kind.to_owned(),
        reason: reason.to_owned(),
    };
    let body = EsErrorBody {
        error: EsError {
            root_cause: vec![cause()],
            kind: kind.to_owned(),
            reason: reason.to_owned(),
        },
        status: status.as_u16(),
    };
    let mut response = (status, [product_header()], Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}
