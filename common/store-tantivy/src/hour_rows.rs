//! Where each hour's events lie in a segment, as a range of document ids, found once per segment
//! and hour, so that a window's ragged edges scan those rows of the timestamp column, not all.
//!
//! A month-long question rolls up its partial first and last hours from the events; finding them
//! scanned every row of the timestamp column of each segment with events in those hours, a
//! fifth of a dashboard question at 50 M events. Events arrive roughly in time order, so an
//! hour's documents sit close together in a segment; the edges move through an hour minute by
//! minute, so the hour's rows, found by the first question, serve every later one. A merged
//! segment holds the runs of the segments it merged one after another, so an hour's documents
//! lie in a few runs, kept as such. A segment's timestamps never change (it only loses
//! documents), so what is found holds while it lives.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sluice_store::rollup::HOUR_MS;
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

/// Documents this close are kept as one run: fewer runs to keep, a few more rows to scan.
const MOST_SKIPPED: DocId = 4_096;

/// How many (segment, hour) rows are kept before all are forgotten: a few MB. Dashboards ask a
/// handful of edge hours at a time; a long-lived segment sees new ones every hour, and rows
/// found again cost one scan each.
const MOST_KEPT: usize = 1 << 16;

/// A segment's documents in one hour (its start, epoch ms), as ascending disjoint runs: none
/// when it has no event there.
type Found = HashMap<(SegmentId, i64), Vec<Range<DocId>>>;

/// The rows found, by segment and hour.
#[derive(Default)]
pub(super) struct HourRows {
    found: Mutex<Found>,
}

impl HourRows {
    /// Appends to `docs` the documents of `reader` with a timestamp in `from_ms..=to_ms`, in
    /// ascending order (as the column's own range scan, which it narrows).
    pub fn docs_within(
        &self,
        reader: &SegmentReader,
        timestamps: &Column<i64>,
        from_ms: i64,
        to_ms: i64,
        docs: &mut Vec<DocId>,
    ) {
        if from_ms > to_ms {
            return;
        }
        let mut runs: Vec<Range<DocId>> = Vec::new();
        let mut hour = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
        while hour <= to_ms {
            runs.extend(self.rows_of(reader, timestamps, hour));
            hour = hour.saturating_add(HOUR_MS);
        }
        // The hours' runs may interleave: each row is scanned once, in order.
        runs.sort_by_key(|run| run.start);
        let mut scanned: Option<Range<DocId>> = None;
        for run in runs {
            match &mut scanned {
                Some(current) if run.start <= current.end => current.end = current.end.max(run.end),
                _ => {
                    if let Some(done) = scanned.replace(run) {
                        timestamps.get_docids_for_value_range(from_ms..=to_ms, done, docs);
                    }
                }
            }
        }
        if let Some(last) = scanned {
            timestamps.get_docids_for_value_range(from_ms..=to_ms, last, docs);
        }
    }

    /// The runs of documents of the hour that starts at `hour`.
    fn rows_of(
        &self,
        reader: &SegmentReader,
        timestamps: &Column<i64>,
        hour: i64,
    ) -> Vec<Range<DocId>> {
        let key = (reader.segment_id(), hour);
        if let Some(found) = self.lock().get(&key) {
            return found.clone();
        }
        let mut docs = Vec::new();
        timestamps.get_docids_for_value_range(
            hour..=hour.saturating_add(HOUR_MS - 1),
            0..reader.max_doc(),
            &mut docs,
        );
        let found = runs_of(&docs);
        let mut kept = self.lock();
        if kept.len() >= MOST_KEPT {
            kept.clear();
        }
        kept.insert(key, found.clone());
        found
    }

    /// Forgets the segments that are gone.
    pub fn keep_only(&self, present: &[SegmentId]) {
        self.lock()
            .retain(|(segment, _), _| present.contains(segment));
    }

    fn lock(&self) -> MutexGuard<'_, Found> {
        self.found.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `docs` (ascending) as runs, each from a document to the one after the last within
/// [`MOST_SKIPPED`] of the one before.
fn runs_of(docs: &[DocId]) -> Vec<Range<DocId>> {
    let mut runs: Vec<Range<DocId>> = Vec::new();
    for &doc in docs {
        match runs.last_mut() {
            Some(run) if doc < run.end.saturating_add(MOST_SKIPPED) => {
                run.end = run.end.max(doc + 1);
            }
            _ => runs.push(doc..doc + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{FAST, Schema};
    use tantivy::{Index, TantivyDocument};

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    /// Two runs of events over the same hours one after the other, as in a merged segment, the
    /// first with every tenth event arriving up to three hours late, and hours with no event
    /// at all: whatever the order, the narrowed scan finds what a scan of every row does,
    /// asked once or again.
    #[test]
    fn edges_find_the_documents_a_scan_of_every_row_does() {
        let mut schema = Schema::builder();
        let timestamp = schema.add_i64_field("timestamp", FAST);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        let run = |late: bool| {
            (0..12_000i64).map(move |n| {
                let at = T0 + n * 1_200;
                match n % 10 {
                    0 if late => at - (n % 3 + 1) * HOUR_MS,
                    _ if (2 * HOUR_MS..3 * HOUR_MS).contains(&(at - T0)) => at + HOUR_MS,
                    _ => at,
                }
            })
        };
        let times: Vec<i64> = run(true).chain(run(false)).collect();
        for at in &times {
            let mut document = TantivyDocument::new();
            document.add_i64(timestamp, *at);
            writer.add_document(document).expect("adds");
        }
        writer.commit().expect("commits");
        let searcher = index.reader().expect("reader").searcher();
        let reader = searcher.segment_reader(0);
        let column = reader.fast_fields().i64("timestamp").expect("column");

        let windows = [
            (T0 + 1_000, T0 + 1_000),
            (T0 + 123_456, T0 + HOUR_MS - 1),
            (T0 + HOUR_MS - 60_000, T0 + HOUR_MS + 60_000),
            (T0 + 2 * HOUR_MS + 5, T0 + 2 * HOUR_MS + 600_000),
            (T0 - 3 * HOUR_MS, T0 + 4 * HOUR_MS),
            (T0 + 3 * HOUR_MS + 7, T0 + 3 * HOUR_MS + 7),
            (T0 + 9 * HOUR_MS, T0 + 10 * HOUR_MS),
        ];
        let rows = HourRows::default();
        for round in ["first", "again"] {
            for (from_ms, to_ms) in windows {
                let mut all = Vec::new();
                column.get_docids_for_value_range(from_ms..=to_ms, 0..reader.max_doc(), &mut all);
                let mut narrowed = Vec::new();
                rows.docs_within(reader, &column, from_ms, to_ms, &mut narrowed);
                assert_eq!(narrowed, all, "{round}: {from_ms}..={to_ms}");
            }
        }
        assert_eq!(
            rows.rows_of(reader, &column, T0 + 3 * HOUR_MS).len(),
            2,
            "an hour of each run"
        );
        let found = times
            .iter()
            .filter(|at| (T0 + 123_456..T0 + HOUR_MS).contains(*at))
            .count();
        assert!(found > 100, "the windows hold events: {found}");
    }
}
