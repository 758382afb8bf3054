//! Keeping the embedded index partitioned by day, so that retention drops whole segments.
//!
//! tantivy has one index and no partitions, but its segments can be kept to one day each:
//! [`DayMergePolicy`] merges only segments whose newest events fall on the same UTC day. Events
//! mostly arrive close to their event time, so a segment written from live traffic holds one
//! day, and so does every merge of such segments. Dropping the days before a cutoff is then a
//! delete of every document in segments that lie wholly before it; tantivy removes a segment
//! left with no documents at the commit, files and all, without rewriting anything. A segment
//! that straddles the cutoff (a backfill of old events beside new ones) loses its old events by
//! tombstones, and a merge of its day reclaims them later.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use tantivy::Searcher;
use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::merge_policy::{LogMergePolicy, MergeCandidate, MergePolicy};

use super::window::time_bounds;
use sluice_store::retention::day_start;

/// The UTC day (its start, epoch ms) of each segment's newest event, as far as the store has
/// read it: segments appear here once a reader has seen them.
#[derive(Debug, Clone, Default)]
pub(super) struct SegmentDays(Arc<RwLock<HashMap<SegmentId, i64>>>);

impl SegmentDays {
    /// Reads the days of the searcher's segments not known yet and forgets segments that are
    /// gone (merged away or dropped).
    pub fn update(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let mut present = HashMap::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            let id = segment.segment_id();
            let day = match known.get(&id) {
                Some(day) => *day,
                None => match time_bounds(segment)? {
                    Some((_, newest)) => day_start(newest),
                    // A segment without events is removed at the next commit.
                    None => continue,
                },
            };
            present.insert(id, day);
        }
        *known = present;
        Ok(())
    }

    fn day_of(&self, segment: SegmentId) -> Option<i64> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&segment)
            .copied()
    }
}

/// tantivy's log merge policy within each day, never across days.
#[derive(Debug)]
pub(super) struct DayMergePolicy {
    pub within_a_day: LogMergePolicy,
    pub days: SegmentDays,
}

impl MergePolicy for DayMergePolicy {
    fn compute_merge_candidates(&self, segments: &[SegmentMeta]) -> Vec<MergeCandidate> {
        let mut by_day: BTreeMap<i64, Vec<SegmentMeta>> = BTreeMap::new();
        for segment in segments {
            // A segment no reader has seen yet (a merge that just ended) waits for the next
            // write's reload to be placed.
            if let Some(day) = self.days.day_of(segment.id()) {
                by_day.entry(day).or_default().push(segment.clone());
            }
        }
        by_day
            .values()
            .flat_map(|day| self.within_a_day.compute_merge_candidates(day))
            .collect()
    }
}
