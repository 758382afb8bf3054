//! The time window of a search or aggregation, decided per segment.
//!
//! tantivy's range query reads the time column of every document, even in a segment whose
//! events all lie inside the window, which is most segments of a long window (events arrive
//! roughly in time order, so segments cover spans of time). A segment entirely inside the window
//! matches all its documents and one entirely outside matches none; only a segment across an
//! edge is read document by document.

use std::ops::Bound;

use tantivy::query::{
    AllScorer, EmptyScorer, EnableScoring, Explanation, Query, RangeQuery, Scorer, Weight,
};
use tantivy::{DocId, Score, SegmentReader, Term};

use super::schema::TIMESTAMP;

#[derive(Clone, Debug)]
pub(super) struct WindowQuery {
    pub range: RangeQuery,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl WindowQuery {
    pub fn new(
        timestamp: tantivy::schema::Field,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Self {
        let bound = |ms: Option<i64>| {
            ms.map_or(Bound::Unbounded, |ms| {
                Bound::Included(Term::from_field_i64(timestamp, ms))
            })
        };
        WindowQuery {
            range: RangeQuery::new(bound(from_ms), bound(to_ms)),
            from_ms,
            to_ms,
        }
    }
}

impl Query for WindowQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(WindowWeight {
            range: self.range.weight(enable_scoring)?,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
        }))
    }
}

struct WindowWeight {
    range: Box<dyn Weight>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

/// Where a segment's events lie against the window.
pub(super) enum Overlap {
    Inside,
    Outside,
    Across,
}

/// The first and last event time in the segment; `None` when it has no events. The bounds
/// include deleted documents: wider than the live ones, never narrower.
pub(super) fn time_bounds(reader: &SegmentReader) -> tantivy::Result<Option<(i64, i64)>> {
    Ok(reader
        .fast_fields()
        .column_opt::<i64>(TIMESTAMP)?
        .map(|column| (column.min_value(), column.max_value())))
}

/// Where the segment's events lie against the window (an open end is unbounded).
pub(super) fn overlap(
    reader: &SegmentReader,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> tantivy::Result<Overlap> {
    let Some((first, last)) = time_bounds(reader)? else {
        return Ok(Overlap::Outside);
    };
    let (from_ms, to_ms) = (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX));
    Ok(if from_ms <= first && last <= to_ms {
        Overlap::Inside
    } else if last < from_ms || to_ms < first {
        Overlap::Outside
    } else {
        Overlap::Across
    })
}

impl Weight for WindowWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match overlap(reader, self.from_ms, self.to_ms)? {
            Overlap::Inside => Box::new(AllScorer::new(reader.max_doc())),
            Overlap::Outside => Box::new(EmptyScorer),
            Overlap::Across => self.range.scorer(reader, boost)?,
        })
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        match overlap(reader, self.from_ms, self.to_ms)? {
            Overlap::Inside => Ok(reader.num_docs()),
            Overlap::Outside => Ok(0),
            Overlap::Across => self.range.count(reader),
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.range.explain(reader, doc)
    }
}
