//! Queries answered from what a segment already knows — its count of documents, a fast column's
//! index of the documents that have a value, a document's own value — where tantivy's general
//! queries read every document.
//!
//! - [`EveryDocument`] matches all and counts without reading: tantivy's `AllQuery` counts by
//!   stepping through every document, which an unfiltered sorted search paid in every segment.
//! - [`HasValueQuery`] (a filter on a field's presence, and every sort on a field) lists the
//!   documents the column's index holds and counts them without listing. tantivy's
//!   `ExistsQuery` tests document by document and, sizing itself at zero, leads every
//!   intersection it is part of.
//! - [`CheckedRangesQuery`]: a numeric range beside a query that narrows the segment (`country`
//!   and `log_type` with `amount >= 50`) is checked on each proposed document's own value, as
//!   Elasticsearch's `IndexOrDocValuesQuery` does when another clause leads. tantivy's fast-field
//!   range lists the documents in range a block of the column at a time, and does so afresh
//!   for every document the other clauses propose. Where nothing narrows the segment the range
//!   still lists its documents from the column.

use std::ops::{Bound, RangeBounds};

use tantivy::columnar::ColumnIndex;
use tantivy::columnar::column_index::{OptionalIndex, Set};
use tantivy::query::{
    AllScorer, ConstScorer, EmptyScorer, EnableScoring, ExistsQuery, Explanation, Query,
    RangeQuery, Scorer, Weight, intersect_scorers,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

use super::open_columns::OpenColumns;
use super::sorted::{ValueType, Values};

/// A proposed document's value is checked when the rest of the query proposes at most one in
/// this many of the segment's documents; above that, listing the range from the column is the
/// cheaper side of the intersection.
const SELECTIVE_SHARE: u32 = 8;
/// Documents of a column's index listed at a time.
const BATCH: u32 = 1024;

fn explained(
    weight: &dyn Weight,
    reader: &SegmentReader,
    doc: DocId,
    name: &'static str,
) -> tantivy::Result<Explanation> {
    let mut scorer = weight.scorer(reader, 1.0)?;
    if scorer.seek(doc) != doc {
        return Err(TantivyError::InvalidArgument(format!(
            "document {doc} does not match"
        )));
    }
    Ok(Explanation::new(name, scorer.score()))
}

/// Every document.
#[derive(Clone, Debug)]
pub(super) struct EveryDocument;

struct EveryDocumentWeight;

impl Query for EveryDocument {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(EveryDocumentWeight))
    }
}

impl Weight for EveryDocumentWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(AllScorer::new(reader.max_doc())))
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        Ok(reader.num_docs())
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explained(self, reader, doc, "every document")
    }
}

/// The documents with a value in a fast field.
#[derive(Clone, Debug)]
pub(super) struct HasValueQuery {
    field: String,
}

impl HasValueQuery {
    pub fn new(field: String) -> HasValueQuery {
        HasValueQuery { field }
    }
}

impl Query for HasValueQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(HasValueWeight {
            field: self.field.clone(),
            general: ExistsQuery::new(self.field.clone(), false).weight(scoring)?,
        }))
    }
}

struct HasValueWeight {
    field: String,
    /// For a field stored in several columns or with several values per document, which
    /// Sluice's schema does not make.
    general: Box<dyn Weight>,
}

/// Which of a segment's documents have a value.
enum Present {
    None,
    All,
    Some(OptionalIndex),
    Unusual,
}

impl HasValueWeight {
    fn present(&self, reader: &SegmentReader) -> tantivy::Result<Present> {
        let mut indexes = Vec::new();
        for handle in reader.fast_fields().dynamic_column_handles(&self.field)? {
            let column = handle.open()?;
            if !matches!(column.column_index(), ColumnIndex::Empty { .. }) {
                indexes.push(column.column_index().clone());
            }
        }
        Ok(match (indexes.pop(), indexes.is_empty()) {
            (None, _) => Present::None,
            (Some(ColumnIndex::Full), true) => Present::All,
            (Some(ColumnIndex::Optional(index)), true) => Present::Some(index),
            _ => Present::Unusual,
        })
    }
}

impl Weight for HasValueWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.present(reader)? {
            Present::None => Box::new(EmptyScorer),
            Present::All => Box::new(AllScorer::new(reader.max_doc())),
            Present::Some(index) => Box::new(ConstScorer::new(PresentDocs::new(index), boost)),
            Present::Unusual => self.general.scorer(reader, boost)?,
        })
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        let alive = reader.alive_bitset();
        Ok(match (self.present(reader)?, alive) {
            (Present::None, _) => 0,
            (Present::All, _) => reader.num_docs(),
            (Present::Some(index), None) => index.num_non_nulls(),
            (Present::Some(index), Some(alive)) => PresentDocs::new(index).count(alive),
            (Present::Unusual, _) => self.general.count(reader)?,
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explained(self, reader, doc, "has a value")
    }
}

/// The documents an optional column's index holds, listed a batch at a time.
struct PresentDocs {
    index: OptionalIndex,
    /// Listed documents, ascending; `position` is the current one.
    listed: Vec<DocId>,
    position: usize,
    /// The rank of the first document not yet listed.
    next_rank: u32,
}

impl PresentDocs {
    fn new(index: OptionalIndex) -> PresentDocs {
        let mut docs = PresentDocs {
            index,
            listed: Vec::with_capacity(BATCH as usize),
            position: 0,
            next_rank: 0,
        };
        docs.list_from(0);
        docs
    }

    fn list_from(&mut self, rank: u32) {
        let end = rank.saturating_add(BATCH).min(self.index.num_non_nulls());
        self.listed.clear();
        self.listed.extend(rank..end);
        self.index.select_batch(&mut self.listed);
        self.position = 0;
        self.next_rank = end;
    }
}

impl DocSet for PresentDocs {
    fn advance(&mut self) -> DocId {
        self.position += 1;
        if self.position >= self.listed.len() && self.next_rank < self.index.num_non_nulls() {
            self.list_from(self.next_rank);
        }
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc() >= target {
            return self.doc();
        }
        match self.listed.last() {
            Some(&last) if last >= target => {
                self.position += self.listed[self.position..].partition_point(|&doc| doc < target);
            }
            _ => {
                let rank = self.index.rank(target);
                if rank >= self.index.num_non_nulls() {
                    self.listed.clear();
                    self.position = 0;
                    self.next_rank = rank;
                } else {
                    self.list_from(rank);
                }
            }
        }
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.listed
            .get(self.position)
            .copied()
            .unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.index.num_non_nulls()
    }
}

/// A number within bounds, in a field's fast column.
#[derive(Clone, Debug)]
pub(super) struct NumericRange {
    pub field: String,
    pub value_type: ValueType,
    pub lower: Bound<f64>,
    pub upper: Bound<f64>,
    /// The same range as tantivy's query, which lists the documents in range from the column.
    pub listing: RangeQuery,
}

impl NumericRange {
    fn holds(&self, value: f64) -> bool {
        (self.lower, self.upper).contains(&value)
    }
}

/// The documents `lead` matches whose values lie within every one of `ranges`.
#[derive(Debug)]
pub(super) struct CheckedRangesQuery {
    pub lead: Box<dyn Query>,
    pub ranges: Vec<NumericRange>,
}

impl Clone for CheckedRangesQuery {
    fn clone(&self) -> Self {
        CheckedRangesQuery {
            lead: self.lead.box_clone(),
            ranges: self.ranges.clone(),
        }
    }
}

impl Query for CheckedRangesQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(CheckedRangesWeight {
            lead: self.lead.weight(scoring)?,
            ranges: self
                .ranges
                .iter()
                .map(|range| Ok((range.clone(), range.listing.weight(scoring)?)))
                .collect::<tantivy::Result<_>>()?,
        }))
    }
}

struct CheckedRangesWeight {
    lead: Box<dyn Weight>,
    ranges: Vec<(NumericRange, Box<dyn Weight>)>,
}

impl Weight for CheckedRangesWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let lead = self.lead.scorer(reader, boost)?;
        if lead.size_hint().saturating_mul(SELECTIVE_SHARE) > reader.max_doc() {
            let mut scorers = vec![lead];
            for (_, listing) in &self.ranges {
                scorers.push(listing.scorer(reader, boost)?);
            }
            return Ok(intersect_scorers(scorers));
        }
        let mut checks = Vec::with_capacity(self.ranges.len());
        for (range, _) in &self.ranges {
            match Values::open(
                reader,
                &range.field,
                range.value_type,
                &OpenColumns::passing(),
            )? {
                Some(values) => checks.push((range.clone(), values)),
                // No document of the segment has the field: none is in range.
                None => return Ok(Box::new(EmptyScorer)),
            }
        }
        let mut scorer = CheckedScorer { lead, checks };
        scorer.settle();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explained(self, reader, doc, "within ranges")
    }
}

struct CheckedScorer {
    lead: Box<dyn Scorer>,
    checks: Vec<(NumericRange, Values)>,
}

impl CheckedScorer {
    /// Moves the lead on to the first of its documents, from where it is, that every check holds.
    fn settle(&mut self) -> DocId {
        let mut doc = self.lead.doc();
        while doc != TERMINATED
            && !self
                .checks
                .iter()
                .all(|(range, values)| values.first(doc).is_some_and(|value| range.holds(value)))
        {
            doc = self.lead.advance();
        }
        doc
    }
}

impl DocSet for CheckedScorer {
    fn advance(&mut self) -> DocId {
        self.lead.advance();
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.lead.seek(target);
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.lead.doc()
    }

    fn size_hint(&self) -> u32 {
        self.lead.size_hint()
    }
}

impl Scorer for CheckedScorer {
    fn score(&mut self) -> Score {
        self.lead.score()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tantivy::collector::{Count, DocSetCollector};
    use tantivy::query::{BooleanQuery, ExistsQuery, Occur, TermQuery};
    use tantivy::schema::{FAST, IndexRecordOption, STRING, Schema};
    use tantivy::{DocAddress, Index, IndexWriter, Searcher, TantivyDocument, Term, doc};

    use super::*;

    /// 20,000 documents over a few segments: `n` on two in three (a value from the document's
    /// number), `kind` a term on one in `k`, and every 7th document deleted.
    fn searcher() -> (Searcher, tantivy::schema::Field, tantivy::schema::Field) {
        let mut schema = Schema::builder();
        let n = schema.add_i64_field("n", FAST);
        let kind = schema.add_text_field("kind", STRING | FAST);
        let id = schema.add_u64_field("id", tantivy::schema::INDEXED);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for i in 0..20_000_u64 {
            let mut document = doc!(id => i);
            if i % 3 != 0 {
                document.add_i64(n, (i * 7919 % 1000) as i64);
            }
            let k = if i % 50 == 0 {
                "rare"
            } else if i % 2 == 0 {
                "even"
            } else {
                "odd"
            };
            document.add_text(kind, k);
            writer.add_document(document).expect("add");
            if i % 6_000 == 5_999 {
                writer.commit().expect("commit");
            }
        }
        for i in (0..20_000_u64).step_by(7) {
            writer.delete_term(Term::from_field_u64(id, i));
        }
        writer.commit().expect("commit");
        let searcher = index.reader().expect("reader").searcher();
        assert!(searcher.segment_readers().len() > 1);
        (searcher, n, kind)
    }

    fn matches(searcher: &Searcher, query: &dyn Query) -> (HashSet<DocAddress>, usize) {
        let docs = searcher.search(query, &DocSetCollector).expect("search");
        let count = searcher.search(query, &Count).expect("count");
        (docs, count)
    }

    fn range(n: tantivy::schema::Field, lower: Bound<f64>, upper: Bound<f64>) -> NumericRange {
        let term = |x: f64| Term::from_field_i64(n, x as i64);
        NumericRange {
            field: "n".into(),
            value_type: ValueType::I64,
            lower,
            upper,
            listing: RangeQuery::new(lower.map(term), upper.map(term)),
        }
    }

    #[test]
    fn has_value_and_every_document_match_and_count_as_tantivy_does() {
        let (searcher, _, _) = searcher();
        let (docs, count) = matches(&searcher, &HasValueQuery::new("n".into()));
        let expected = matches(&searcher, &ExistsQuery::new("n".into(), false));
        assert_eq!((docs.len(), count), (expected.0.len(), expected.1));
        assert_eq!(docs, expected.0);
        let (docs, count) = matches(&searcher, &EveryDocument);
        assert_eq!(count, docs.len());
        assert_eq!(count as u64, searcher.num_docs());
        // Seeking past gaps and batches lands on the next document with a value.
        let reader = &searcher.segment_readers()[0];
        let weight = HasValueQuery::new("n".into())
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .expect("weight");
        let mut scorer = weight.scorer(reader, 1.0).expect("scorer");
        assert_eq!(scorer.doc(), 1);
        assert_eq!(scorer.seek(3), 4);
        assert_eq!(scorer.seek(3_000), 3_001);
        assert_eq!(scorer.advance(), 3_002);
        assert_eq!(scorer.seek(5_999), 5_999);
        assert_eq!(scorer.advance(), TERMINATED);
    }

    /// Checked beside a rare term or listed beside a common one, ranges match what tantivy's
    /// intersection does, bounds included or excluded.
    #[test]
    fn checked_ranges_match_the_intersection() {
        let (searcher, n, kind) = searcher();
        for term in ["rare", "even"] {
            for (lower, upper) in [
                (Bound::Included(100.0), Bound::Included(400.0)),
                (Bound::Excluded(100.0), Bound::Excluded(400.0)),
                (Bound::Unbounded, Bound::Included(10.0)),
                (Bound::Included(900.0), Bound::Unbounded),
            ] {
                let lead =
                    TermQuery::new(Term::from_field_text(kind, term), IndexRecordOption::Basic);
                let ranges = vec![
                    range(n, lower, upper),
                    range(n, Bound::Unbounded, Bound::Included(995.0)),
                ];
                let expected = BooleanQuery::new(
                    std::iter::once(Box::new(lead.clone()) as Box<dyn Query>)
                        .chain(
                            ranges
                                .iter()
                                .map(|r| Box::new(r.listing.clone()) as Box<dyn Query>),
                        )
                        .map(|q| (Occur::Must, q))
                        .collect(),
                );
                let checked = CheckedRangesQuery {
                    lead: Box::new(lead),
                    ranges,
                };
                let (docs, count) = matches(&searcher, &checked);
                let (expected_docs, expected_count) = matches(&searcher, &expected);
                assert!(expected_count > 0, "{term} {lower:?} {upper:?}");
                assert_eq!(count, expected_count, "{term} {lower:?} {upper:?}");
                assert_eq!(docs, expected_docs, "{term} {lower:?} {upper:?}");
            }
        }
    }
}
