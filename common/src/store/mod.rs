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

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes documents (a document with an id already present replaces it) and returns once
    /// they are durable; they are searchable at once in tantivy, after the next refresh (1 s by
    /// default) in Elasticsearch. Shared, so a failed write can be retried as is.
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError>;

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError>;

    /// Whether the store answers; `/ready` reports it.
    async fn ready(&self) -> Result<(), StoreError>;
}
