//! Aggregations run a segment at a time, and what a large segment gave is kept while it lives.
//!
//! A segment never changes except by losing documents to deletions, so what an aggregation found
//! in it, for a question whose time window covers the whole segment, holds until the segment is
//! merged away or loses a document. Dashboards ask the same questions over long windows again and
//! again while events keep arriving; with these results kept, a repeated question reads only the
//! segments written since, and a segment across the window's edge. (Elasticsearch's shard request
//! cache keeps whole answers and drops them at every refresh; kept per segment, they survive new
//! events.) Small segments are not kept: they are cheap to read and soon merged.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use tantivy::SegmentReader;
use tantivy::aggregation::DistributedAggregationCollector;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::collector::Collector;
use tantivy::index::SegmentId;
use tantivy::query::Weight;

use super::window::{Overlap, overlap};

/// Segments smaller than this are read every time.
const MIN_KEPT_DOCS: u32 = 50_000;
/// Results kept by default, least recently used dropped first. A result is a few to a few
/// hundred kilobytes (a top list of up to 2,000 values, a distinct-count sketch of 16 KB).
pub(super) const DEFAULT_KEPT: usize = 256;

#[derive(Hash, PartialEq, Eq)]
struct Key {
    segment: SegmentId,
    /// Deletions only ever grow, so the same count means the same live documents.
    deleted: u32,
    question: Arc<str>,
}

pub(super) struct SegmentAggregations {
    /// `None` when nothing is kept.
    kept: Option<Mutex<LruCache<Key, IntermediateAggregationResults>>>,
}

/// One aggregation over one index: the question (the request and the query without its window,
/// which is decided per segment) and the time window.
pub(super) struct Question<'a> {
    pub text: Arc<str>,
    pub collector: &'a DistributedAggregationCollector,
    pub weight: &'a dyn Weight,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl SegmentAggregations {
    /// Keeping up to `results` results (none for 0).
    pub fn new(results: usize) -> SegmentAggregations {
        SegmentAggregations {
            kept: NonZeroUsize::new(results).map(|results| Mutex::new(LruCache::new(results))),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |kept| kept.len())
    }

    /// The question's result in one segment, kept or computed.
    pub fn segment(
        &self,
        question: &Question<'_>,
        ordinal: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<(IntermediateAggregationResults, bool)> {
        let key = match self.kept.is_some()
            && reader.max_doc() >= MIN_KEPT_DOCS
            && matches!(
                overlap(reader, question.from_ms, question.to_ms)?,
                Overlap::Inside
            ) {
            true => Some(Key {
                segment: reader.segment_id(),
                deleted: reader.num_deleted_docs(),
                question: Arc::clone(&question.text),
            }),
            false => None,
        };
        if let Some(key) = &key
            && let Some(kept) = self.lock().and_then(|mut kept| kept.get(key).cloned())
        {
            return Ok((kept, true));
        }
        let result = question
            .collector
            .collect_segment(question.weight, ordinal, reader)??;
        if let Some(key) = key
            && let Some(mut kept) = self.lock()
        {
            kept.put(key, result.clone());
        }
        Ok((result, false))
    }

    fn lock(&self) -> Option<MutexGuard<'_, LruCache<Key, IntermediateAggregationResults>>> {
        // A panic while holding the lock left at worst a missing entry: the map is still sound.
        self.kept
            .as_ref()
            .map(|kept| kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
