//! The event store: where processed events are written and searched.
//!
//! Callers hand over [`StoreDocument`]s (the full JSON document plus the handful of typed fields
//! a store indexes) and ask with a [`SearchQuery`]; each adapter maps those onto its engine, so
//! the processor and the api do not know which engine they talk to.

#[cfg(test)]
mod conformance;
pub mod elasticsearch;
pub mod null;
pub mod tantivy;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

use crate::event::LogType;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("event store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("event store write failed: {0}")]
    Write(String),
    #[error("event store search failed: {0}")]
    Search(String),
}

/// One event ready to be written. `source` is the whole enriched document as JSON; the other
/// fields are what the store indexes for filters, full text and ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreDocument {
    pub id: String,
    pub timestamp_ms: i64,
    pub log_type: LogType,
    pub level: Option<String>,
    pub service: Option<String>,
    pub message: Option<String>,
    pub error_message: Option<String>,
    pub source: Vec<u8>,
}

/// A document the store would not take, and whether trying again later may help.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedDocument {
    pub id: String,
    pub reason: String,
    pub retryable: bool,
}

/// What became of a write: every document not listed in `rejected` is durable and searchable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexReport {
    pub indexed: usize,
    pub rejected: Vec<RejectedDocument>,
}

/// Levels are matched case-insensitively: producers write `ERROR`, `error` and `Error`.
pub(crate) fn normalize_level(level: &str) -> String {
    level.trim().to_ascii_lowercase()
}

/// Largest page a search may ask for.
pub const MAX_SEARCH_SIZE: usize = 10_000;
pub const DEFAULT_SEARCH_SIZE: usize = 20;

/// A search: full text, exact filters and a time range, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Full text over `message` and `error_message`.
    pub text: Option<String>,
    pub log_type: Option<LogType>,
    pub level: Option<String>,
    pub service: Option<String>,
    /// Inclusive bounds on event time, epoch milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Page size, at most [`MAX_SEARCH_SIZE`].
    pub size: usize,
}

/// One hit: the document id and the stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub source: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResults {
    /// Every match, not only the page returned.
    pub total: u64,
    pub hits: Vec<Hit>,
}

/// Fields events can be counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountField {
    LogType,
    Level,
    Service,
}

impl CountField {
    /// The field's name in the document, in both stores.
    pub fn name(self) -> &'static str {
        match self {
            CountField::LogType => "log_type",
            CountField::Level => "level",
            CountField::Service => "service",
        }
    }
}

/// How many matching events have one value of a [`CountField`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// Both stores answer a terms aggregation in Elasticsearch's shape (tantivy's aggregation module
/// speaks the same dialect), so one reader serves both: most frequent first, ties by value, so
/// the two stores order ties alike. Levels are lowercased and merged: both stores index them
/// lowercased, and merging again costs nothing where they did, and is right where a cluster's
/// mapping predates the normalizer.
pub(crate) fn read_terms(
    answer: &serde_json::Value,
    field: CountField,
) -> Result<Vec<ValueCount>, StoreError> {
    let buckets = answer["buckets"]
        .as_array()
        .ok_or_else(|| StoreError::Search(format!("terms answer without buckets: {answer}")))?;
    let mut counts = buckets
        .iter()
        .map(|bucket| {
            let value = match &bucket["key"] {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let count = bucket["doc_count"].as_u64().ok_or_else(|| {
                StoreError::Search(format!("terms bucket without doc_count: {bucket}"))
            })?;
            Ok(ValueCount { value, count })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if field == CountField::Level {
        let mut merged: Vec<ValueCount> = Vec::with_capacity(counts.len());
        for count in counts {
            let value = normalize_level(&count.value);
            match merged.iter_mut().find(|m| m.value == value) {
                Some(existing) => existing.count += count.count,
                None => merged.push(ValueCount {
                    value,
                    count: count.count,
                }),
            }
        }
        counts = merged;
    }
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    Ok(counts)
}

/// The terms aggregation both stores run, as Elasticsearch query DSL.
pub(crate) fn terms_aggregation(field: CountField, size: usize) -> serde_json::Value {
    serde_json::json!({ "terms": { "field": field.name(), "size": size.max(1) } })
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes documents (a document with an id already present replaces it) and returns once
    /// they are durable; they are searchable at once in tantivy, after the next refresh (1 s by
    /// default) in Elasticsearch. Shared, so a failed write can be retried as is.
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError>;

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError>;

    /// The `size` most frequent values of `field` among the events `query` matches (its text,
    /// filters and time range; not its page size), most frequent first.
    async fn count_by(
        &self,
        query: &SearchQuery,
        field: CountField,
        size: usize,
    ) -> Result<Vec<ValueCount>, StoreError>;

    /// Whether the store answers; `/ready` reports it.
    async fn ready(&self) -> Result<(), StoreError>;
}
