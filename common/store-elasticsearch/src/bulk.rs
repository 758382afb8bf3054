//! `_bulk` requests: a batch of documents cut into bodies of bounded size, each document routed to
//! the daily index of its event time, and the per-item answers turned into an [`IndexReport`].

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::retry::{EsError, ItemOutcome, item_outcome};
use sluice_store::{RejectedDocument, StoreDocument};

/// One `_bulk` body and the documents (positions in the batch) it carries, in order.
pub(super) struct BulkRequest {
    pub body: Vec<u8>,
    pub documents: Range<usize>,
}

const MS_PER_DAY: i64 = 86_400_000;

/// Cuts `documents` into bodies of at most `max_bytes` (a document larger than that goes alone),
/// each built only when it is asked for: a sink sending a few requests at a time holds that
/// many bodies, not a copy of the whole batch.
pub(super) fn build_requests<'a>(
    documents: &'a [StoreDocument],
    index_prefix: &'a str,
    max_bytes: usize,
) -> BulkRequests<'a> {
    BulkRequests {
        documents,
        next: 0,
        index: DailyIndex::new(index_prefix),
        index_prefix,
        max_bytes,
    }
}

/// The bodies of a batch, in order; see [`build_requests`].
pub(super) struct BulkRequests<'a> {
    documents: &'a [StoreDocument],
    next: usize,
    index: DailyIndex<'a>,
    index_prefix: &'a str,
    max_bytes: usize,
}

impl Iterator for BulkRequests<'_> {
    type Item = BulkRequest;

    fn next(&mut self) -> Option<BulkRequest> {
        let start = self.next;
        let mut body = Vec::new();
        while let Some(document) = self.documents.get(self.next) {
            let size = document_size(document, self.index_prefix);
            if !body.is_empty() && body.len() + size > self.max_bytes {
                break;
            }
            if body.is_empty() {
                body.reserve(size.max(self.max_bytes.min(1 << 20)));
            }
            write_document(&mut body, document, self.index.name(document.timestamp_ms));
            self.next += 1;
        }
        (!body.is_empty()).then_some(BulkRequest {
            body,
            documents: start..self.next,
        })
    }
}

/// Bytes a document takes in a body (exact unless its id needs escaping).
fn document_size(document: &StoreDocument, index_prefix: &str) -> usize {
    // `{"index":{"_index":"","_id":}}\n` is 31 bytes; the index name adds the prefix and
    // `-YYYY.MM.DD`, the id its quotes, the source its newline.
    31 + index_prefix.len() + 11 + document.id.len() + 2 + document.source.len() + 1
}

fn write_document(body: &mut Vec<u8>, document: &StoreDocument, index: &str) {
    body.extend_from_slice(b"{\"index\":{\"_index\":\"");
    body.extend_from_slice(index.as_bytes());
    body.extend_from_slice(b"\",\"_id\":");
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *body, &document.id);
    body.extend_from_slice(b"}}\n");
    let start = body.len();
    body.extend_from_slice(document.source.as_bytes());
    // A pretty-printed record has raw line breaks between its tokens, which would end the bulk
    // line early. Inside JSON strings a raw line break is invalid, so every one of them is
    // whitespace and a space means the same.
    for byte in &mut body[start..] {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
    body.push(b'\n');
}

/// `prefix-YYYY.MM.DD` for an event time, remembering the last day (a batch is mostly one day).
struct DailyIndex<'a> {
    prefix: &'a str,
    day: Option<i64>,
    name: String,
}

impl<'a> DailyIndex<'a> {
    fn new(prefix: &'a str) -> Self {
        DailyIndex {
            prefix,
            day: None,
            name: String::new(),
        }
    }

    fn name(&mut self, timestamp_ms: i64) -> &str {
        let day = timestamp_ms.div_euclid(MS_PER_DAY);
        if self.day != Some(day) {
            self.day = Some(day);
            self.name = daily_index_name(self.prefix, timestamp_ms);
        }
        &self.name
    }
}

pub(super) fn daily_index_name(prefix: &str, timestamp_ms: i64) -> String {
    // Validation keeps event times within 1970..=9999, so the fallback never shows.
    let date = OffsetDateTime::from_unix_timestamp(timestamp_ms.div_euclid(1000))
        .map(OffsetDateTime::date)
        .unwrap_or(time::Date::MIN);
    format!(
        "{prefix}-{:04}.{:02}.{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[derive(Deserialize)]
struct BulkResponse<'a> {
    errors: bool,
    #[serde(borrow)]
    items: &'a RawValue,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(alias = "create", alias = "update", alias = "delete")]
    index: ItemResult,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<EsError>,
}

/// What became of one request's documents.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RequestReport {
    pub indexed: usize,
    pub rejected: Vec<RejectedDocument>,
}

/// Reads a `_bulk` answer for `documents`. Items come back in request order, so they are matched
/// by position (ids can repeat within a batch). Items are only parsed when `errors` says one
/// failed: on the common path the answer is scanned, not built.
pub(super) fn read_response(
    answer: &[u8],
    documents: &[StoreDocument],
) -> Result<RequestReport, String> {
    let response: BulkResponse<'_> =
        serde_json::from_slice(answer).map_err(|e| format!("unreadable _bulk answer: {e}"))?;
    if !response.errors {
        return Ok(RequestReport {
            indexed: documents.len(),
            rejected: Vec::new(),
        });
    }
    let items: Vec<BulkItem> = serde_json::from_str(response.items.get())
        .map_err(|e| format!("unreadable _bulk items: {e}"))?;
    if items.len() != documents.len() {
        return Err(format!(
            "_bulk answered {} items for {} documents",
            items.len(),
            documents.len()
        ));
    }
    let mut report = RequestReport::default();
    for (item, document) in items.iter().zip(documents) {
        let rejected = |reason, retryable| RejectedDocument {
            id: document.id.clone(),
            reason,
            retryable,
        };
        match item_outcome(item.index.status, item.index.error.as_ref()) {
            ItemOutcome::Indexed => report.indexed += 1,
            ItemOutcome::Retry(reason) => report.rejected.push(rejected(reason, true)),
            ItemOutcome::Reject(reason) => report.rejected.push(rejected(reason, false)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(id: &str, timestamp_ms: i64, source: &str) -> StoreDocument {
        StoreDocument {
            id: id.into(),
            timestamp_ms,
            message: None,
            error_message: None,
            fields: sluice_store::FieldValues::default(),
            source: source.to_owned(),
        }
    }

    #[test]
    fn routes_by_event_day_and_escapes_ids() {
        let documents = [
            document("a\"b", 1_795_996_799_999, r#"{"n":1}"#),
            document("c", 1_795_996_800_000, r#"{"n":2}"#),
        ];
        let requests: Vec<_> = build_requests(&documents, "logs", 1 << 20).collect();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            String::from_utf8(requests[0].body.clone()).expect("utf-8"),
            "{\"index\":{\"_index\":\"logs-2026.11.29\",\"_id\":\"a\\\"b\"}}\n{\"n\":1}\n\
             {\"index\":{\"_index\":\"logs-2026.11.30\",\"_id\":\"c\"}}\n{\"n\":2}\n"
        );
    }

    #[test]
    fn line_breaks_between_tokens_become_spaces() {
        let documents = [document("a", 0, "{\r\n  \"n\": 1\n}")];
        let body = &build_requests(&documents, "logs", 1 << 20).collect::<Vec<_>>()[0].body;
        assert!(body.ends_with(b"\n{    \"n\": 1 }\n"), "{body:?}");
        assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 2);
    }

    #[test]
    fn splits_by_size_and_never_drops_an_oversized_document() {
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(500));
        let documents: Vec<_> = (0..10)
            .map(|i| document(&i.to_string(), 0, if i == 4 { &big } else { "{}" }))
            .collect();
        let requests: Vec<_> = build_requests(&documents, "logs", 200).collect();
        for request in &requests {
            assert!(request.body.len() <= 200 || request.documents.len() == 1);
        }
        let covered: Vec<usize> = requests.iter().flat_map(|r| r.documents.clone()).collect();
        assert_eq!(covered, (0..10).collect::<Vec<_>>());
        assert!(requests.iter().any(|r| r.documents == (4..5)));
        let sized: usize = requests.iter().map(|r| r.body.len()).sum();
        let estimated: usize = documents.iter().map(|d| document_size(d, "logs")).sum();
        assert_eq!(sized, estimated, "the size estimate is exact");
    }

    /// A `_bulk` answer as Elasticsearch 8 gives it for one created, one overloaded and one
    /// unmappable document.
    const MIXED_ANSWER: &str = r#"{"errors":true,"took":3,"items":[
      {"index":{"_index":"sluice-logs-2026.11.24","_id":"a","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
      {"index":{"_index":"sluice-logs-2026.11.24","_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of primary operation"}}},
      {"index":{"_index":"sluice-logs-2026.11.24","_id":"c","status":400,"error":{"type":"document_parsing_exception","reason":"[1:12] failed to parse field [amount] of type [double]","caused_by":{"type":"number_format_exception","reason":"For input string: \"lots\""}}}}
    ]}"#;

    #[test]
    fn mixed_answer_splits_into_indexed_retry_and_reject() {
        let documents = [
            document("a", 0, "{}"),
            document("b", 0, "{}"),
            document("c", 0, "{}"),
        ];
        let report = read_response(MIXED_ANSWER.as_bytes(), &documents).expect("report");
        assert_eq!(report.indexed, 1);
        assert_eq!(report.rejected.len(), 2);
        assert_eq!(
            (report.rejected[0].id.as_str(), report.rejected[0].retryable),
            ("b", true)
        );
        assert_eq!(
            (report.rejected[1].id.as_str(), report.rejected[1].retryable),
            ("c", false)
        );
        assert!(
            report.rejected[1]
                .reason
                .contains("number_format_exception")
        );
    }

    #[test]
    fn answer_without_errors_counts_everything_and_mismatch_is_an_error() {
        let documents = [document("a", 0, "{}"), document("b", 0, "{}")];
        let ok = r#"{"errors":false,"took":1,"items":[{"index":{"status":201}},{"index":{"status":200}}]}"#;
        assert_eq!(
            read_response(ok.as_bytes(), &documents)
                .expect("ok")
                .indexed,
            2
        );
        assert!(read_response(MIXED_ANSWER.as_bytes(), &documents).is_err());
        assert!(read_response(b"<html>proxy error</html>", &documents).is_err());
    }
}
