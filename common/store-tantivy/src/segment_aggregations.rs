//! Aggregations run a segment at a time, and what a large segment gave is kept while it lives.
//!
//! A segment never changes except by losing documents to deletions, so what an aggregation found
//! in it, for a question whose time window covers the whole segment, holds until the segment is
//! merged away or loses a document. Dashboards ask the same questions over long windows again and
//! again while events keep arriving; with these results kept, a repeated question reads only the
//! segments written since. (Elasticsearch's shard request cache keeps whole answers and drops
//! them at every refresh; kept per segment, they survive new events.) Small segments are not
//! kept: they are cheap to read and soon merged.
//!
//! A window back from now starts inside its oldest segment and moves with every request. That
//! segment's part is cut at the first hour boundary after the start: what lies after the
//! boundary is the same question for the whole hour and is kept; only the slice before it, at
//! most an hour of events, is read each time.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use tantivy::SegmentReader;
use tantivy::aggregation::DistributedAggregationCollector;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::collector::Collector;
use tantivy::index::SegmentId;
use tantivy::query::Weight;

use super::window::{Overlap, overlap, time_bounds};

/// Segments smaller than this are read every time.
const MIN_KEPT_DOCS: u32 = 50_000;
/// Where a window's start is cut: the part after the next boundary is kept.
const SLICE_MS: i64 = 3_600_000;

/// The first slice boundary after `from_ms`.
pub(super) fn next_boundary(from_ms: i64) -> i64 {
    from_ms
        .div_euclid(SLICE_MS)
        .saturating_add(1)
        .saturating_mul(SLICE_MS)
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    segment: SegmentId,
    /// Deletions only ever grow, so the same count means the same live documents.
    deleted: u32,
    question: Arc<str>,
    /// Where the part kept starts, for a segment across the window's start.
    from_ms: Option<i64>,
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
    /// The question cut at the boundary after the window's start, when it has one.
    pub edge: Option<&'a Edge>,
}

/// A question's window, cut at the first slice boundary after its start.
pub(super) struct Edge {
    pub boundary: i64,
    /// From the window's start to just before the boundary.
    pub before: Box<dyn Weight>,
    /// From the boundary to the window's end.
    pub after: Box<dyn Weight>,
}

impl SegmentAggregations {
    /// Keeping up to `results` results (none for 0).
    pub fn new(results: usize) -> SegmentAggregations {
        SegmentAggregations {
            kept: NonZeroUsize::new(results).map(|results| Mutex::new(LruCache::new(results))),
        }
    }

    /// Whether any result is kept at all.
    pub fn keeps(&self) -> bool {
        self.kept.is_some()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |kept| kept.len())
    }

    /// The question's result in one segment, kept or computed, and whether a kept result served.
    pub fn segment(
        &self,
        question: &Question<'_>,
        ordinal: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<(IntermediateAggregationResults, bool)> {
        if self.keeps() && reader.max_doc() >= MIN_KEPT_DOCS {
            match overlap(reader, question.from_ms, question.to_ms)? {
                Overlap::Inside => {
                    return self.kept_or_computed(question, question.weight, None, ordinal, reader);
                }
                Overlap::Across => {
                    if let Some(edge) = question.edge
                        && Self::spans_boundary(reader, edge.boundary, question.to_ms)?
                    {
                        let (after, reused) = self.kept_or_computed(
                            question,
                            edge.after.as_ref(),
                            Some(edge.boundary),
                            ordinal,
                            reader,
                        )?;
                        let mut result = question.collector.collect_segment(
                            edge.before.as_ref(),
                            ordinal,
                            reader,
                        )??;
                        result.merge_fruits(after)?;
                        return Ok((result, reused));
                    }
                }
                Overlap::Outside => {}
            }
        }
        let result = question
            .collector
            .collect_segment(question.weight, ordinal, reader)??;
        Ok((result, false))
    }

    /// Whether the segment's events run past the boundary and end within the window: then its
    /// part after the boundary does not move with the window's start.
    fn spans_boundary(
        reader: &SegmentReader,
        boundary: i64,
        to_ms: Option<i64>,
    ) -> tantivy::Result<bool> {
        Ok(time_bounds(reader)?
            .is_some_and(|(_, last)| boundary <= last && to_ms.is_none_or(|to_ms| last <= to_ms)))
    }

    fn kept_or_computed(
        &self,
        question: &Question<'_>,
        weight: &dyn Weight,
        from_ms: Option<i64>,
        ordinal: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<(IntermediateAggregationResults, bool)> {
        let key = Key {
            segment: reader.segment_id(),
            deleted: reader.num_deleted_docs(),
            question: Arc::clone(&question.text),
            from_ms,
        };
        if let Some(kept) = self.lock().and_then(|mut kept| kept.get(&key).cloned()) {
            return Ok((kept, true));
        }
        let result = question
            .collector
            .collect_segment(weight, ordinal, reader)??;
        if let Some(mut kept) = self.lock() {
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
