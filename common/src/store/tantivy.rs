//! The embedded event store: a tantivy index on disk.
//!
//! Each document is indexed on the few fields searches filter on and stored whole as JSON bytes.
//! Writes go through one `IndexWriter` on a blocking thread; every batch ends with a commit and a
//! reader reload, so what [`EventStore::index`] acknowledged is durable and already searchable.
//! Ids are unique: a write deletes any earlier document with the same id first.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term, doc};

use super::{
    CountField, EventStore, Hit, IndexReport, SearchQuery, SearchResults, StoreDocument,
    StoreError, ValueCount, normalize_level,
};

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    timestamp: Field,
    log_type: Field,
    level: Field,
    service: Field,
    message: Field,
    error_message: Field,
    source: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        timestamp: builder.add_i64_field("timestamp_ms", INDEXED | FAST),
        log_type: builder.add_text_field("log_type", STRING | FAST),
        level: builder.add_text_field("level", STRING | FAST),
        service: builder.add_text_field("service", STRING | FAST),
        message: builder.add_text_field("message", TEXT),
        error_message: builder.add_text_field("error_message", TEXT),
        source: builder.add_bytes_field("source", STORED),
    };
    (builder.build(), fields)
}

#[derive(Clone)]
pub struct TantivyStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    index: Index,
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

impl TantivyStore {
    /// Opens the index in `dir`, creating it when the directory is empty. `writer_memory_bytes`
    /// bounds the indexing buffer (tantivy needs at least 15 MB).
    pub fn open(dir: &Path, writer_memory_bytes: usize) -> Result<TantivyStore, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: dir.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let (schema, fields) = schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| open_err(e.to_string()))?;
        let index = Index::open_or_create(directory, schema).map_err(|e| {
            open_err(format!(
                "{e} (an index written by another Sluice version? move it away to start afresh)"
            ))
        })?;
        let writer = index
            .writer_with_num_threads(1, writer_memory_bytes.max(15_000_000))
            .map_err(|e| open_err(format!("cannot take the index writer lock: {e}")))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: tantivy::TantivyError| open_err(e.to_string()))?;
        Ok(TantivyStore {
            inner: Arc::new(Inner {
                path: dir.to_owned(),
                index,
                fields,
                writer: Mutex::new(writer),
                reader,
            }),
        })
    }

    fn write(inner: &Inner, documents: &[StoreDocument]) -> Result<IndexReport, StoreError> {
        let f = inner.fields;
        let mut writer = inner
            .writer
            .lock()
            .map_err(|_| StoreError::Write("index writer poisoned by an earlier panic".into()))?;
        let count = documents.len();
        for document in documents {
            writer.delete_term(Term::from_field_text(f.id, &document.id));
            let mut tantivy_doc = doc!(
                f.id => document.id.as_str(),
                f.timestamp => document.timestamp_ms,
                f.log_type => document.log_type.as_str(),
                f.source => document.source.as_slice(),
            );
            if let Some(level) = &document.level {
                tantivy_doc.add_text(f.level, normalize_level(level));
            }
            if let Some(service) = &document.service {
                tantivy_doc.add_text(f.service, service);
            }
            if let Some(message) = &document.message {
                tantivy_doc.add_text(f.message, message);
            }
            if let Some(error_message) = &document.error_message {
                tantivy_doc.add_text(f.error_message, error_message);
            }
            writer
                .add_document(tantivy_doc)
                .map_err(|e| StoreError::Write(e.to_string()))?;
        }
        writer
            .commit()
            .map_err(|e| StoreError::Write(format!("commit: {e}")))?;
        drop(writer);
        inner
            .reader
            .reload()
            .map_err(|e| StoreError::Write(format!("reader reload: {e}")))?;
        Ok(IndexReport {
            indexed: count,
            rejected: Vec::new(),
        })
    }

    fn query(inner: &Inner, query: &SearchQuery) -> Result<Box<dyn Query>, StoreError> {
        let f = inner.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(text) = query.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let mut parser = QueryParser::for_index(&inner.index, vec![f.message, f.error_message]);
            parser.set_conjunction_by_default();
            let (parsed, _errors) = parser.parse_query_lenient(text);
            clauses.push((Occur::Must, parsed));
        }
        let mut exact = |field: Field, value: &str| {
            let term = Term::from_field_text(field, value);
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        };
        if let Some(log_type) = query.log_type {
            exact(f.log_type, log_type.as_str());
        }
        if let Some(level) = &query.level {
            exact(f.level, &normalize_level(level));
        }
        if let Some(service) = &query.service {
            exact(f.service, service);
        }
        if query.from_ms.is_some() || query.to_ms.is_some() {
            let bound = |ms: Option<i64>| {
                ms.map_or(Bound::Unbounded, |ms| {
                    Bound::Included(Term::from_field_i64(f.timestamp, ms))
                })
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(query.from_ms), bound(query.to_ms))),
            ));
        }
        Ok(match clauses.len() {
            0 => Box::new(AllQuery),
            _ => Box::new(BooleanQuery::new(clauses)),
        })
    }

    fn run_search(inner: &Inner, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let f = inner.fields;
        let searcher = inner.reader.searcher();
        let tantivy_query = Self::query(inner, query)?;
        let size = query.size.clamp(1, super::MAX_SEARCH_SIZE);
        let top = TopDocs::with_limit(size).order_by_fast_field::<i64>("timestamp_ms", Order::Desc);
        let (total, top_docs) = searcher
            .search(&tantivy_query, &(Count, top))
            .map_err(|e| StoreError::Search(e.to_string()))?;
        let mut hits = Vec::with_capacity(top_docs.len());
        if query.size > 0 {
            for (_, address) in top_docs {
                let stored: TantivyDocument = searcher
                    .doc(address)
                    .map_err(|e| StoreError::Search(e.to_string()))?;
                let id = stored
                    .get_first(f.id)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let source = stored
                    .get_first(f.source)
                    .and_then(|v| v.as_bytes().map(<[u8]>::to_vec))
                    .unwrap_or_default();
                hits.push(Hit { id, source });
            }
        }
        Ok(SearchResults {
            total: total as u64,
            hits,
        })
    }
}

impl TantivyStore {
    fn run_count(
        inner: &Inner,
        query: &SearchQuery,
        field: CountField,
        size: usize,
    ) -> Result<Vec<ValueCount>, StoreError> {
        let searcher = inner.reader.searcher();
        let tantivy_query = Self::query(inner, query)?;
        let request: Aggregations = serde_json::from_value(
            serde_json::json!({ "by": super::terms_aggregation(field, size) }),
        )
        .map_err(|e| StoreError::Search(format!("aggregation request: {e}")))?;
        let collector = AggregationCollector::from_aggs(request, AggregationLimitsGuard::default());
        let results = searcher
            .search(&tantivy_query, &collector)
            .map_err(|e| StoreError::Search(e.to_string()))?;
        let answer = serde_json::to_value(results)
            .map_err(|e| StoreError::Search(format!("aggregation answer: {e}")))?;
        super::read_terms(&answer["by"], field)
    }
}

#[async_trait]
impl EventStore for TantivyStore {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        if documents.is_empty() {
            return Ok(IndexReport::default());
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || Self::write(&inner, &documents))
            .await
            .map_err(|e| StoreError::Write(format!("indexing thread failed: {e}")))?
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::task::spawn_blocking(move || Self::run_search(&inner, &query))
            .await
            .map_err(|e| StoreError::Search(format!("search thread failed: {e}")))?
    }

    async fn count_by(
        &self,
        query: &SearchQuery,
        field: CountField,
        size: usize,
    ) -> Result<Vec<ValueCount>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::task::spawn_blocking(move || Self::run_count(&inner, &query, field, size))
            .await
            .map_err(|e| StoreError::Search(format!("search thread failed: {e}")))?
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if self.inner.path.is_dir() {
            Ok(())
        } else {
            Err(StoreError::Open {
                path: self.inner.path.display().to_string(),
                detail: "index directory is gone".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogType;
    use crate::store::conformance::document;

    #[tokio::test]
    async fn tantivy_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        crate::store::conformance::run(&store, || async {}).await;
    }

    #[tokio::test]
    async fn reopening_keeps_committed_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
            store
                .index(Arc::new(vec![document(
                    "x",
                    5,
                    LogType::Error,
                    "ERROR",
                    "kept",
                )]))
                .await
                .expect("index");
        }
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("reopens");
        let all = SearchQuery {
            size: 10,
            ..SearchQuery::default()
        };
        assert_eq!(store.search(&all).await.expect("search").total, 1);
    }
}
