//! The page of a sorted search: the best `limit` documents by (sort value, id), optionally only
//! those after a cursor.
//!
//! tantivy's `TopDocs` orders by one fast field and breaks ties by document address, which
//! differs between segments and changes as they merge; deep paging needs an order that is total
//! and stable, as Elasticsearch's `search_after` with an id tiebreaker has. Within a segment ids
//! compare by their term ordinal (the dictionary is sorted). Ids are read as text only where text
//! is needed: to break ties between segments, to compare with the cursor on an equal value, and
//! for the hits of the page itself.
//!
//! Most of a large index cannot make the page, and the search avoids reading it, as
//! Elasticsearch skips non-competitive documents:
//! - Segments are visited best first by their column's bounds (the newest first, for the
//!   newest-first order: events arrive roughly in time order). Once `limit` documents are kept,
//!   the worst of them is a bar: a segment whose best value is below it is only counted.
//! - In a segment partly above the bar, the column itself lists the few documents at or above
//!   it (and before the cursor), and only those are checked against the query.
//! - Where every document must be looked at, values are read a block at a time and kept in a
//!   buffer trimmed to the best `limit` whenever it doubles, which raises the segment's own bar.

use std::cmp::Ordering;

use tantivy::columnar::{Column, StrColumn};
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, Searcher, SegmentOrdinal, SegmentReader};

use sluice_store::{Field, SortKey, Total, TotalRelation};

use crate::open_columns::OpenColumns;
use crate::total::TotalCounter;

/// Above this share of a segment's documents, candidates from the column cost more than reading
/// the segment in blocks.
const MAX_CANDIDATE_SHARE: usize = 8;

/// A numeric column's type.
#[derive(Clone, Copy, Debug)]
pub(super) enum ValueType {
    I64,
    F64,
}

pub(super) struct SortedSearch {
    pub field: String,
    pub value_type: ValueType,
    pub descending: bool,
    pub after: Option<SortKey>,
    /// How many of the best to keep (offset + page size).
    pub limit: usize,
    /// How many of those are skipped (their ids are never read).
    pub offset: usize,
    /// How far to count matches: a segment that cannot make the page is skipped once the
    /// count is done.
    pub total: Total,
}

/// Larger is earlier in the order, for either direction: the value and the id's ordinal are
/// negated (flipped) for ascending order.
#[derive(Clone, Copy, PartialEq)]
struct Rank {
    value: f64,
    ord: u64,
    doc: DocId,
}

impl Eq for Rank {}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value
            .total_cmp(&other.value)
            .then(self.ord.cmp(&other.ord))
    }
}

/// A numeric fast column, its values read as f64.
pub(super) enum Values {
    I64(Column<i64>),
    F64(Column<f64>),
}

impl Values {
    /// The segment's column of `field`, if any document of the segment has one, from `columns`
    /// (kept per segment, or passing).
    pub fn open(
        reader: &SegmentReader,
        field: &str,
        value_type: ValueType,
        columns: &OpenColumns,
    ) -> tantivy::Result<Option<Values>> {
        Ok(match value_type {
            ValueType::I64 => columns.column::<i64>(reader, field)?.map(Values::I64),
            ValueType::F64 => columns.column::<f64>(reader, field)?.map(Values::F64),
        })
    }

    pub fn first(&self, doc: DocId) -> Option<f64> {
        match self {
            Values::I64(column) => column.first(doc).map(|v| v as f64),
            Values::F64(column) => column.first(doc),
        }
    }

    fn bounds(&self) -> (f64, f64) {
        match self {
            Values::I64(column) => (column.min_value() as f64, column.max_value() as f64),
            Values::F64(column) => (column.min_value(), column.max_value()),
        }
    }

    /// The documents (ascending) with a value in `low..=high`.
    fn docs_between(&self, low: f64, high: f64, max_doc: DocId, out: &mut Vec<DocId>) {
        out.clear();
        if low > high {
            return;
        }
        match self {
            Values::I64(column) => {
                let (low, high) = (low.ceil() as i64, high.floor() as i64);
                if low <= high {
                    column.get_docids_for_value_range(low..=high, 0..max_doc, out);
                }
            }
            Values::F64(column) => column.get_docids_for_value_range(low..=high, 0..max_doc, out),
        }
    }

    /// The first value of each of `docs`, as f64, into `out`.
    fn read(&self, docs: &[DocId], i64s: &mut Vec<Option<i64>>, out: &mut Vec<Option<f64>>) {
        out.clear();
        match self {
            Values::I64(column) => {
                i64s.clear();
                i64s.resize(docs.len(), None);
                column.first_vals(docs, i64s);
                out.extend(i64s.iter().map(|v| v.map(|v| v as f64)));
            }
            Values::F64(column) => {
                out.resize(docs.len(), None);
                column.first_vals(docs, out);
            }
        }
    }
}

/// One segment's pass: its best documents so far.
struct SegmentSorted<'a> {
    values: &'a Values,
    ids: Option<&'a StrColumn>,
    descending: bool,
    after: Option<&'a SortKey>,
    limit: usize,
    /// The best documents, up to twice `limit` between trims.
    best: Vec<Rank>,
    /// A ranked value below this cannot make the page.
    bar: f64,
    /// Every matching document, for the search's total.
    matched: u64,
    block_values: Vec<Option<f64>>,
    block_i64s: Vec<Option<i64>>,
    scratch: String,
}

impl SegmentSorted<'_> {
    fn ranked(&self, value: f64) -> f64 {
        if self.descending { value } else { -value }
    }

    fn ord_of(&self, doc: DocId) -> u64 {
        self.ids
            .and_then(|ids| ids.term_ords(doc).next())
            .unwrap_or(0)
    }

    /// Whether a document with this value and id ordinal comes after the cursor.
    fn after_cursor(&mut self, value: f64, ord: u64) -> bool {
        let Some(cursor) = self.after else {
            return true;
        };
        let order = match value.total_cmp(&cursor.value) {
            Ordering::Equal => {
                self.scratch.clear();
                let Some(ids) = self.ids else {
                    return false;
                };
                if !ids.ord_to_str(ord, &mut self.scratch).unwrap_or(false) {
                    return false;
                }
                self.scratch.as_str().cmp(cursor.id.as_str())
            }
            other => other,
        };
        match self.descending {
            true => order == Ordering::Less,
            false => order == Ordering::Greater,
        }
    }

    fn consider(&mut self, doc: DocId, value: f64) {
        let ranked_value = self.ranked(value);
        // A document below the bar cannot get in: no id read.
        if ranked_value < self.bar {
            return;
        }
        // Nor can one before the cursor, except on its exact value, where ids decide.
        if let Some(cursor) = self.after
            && self.ranked(cursor.value) < ranked_value
        {
            return;
        }
        let ord = self.ord_of(doc);
        if self.after.is_some_and(|cursor| cursor.value == value) && !self.after_cursor(value, ord)
        {
            return;
        }
        self.best.push(Rank {
            value: ranked_value,
            ord: if self.descending { ord } else { u64::MAX - ord },
            doc,
        });
        if self.best.len() >= 2 * self.limit {
            self.trim();
        }
    }

    /// Keeps the best `limit`, and raises the bar to the worst of them.
    fn trim(&mut self) {
        if self.best.len() > self.limit {
            self.best
                .select_nth_unstable_by(self.limit - 1, |a, b| b.cmp(a));
            self.best.truncate(self.limit);
            if let Some(worst) = self.best.iter().min() {
                self.bar = self.bar.max(worst.value);
            }
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.matched += docs.len() as u64;
        let mut block = std::mem::take(&mut self.block_values);
        let mut i64s = std::mem::take(&mut self.block_i64s);
        self.values.read(docs, &mut i64s, &mut block);
        for (doc, value) in docs.iter().zip(&block) {
            if let Some(value) = value {
                self.consider(*doc, *value);
            }
        }
        self.block_values = block;
        self.block_i64s = i64s;
    }

    fn harvest(mut self) -> Vec<Rank> {
        self.trim();
        self.best.sort_unstable_by(|a, b| b.cmp(a));
        self.best
    }
}

/// One segment's best documents, best first, with what it takes to read their ids later.
struct SegmentTop {
    segment: SegmentOrdinal,
    ranks: Vec<Rank>,
    ids: Option<StrColumn>,
}

/// A candidate from some segment, its id read only when needed.
struct Candidate<'a> {
    rank: Rank,
    top: &'a SegmentTop,
    id: Option<String>,
}

impl Candidate<'_> {
    fn id(&mut self, descending: bool) -> &str {
        if self.id.is_none() {
            let ord = if descending {
                self.rank.ord
            } else {
                u64::MAX - self.rank.ord
            };
            let mut text = String::new();
            if let Some(ids) = &self.top.ids {
                // The ordinal came from this column, so it resolves.
                let _ = ids.ord_to_str(ord, &mut text);
            }
            self.id = Some(text);
        }
        self.id.as_deref().unwrap_or_default()
    }
}

/// The page, and how many documents matched in all, as far as counted.
pub(super) struct SortedPage {
    pub total: u64,
    pub total_relation: TotalRelation,
    pub hits: Vec<(SortKey, DocAddress)>,
}

/// A segment to visit, with its column and the best ranked value in it.
struct Visit<'a> {
    segment: SegmentOrdinal,
    reader: &'a SegmentReader,
    values: Option<Values>,
    best: f64,
}

impl SortedSearch {
    /// The page, reading sort values and ids from `columns`: opening a segment's sort column
    /// reads its block index, which at 50 M events was a third of a dashboard's recent-errors
    /// list, for two hundred segments on every search.
    pub fn run(
        &self,
        searcher: &Searcher,
        weight: &dyn Weight,
        columns: &OpenColumns,
    ) -> tantivy::Result<SortedPage> {
        let mut visits = Vec::new();
        for (segment, reader) in searcher.segment_readers().iter().enumerate() {
            let values = Values::open(reader, &self.field, self.value_type, columns)?;
            let best = values.as_ref().map_or(f64::NEG_INFINITY, |values| {
                let (min, max) = values.bounds();
                if self.descending { max } else { -min }
            });
            visits.push(Visit {
                segment: segment as SegmentOrdinal,
                reader,
                values,
                best,
            });
        }
        visits.sort_by(|a, b| b.best.total_cmp(&a.best));

        let mut counter = TotalCounter::new(self.total);
        let mut tops = Vec::new();
        // The ranked values of the best documents kept so far, for the bar across segments.
        let mut kept: Vec<f64> = Vec::new();
        let mut bar = f64::NEG_INFINITY;
        for visit in visits {
            let Some(values) = &visit.values else {
                // No document of the segment has the field: none sorts, all count.
                counter.count(weight, visit.reader)?;
                continue;
            };
            if visit.best < bar {
                counter.count(weight, visit.reader)?;
                continue;
            }
            let ids = columns.str(visit.reader, &Field::DocumentId.tantivy_name())?;
            let mut pass = SegmentSorted {
                values,
                ids: ids.as_ref(),
                descending: self.descending,
                after: self.after.as_ref(),
                limit: self.limit,
                best: Vec::with_capacity(2 * self.limit.min(10_000)),
                bar,
                matched: 0,
                block_values: Vec::new(),
                block_i64s: Vec::new(),
                scratch: String::new(),
            };
            if bar > f64::NEG_INFINITY
                && self.collect_candidates(&mut pass, weight, visit.reader)?
            {
                counter.count(weight, visit.reader)?;
            } else {
                Self::scan(&mut pass, weight, visit.reader)?;
                counter.add(pass.matched);
            }
            let ranks = pass.harvest();
            kept.extend(ranks.iter().map(|rank| rank.value));
            if kept.len() >= self.limit {
                kept.select_nth_unstable_by(self.limit - 1, |a, b| b.total_cmp(a));
                kept.truncate(self.limit);
                bar = kept.iter().copied().fold(f64::INFINITY, f64::min);
            }
            tops.push(SegmentTop {
                segment: visit.segment,
                ranks,
                ids,
            });
        }
        let (total, total_relation) = counter.finish();
        Ok(SortedPage {
            total,
            total_relation,
            hits: self.merge(&tops),
        })
    }

    /// Every matching document of the segment, in blocks.
    fn scan(
        pass: &mut SegmentSorted<'_>,
        weight: &dyn Weight,
        reader: &SegmentReader,
    ) -> tantivy::Result<()> {
        match reader.alive_bitset() {
            None => weight.for_each_no_score(reader, &mut |docs| pass.collect_block(docs)),
            Some(alive) => {
                let mut kept = Vec::new();
                weight.for_each_no_score(reader, &mut |docs| {
                    kept.clear();
                    kept.extend(docs.iter().copied().filter(|doc| alive.is_alive(*doc)));
                    pass.collect_block(&kept);
                })
            }
        }
    }

    /// Only the documents whose value reaches the bar (and does not pass the cursor), as the
    /// column lists them, checked against the query. `false` when there are too many of them
    /// for this to be the cheaper way (nothing is collected then).
    fn collect_candidates(
        &self,
        pass: &mut SegmentSorted<'_>,
        weight: &dyn Weight,
        reader: &SegmentReader,
    ) -> tantivy::Result<bool> {
        let values = pass.values;
        let (min, max) = values.bounds();
        let cursor = self.after.as_ref().map(|cursor| cursor.value);
        let (low, high) = match self.descending {
            true => (pass.bar, cursor.map_or(max, |c| c.min(max))),
            false => (cursor.map_or(min, |c| c.max(min)), -pass.bar),
        };
        let mut candidates = Vec::new();
        values.docs_between(low, high, reader.max_doc(), &mut candidates);
        if candidates.len() > (reader.max_doc() as usize) / MAX_CANDIDATE_SHARE {
            return Ok(false);
        }
        let mut matching = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        for doc in candidates {
            if matching.doc() < doc {
                matching.seek(doc);
            }
            if matching.doc() != doc || alive.is_some_and(|alive| alive.is_deleted(doc)) {
                continue;
            }
            if let Some(value) = values.first(doc) {
                pass.consider(doc, value);
            }
        }
        Ok(true)
    }

    /// The page from every segment's best, reading ids only to order equal values from
    /// different segments.
    fn merge(&self, tops: &[SegmentTop]) -> Vec<(SortKey, DocAddress)> {
        let mut candidates: Vec<Candidate<'_>> = tops
            .iter()
            .flat_map(|top| {
                top.ranks.iter().map(move |rank| Candidate {
                    rank: *rank,
                    top,
                    id: None,
                })
            })
            .collect();
        candidates.sort_by(|a, b| b.rank.value.total_cmp(&a.rank.value));
        let descending = self.descending;
        let mut kept: Vec<Candidate<'_>> = Vec::with_capacity(self.limit);
        let mut rest = candidates.into_iter().peekable();
        while kept.len() < self.limit {
            let Some(first) = rest.next() else {
                break;
            };
            let mut run = vec![first];
            while rest
                .peek()
                .is_some_and(|next| next.rank.value == run[0].rank.value)
            {
                run.extend(rest.next());
            }
            if run.len() > 1 {
                for candidate in &mut run {
                    candidate.id(descending);
                }
                run.sort_by(|a, b| {
                    let order = a.id.cmp(&b.id);
                    if descending { order.reverse() } else { order }
                });
            }
            kept.extend(run);
        }
        kept.truncate(self.limit);
        kept.into_iter()
            .skip(self.offset)
            .map(|mut candidate| {
                let id = candidate.id(descending).to_owned();
                let value = if descending {
                    candidate.rank.value
                } else {
                    -candidate.rank.value
                };
                (
                    SortKey { value, id },
                    DocAddress::new(candidate.top.segment, candidate.rank.doc),
                )
            })
            .collect()
    }
}
