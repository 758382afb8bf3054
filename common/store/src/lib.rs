//! The event store: where processed events are written and searched.
//!
//! Callers hand over [`StoreDocument`]s (the full JSON document plus the handful of typed fields
//! a store indexes) and ask with a [`SearchQuery`]; each adapter maps those onto its engine, so
//! the processor and the api do not know which engine they talk to.

pub mod aggregation;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod fields;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod null;
pub mod retention;
pub mod rollup;
pub mod text_query;

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

pub use aggregation::{
    Aggregation, AggregationResult, AggregationResults, Aggregations, Stats, TermBucket, TimeBucket,
};
pub use fields::{Field, FieldKind, FieldValue, FieldValues, FieldValuesIter, JsonScalar};
pub use retention::{RetentionPass, RetentionPolicy, StoreUsage};
pub use text_query::{QuerySyntaxError, TextField, TextQuery};

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
/// fields are what the store indexes for filters, full text and ordering, typed once by whoever
/// built the document so that no store parses `source` again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreDocument {
    pub id: String,
    pub timestamp_ms: i64,
    /// The text fields full-text search reads.
    pub message: Option<String>,
    pub error_message: Option<String>,
    /// Every [`Field`]'s values, the id, type, level and service among them; empty for a store
    /// that does not read them ([`EventStore::reads_field_values`]).
    pub fields: FieldValues,
    /// The document as JSON (text, so a store can keep it without checking its encoding).
    pub source: String,
}

impl StoreDocument {
    /// A document from its JSON source alone, every field read out of it (the reference
    /// reading, [`FieldValues::of_document`]); the processor builds its documents from the
    /// record it already parsed instead.
    pub fn from_source(id: &str, timestamp_ms: i64, source: &serde_json::Value) -> StoreDocument {
        let mut fields = FieldValues::of_document(source);
        if fields.of(Field::DocumentId).is_empty() {
            fields.push(Field::DocumentId, FieldValue::Keyword(id));
        }
        let text = |name: &str| source.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        StoreDocument {
            id: id.to_owned(),
            timestamp_ms,
            message: text("message"),
            error_message: text("error_message"),
            fields,
            // A `serde_json::Value` always serialises.
            source: serde_json::to_string(source).unwrap_or_default(),
        }
    }
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
pub fn normalize_level(level: &str) -> String {
    level.trim().to_ascii_lowercase()
}

/// Whether [`normalize_level`] would leave `level` as it is.
fn is_normalized_level(level: &str) -> bool {
    level.len() == level.trim().len() && !level.bytes().any(|b| b.is_ascii_uppercase())
}

/// Largest page a search may ask for.
pub const MAX_SEARCH_SIZE: usize = 10_000;
pub const DEFAULT_SEARCH_SIZE: usize = 20;
/// How many matches a search through the API counts before it says "at least" (Elasticsearch's
/// `track_total_hits` default).
pub const DEFAULT_TRACK_TOTAL_HITS: u64 = 10_000;
/// How deep `offset` paging may go (Elasticsearch's `index.max_result_window`); deeper pages
/// use `search_after`, which costs the same on every page.
pub const MAX_RESULT_WINDOW: usize = 10_000;

/// A condition on one [`Field`].
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The field has exactly this value (`true`/`false` for flags; levels in any case).
    Equals(Field, String),
    /// A number within bounds.
    Range {
        field: Field,
        lower: Bound<f64>,
        upper: Bound<f64>,
    },
    /// The field has a value.
    Exists(Field),
    /// At least one of these holds.
    AnyOf(Vec<Filter>),
}

impl Filter {
    /// Both bounds included, either optional.
    pub fn between(field: Field, min: Option<f64>, max: Option<f64>) -> Filter {
        Filter::Range {
            field,
            lower: min.map_or(Bound::Unbounded, Bound::Included),
            upper: max.map_or(Bound::Unbounded, Bound::Included),
        }
    }
}

/// What a search is ordered by: event time, or a numeric [`Field`] (only events that have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    Timestamp,
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Sort {
            field: SortField::Timestamp,
            descending: true,
        }
    }
}

/// Where a hit stands in its search's order: its sort value (epoch milliseconds for time), then
/// its id, which breaks ties so that every document has one place and `search_after` neither
/// skips nor repeats any.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub value: f64,
    pub id: String,
}

/// A search: full text, filters and a time range, in an order, one page of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// The search box, over `message` and `error_message` and the fields it names.
    pub text: Option<TextQuery>,
    /// Conditions every hit meets.
    pub filters: Vec<Filter>,
    /// Inclusive bounds on event time, epoch milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub sort: Sort,
    /// Hits after this key in the sort order (deep paging), instead of `offset`.
    pub search_after: Option<SortKey>,
    /// Hits to skip; `offset + size` stays within [`MAX_RESULT_WINDOW`].
    pub offset: usize,
    /// Page size, at most [`MAX_SEARCH_SIZE`].
    pub size: usize,
    /// Whether [`SearchResults::total`] is counted.
    pub total: Total,
}

/// How much of a search's total is counted, as Elasticsearch's `track_total_hits` says:
/// counting reads every match of the window, where a page of the newest or largest reads few.
/// A caller that shows only the page says it does not need the total; one that shows "10,000+"
/// counts up to a bound and leaves the rest of a large index unread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Total {
    /// Every match: the total is exact.
    #[default]
    Counted,
    /// Exact up to this many matches; beyond, the total is this many and
    /// [`TotalRelation::AtLeast`] (Elasticsearch's `"relation": "gte"`).
    UpTo(u64),
    /// The total is 0, [`TotalRelation::AtLeast`].
    NotNeeded,
}

/// Whether [`SearchResults::total`] is every match or a lower bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TotalRelation {
    /// Every match was counted (`"eq"`).
    #[default]
    Exact,
    /// At least this many matched (`"gte"`): counting stopped at [`Total::UpTo`]'s bound, or
    /// was not asked for.
    AtLeast,
}

impl SearchQuery {
    /// Everything in a time range, no page.
    pub fn range(from_ms: Option<i64>, to_ms: Option<i64>) -> SearchQuery {
        SearchQuery {
            from_ms,
            to_ms,
            ..SearchQuery::default()
        }
    }

    /// The same search narrowed by one more filter.
    pub fn and(&self, filter: Filter) -> SearchQuery {
        let mut narrowed = self.clone();
        narrowed.filters.push(filter);
        narrowed
    }

    /// The filters a store applies: the query's own, plus the sort field's presence.
    pub fn effective_filters(&self) -> Vec<Filter> {
        let mut filters = self.filters.clone();
        if let SortField::Field(field) = self.sort.field {
            filters.push(Filter::Exists(field));
        }
        filters
    }
}

/// One hit: the stored document and its place in the order, which includes its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub source: Vec<u8>,
    pub sort: SortKey,
}

impl Hit {
    pub fn id(&self) -> &str {
        &self.sort.id
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResults {
    /// Every match, not only the page returned, as far as [`SearchQuery::total`] asked.
    pub total: u64,
    pub total_relation: TotalRelation,
    pub hits: Vec<Hit>,
}

/// How many matching events have one value of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes documents (a document with an id already present replaces it) and returns once
    /// they are durable; they are searchable at once in tantivy, after the next refresh (1 s by
    /// default) in Elasticsearch. Shared, so a failed write can be retried as is.
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError>;

    /// Takes documents as [`index`](EventStore::index) does, without waiting for them to be
    /// durable: they are once [`commit`](EventStore::commit) returns. A store that makes each
    /// write durable (Elasticsearch acknowledges a `_bulk` request once it is) indexes here.
    /// After a failed `write` or `commit`, what was written since the last commit may be lost:
    /// the caller writes it again.
    async fn write(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        self.index(documents).await
    }

    /// Makes everything [`write`](EventStore::write) took durable and searchable, at once: the
    /// embedded store commits many batches together, which makes fewer, larger segments.
    async fn commit(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError>;

    /// Runs `aggregations` over the events `query` matches (its text, filters and time range;
    /// not its order or page).
    async fn aggregate(
        &self,
        query: &SearchQuery,
        aggregations: &Aggregations,
    ) -> Result<AggregationResults, StoreError>;

    /// The `size` most frequent values of `field` among the events `query` matches, most
    /// frequent first.
    async fn count_by(
        &self,
        query: &SearchQuery,
        field: Field,
        size: usize,
    ) -> Result<Vec<ValueCount>, StoreError> {
        let mut request = Aggregations::new();
        request.insert("by".into(), Aggregation::terms(field, size));
        let results = self.aggregate(query, &request).await?;
        Ok(results
            .terms("by")
            .iter()
            .map(|bucket| ValueCount {
                value: bucket.value.clone(),
                count: bucket.count,
            })
            .collect())
    }

    /// Whether [`aggregate`](EventStore::aggregate) answers this from rollups kept as events
    /// were indexed ([`rollup`]) rather than by reading the events.
    fn answers_from_rollups(&self, _query: &SearchQuery, _aggregations: &Aggregations) -> bool {
        false
    }

    /// Whether the store answers; `/ready` reports it.
    async fn ready(&self) -> Result<(), StoreError>;

    /// Bytes on disk and the oldest event kept, for retention and its metrics.
    async fn usage(&self) -> Result<StoreUsage, StoreError>;

    /// Drops every event whose time is before `cutoff_ms`, a UTC day boundary, by whole
    /// partitions (daily indices, segments), and says how many events went. Retention
    /// ([`RetentionPolicy::enforce`]) is its one caller.
    async fn drop_before(&self, cutoff_ms: i64) -> Result<u64, StoreError>;

    /// Whether the store indexes [`StoreDocument::fields`]. One that reads the document itself
    /// (Elasticsearch maps it by its template) or keeps nothing is handed documents without
    /// them, which saves the processor typing values nobody reads.
    fn reads_field_values(&self) -> bool {
        true
    }
}
