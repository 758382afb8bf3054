//! A store that acknowledges every document and keeps none (`store.url = null://`): for
//! measuring the queue and the processor without an index in the way. Searches find nothing.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AggregationResults, Aggregations, EventStore, IndexReport, SearchQuery, SearchResults,
    StoreDocument, StoreError, StoreUsage, aggregation,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct NullStore;

#[async_trait]
impl EventStore for NullStore {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        Ok(IndexReport {
            indexed: documents.len(),
            rejected: Vec::new(),
        })
    }

    async fn search(&self, _: &SearchQuery) -> Result<SearchResults, StoreError> {
        Ok(SearchResults::default())
    }

    async fn aggregate(
        &self,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        aggregation::read(request, None, query.from_ms, query.to_ms)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        Ok(StoreUsage::default())
    }

    async fn drop_before(&self, _: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn reads_field_values(&self) -> bool {
        false
    }
}
