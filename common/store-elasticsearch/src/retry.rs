//! Which Elasticsearch failures are worth another try. Overload (429) and server trouble (5xx,
//! 408) pass: the processor holds its queue position and sends those documents again after a
//! back-off. Any other 4xx is about the document itself (a mapping conflict, a metadata field in
//! the source) and will fail the same way every time, so it is dead-lettered with Elasticsearch's
//! reason. This is the split Logstash and Vector make.

use serde::Deserialize;

/// What Elasticsearch said about one document of a `_bulk` request, or about a whole request.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(super) struct EsError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub caused_by: Option<Box<EsError>>,
}

impl EsError {
    /// `type: reason`, then each cause: enough to fix the document or the template.
    pub fn describe(&self) -> String {
        let mut text = match &self.reason {
            Some(reason) => format!("{}: {reason}", self.kind),
            None => self.kind.clone(),
        };
        let mut cause = self.caused_by.as_deref();
        while let Some(inner) = cause {
            text.push_str("; caused by ");
            text.push_str(&inner.kind);
            if let Some(reason) = &inner.reason {
                text.push_str(": ");
                text.push_str(reason);
            }
            cause = inner.caused_by.as_deref();
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ItemOutcome {
    Indexed,
    Retry(String),
    Reject(String),
}

/// The fate of one bulk item from its status and error.
pub(super) fn item_outcome(status: u16, error: Option<&EsError>) -> ItemOutcome {
    if (200..300).contains(&status) && error.is_none() {
        return ItemOutcome::Indexed;
    }
    let reason = match error {
        Some(error) => format!("Elasticsearch {status} {}", error.describe()),
        None => format!("Elasticsearch answered {status} without a reason"),
    };
    if is_retryable(status) {
        ItemOutcome::Retry(reason)
    } else {
        ItemOutcome::Reject(reason)
    }
}

/// Statuses that say "not now" rather than "not this".
pub(super) fn is_retryable(status: u16) -> bool {
    status == 429 || status == 408 || status >= 500
}

/// What an operator should do about a whole request refused with `status`.
pub(super) fn request_hint(status: u16) -> &'static str {
    match status {
        401 => " (check store.elasticsearch.username/password or api_key)",
        403 => " (the credentials lack a privilege: index and create_index on the Sluice indices)",
        413 => {
            " (lower store.elasticsearch.bulk_max_bytes below the cluster's http.max_content_length)"
        }
        429 => " (the cluster is overloaded; retrying with back-off)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> EsError {
        serde_json::from_str(json).expect("an Elasticsearch error object")
    }

    // The error objects below are as Elasticsearch 8 returns them in `_bulk` items.

    #[test]
    fn rejected_execution_is_retried() {
        let e = error(
            r#"{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=106, max_coordinating_and_primary_bytes=0]"}"#,
        );
        let ItemOutcome::Retry(reason) = item_outcome(429, Some(&e)) else {
            panic!("429 must be retried");
        };
        assert!(reason.starts_with("Elasticsearch 429 es_rejected_execution_exception"));
    }

    #[test]
    fn unavailable_shard_is_retried() {
        let e = error(
            r#"{"type":"unavailable_shards_exception","reason":"[sluice-logs-2026.11.24][0] primary shard is not active Timeout: [1m]"}"#,
        );
        assert!(matches!(item_outcome(503, Some(&e)), ItemOutcome::Retry(_)));
        assert!(matches!(item_outcome(500, None), ItemOutcome::Retry(_)));
    }

    #[test]
    fn mapping_error_is_rejected_with_every_cause() {
        let e = error(
            r#"{"type":"document_parsing_exception","reason":"[1:74] failed to parse field [amount] of type [double] in document with id 'b'. Preview of field's value: 'lots'","caused_by":{"type":"number_format_exception","reason":"For input string: \"lots\""}}"#,
        );
        assert_eq!(
            item_outcome(400, Some(&e)),
            ItemOutcome::Reject(
                "Elasticsearch 400 document_parsing_exception: [1:74] failed to parse field \
                 [amount] of type [double] in document with id 'b'. Preview of field's value: \
                 'lots'; caused by number_format_exception: For input string: \"lots\""
                    .into()
            )
        );
    }

    #[test]
    fn missing_index_without_auto_create_is_rejected() {
        let e = error(
            r#"{"type":"index_not_found_exception","reason":"no such index [sluice-logs-2026.11.24] and [action.auto_create_index] ([-sluice*]) doesn't match","index_uuid":"_na_","index":"sluice-logs-2026.11.24"}"#,
        );
        assert!(matches!(
            item_outcome(404, Some(&e)),
            ItemOutcome::Reject(_)
        ));
    }

    #[test]
    fn created_and_updated_items_are_indexed() {
        assert_eq!(item_outcome(201, None), ItemOutcome::Indexed);
        assert_eq!(item_outcome(200, None), ItemOutcome::Indexed);
    }

    #[test]
    fn whole_request_statuses() {
        assert!(is_retryable(429) && is_retryable(502) && is_retryable(408));
        assert!(!is_retryable(400) && !is_retryable(401) && !is_retryable(413));
        assert!(request_hint(401).contains("username"));
        assert!(request_hint(413).contains("bulk_max_bytes"));
    }
}
