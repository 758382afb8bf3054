//! `POST /api/logs/search/export?format=csv|ndjson`: every hit of a search as a file, streamed.
//!
//! The body is a search as `POST /api/logs/search` takes it. Hits are read a page at a time with
//! `search_after` and written out as each page arrives, so memory stays at one page whatever the
//! number of rows (at most [`MAX_EXPORT_ROWS`]). If the store fails part way, the response is cut
//! off mid-stream rather than ended cleanly, so a client cannot mistake a partial file for a
//! whole one.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use serde::Deserialize;
use serde_json::Value;
use sluice_http::responses::Unavailable;
use sluice_http::{ApiError, QueryParams};
use sluice_store::{EventStore, SearchQuery, SortKey, Total};
use std::sync::Arc;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::{SearchRequest, hit_document, parse_body, store_error, to_query};
use crate::ApiState;

pub const MAX_EXPORT_ROWS: u64 = 1_000_000;
const PAGE: usize = 1_000;

/// The CSV columns when none are asked for: the common fields and each type's own.
const DEFAULT_COLUMNS: &[&str] = &[
    "_id",
    "@timestamp",
    "log_type",
    "level",
    "service",
    "message",
    "user_id",
    "ip",
    "transaction_id",
    "amount",
    "currency",
    "payment_method",
    "status",
    "product_name",
    "quantity",
    "country",
    "error_code",
    "error_type",
    "error_message",
    "endpoint",
    "response_time",
    "db_query_time",
    "status_code",
    "action",
    "page",
    "session_id",
    "geo.country_iso_code",
    "geo.city_name",
    "fraud.score",
    "fraud.detected",
    "fraud.indicators",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The file's format (default ndjson).
    #[param(inline)]
    format: Option<Format>,
    /// At most this many rows (default and maximum: 1,000,000).
    #[param(minimum = 1, maximum = 1000000)]
    limit: Option<u64>,
    /// CSV columns, 1 to 200 comma-separated document paths (`geo.city_name`); default: the
    /// common ones. Only with `format=csv`.
    #[param(pattern = "[^,\\s]")]
    fields: Option<String>,
}

/// The body of an export: a search without its paging, since an export has every hit.
/// Derived from [`SearchRequest`]'s schema, so the two cannot drift apart.
pub struct ExportRequest;

/// Fields of a search that an export refuses (`highlight` it ignores: files have none).
const PAGING: [&str; 3] = ["size", "offset", "search_after"];

impl PartialSchema for ExportRequest {
    fn schema() -> RefOr<Schema> {
        let mut schema = SearchRequest::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            for field in PAGING {
                object.properties.shift_remove(field);
            }
        }
        schema
    }
}

impl ToSchema for ExportRequest {}

#[utoipa::path(
    post,
    path = "/api/logs/search/export",
    tag = "search",
    summary = "Every hit of a search as a file (NDJSON or CSV), streamed",
    description = "Hits are read a page at a time and written as they come, so any number of \
                   rows costs one page of memory. If the store fails part way the response is \
                   cut off mid-stream, never ended cleanly, so a partial file cannot pass for a \
                   whole one.",
    params(ExportParams),
    request_body(content = Option<ExportRequest>, description = "An empty body exports everything."),
    responses(
        (status = 200, description = "The file, as an attachment", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Paging fields in the body, parameters that do not fit, or a search that would be refused", body = sluice_http::ErrorBody),
        Unavailable,
    )
)]
pub async fn export(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<ExportParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_request", message);
    let (_, request) = parse_body(&body)?;
    if request.size.is_some() || request.offset.is_some() || request.search_after.is_some() {
        return Err(invalid(
            "an export has every hit: leave out size, offset and search_after (use limit to cap it)"
                .into(),
        ));
    }
    let limit = params.limit.unwrap_or(MAX_EXPORT_ROWS);
    if !(1..=MAX_EXPORT_ROWS).contains(&limit) {
        return Err(invalid(format!(
            "limit must be between 1 and {MAX_EXPORT_ROWS}"
        )));
    }
    let format = params.format.unwrap_or(Format::Ndjson);
    let columns: Vec<String> = match (&params.fields, format) {
        (Some(_), Format::Ndjson) => {
            return Err(invalid("fields applies to format=csv only".into()));
        }
        (Some(fields), Format::Csv) => {
            let columns: Vec<String> = fields
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect();
            if columns.is_empty() || columns.len() > 200 {
                return Err(invalid("fields: 1 to 200 comma-separated names".into()));
            }
            columns
        }
        (None, _) => DEFAULT_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
    };
    let query = SearchQuery {
        size: PAGE,
        ..to_query(request)?
    };
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let filename = format!(
        "sluice-export-{}.{extension}",
        sluice_event::now_ms() / 1_000
    );
    let header_row = (format == Format::Csv).then(|| {
        let names: Vec<Value> = columns.iter().map(|c| Value::String(c.clone())).collect();
        csv_row(&names)
    });
    let pages = Pages {
        store: state.store.clone(),
        query,
        after: None,
        remaining: limit,
        columns,
        format,
        done: false,
    };
    // An error ends the body abruptly (the chunked encoding is never terminated), which is how
    // the client learns the file is incomplete.
    let body = stream::iter(header_row.map(|row| Ok(Bytes::from(row))))
        .chain(stream::unfold(pages, |mut pages| async move {
            pages.next().await.map(|chunk| (chunk, pages))
        }))
        .map(|chunk| chunk.map_err(|e: ApiError| std::io::Error::other(e.message)));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The export's state between pages.
struct Pages {
    store: Arc<dyn EventStore>,
    query: SearchQuery,
    after: Option<SortKey>,
    remaining: u64,
    columns: Vec<String>,
    format: Format,
    done: bool,
}

impl Pages {
    /// The next page's rows, `None` when every hit (or `limit` of them) has been sent.
    async fn next(&mut self) -> Option<Result<Bytes, ApiError>> {
        if self.done || self.remaining == 0 {
            return None;
        }
        let query = SearchQuery {
            search_after: self.after.clone(),
            size: PAGE.min(self.remaining as usize),
            total: Total::NotNeeded,
            ..self.query.clone()
        };
        let results = match self.store.search(&query).await {
            Ok(results) => results,
            Err(e) => {
                self.done = true;
                tracing::warn!(error = %e, "export cut off: the store failed");
                return Some(Err(store_error(e)));
            }
        };
        if results.hits.len() < query.size {
            self.done = true;
        }
        self.after = results.hits.last().map(|hit| hit.sort.clone());
        self.remaining -= results.hits.len() as u64;
        let mut out = Vec::with_capacity(results.hits.len() * 512);
        for hit in results.hits {
            let document = match hit_document(hit, &[]) {
                Ok(document) => document,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match self.format {
                Format::Ndjson => {
                    // A map of JSON values always serialises.
                    let _ = serde_json::to_writer(&mut out, &document);
                    out.push(b'\n');
                }
                Format::Csv => {
                    let document = Value::Object(document);
                    let cells: Vec<Value> = self
                        .columns
                        .iter()
                        .map(|path| value_at(&document, path).clone())
                        .collect();
                    out.extend_from_slice(csv_row(&cells).as_bytes());
                }
            }
        }
        if out.is_empty() {
            return None;
        }
        Some(Ok(Bytes::from(out)))
    }
}

/// The value at a dotted path (`geo.city_name`), or null.
fn value_at<'a>(document: &'a Value, path: &str) -> &'a Value {
    if let Some(direct) = document.get(path) {
        return direct;
    }
    path.split('.')
        .try_fold(document, |node, part| node.get(part))
        .unwrap_or(&Value::Null)
}

/// One CSV line (RFC 4180). Text that a spreadsheet would run as a formula (starting with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`: log fields are producer
/// input, and an export is meant to be opened.
fn csv_row(cells: &[Value]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let text = match cell {
            Value::Null => String::new(),
            Value::String(text) => {
                if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    format!("'{text}")
                } else {
                    text.clone()
                }
            }
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&text.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&text);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let row = csv_row(&[
            json!("plain"),
            json!("a,b"),
            json!("say \"hi\"\nthere"),
            json!("=HYPERLINK(\"http://x\")"),
            json!(-5),
            json!(["high_amount", "ip_mismatch"]),
            json!(null),
            json!(true),
        ]);
        assert_eq!(
            row,
            "plain,\"a,b\",\"say \"\"hi\"\"\nthere\",\"'=HYPERLINK(\"\"http://x\"\")\",-5,high_amount;ip_mismatch,,true\r\n"
        );
    }

    #[test]
    fn dotted_paths_reach_nested_fields() {
        let document = json!({"geo": {"city_name": "Berlin"}, "@timestamp": "t"});
        assert_eq!(value_at(&document, "geo.city_name"), "Berlin");
        assert_eq!(value_at(&document, "@timestamp"), "t");
        assert_eq!(value_at(&document, "geo.nothing"), &Value::Null);
    }
}
