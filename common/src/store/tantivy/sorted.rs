//! A collector for the page of a sorted search: the best `limit` documents by (sort value, id),
//! optionally only those after a cursor.
//!
//! tantivy's `TopDocs` orders by one fast field and breaks ties by document address, which
//! differs between segments and changes as they merge; deep paging needs an order that is total
//! and stable, as Elasticsearch's `search_after` with an id tiebreaker has. Within a segment ids
//! compare by their term ordinal (the dictionary is sorted). Ids are read as text only where text
//! is needed: to break ties between segments, to compare with the cursor on an equal value, and
//! for the hits of the page itself. Values are read a block of documents at a time, and a
//! document that cannot beat the segment's current worst kept one costs no more than that read.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::store::SortKey;

/// The sort value's column type.
#[derive(Clone, Copy)]
pub(super) enum ValueType {
    I64,
    F64,
}

pub(super) struct SortedCollector {
    pub field: String,
    pub value_type: ValueType,
    pub descending: bool,
    pub after: Option<SortKey>,
    /// How many of the best to keep (offset + page size).
    pub limit: usize,
    /// How many of those are skipped (their ids are never read).
    pub offset: usize,
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

enum Values {
    I64(Column<i64>),
    F64(Column<f64>),
}

impl Values {
    fn first(&self, doc: DocId) -> Option<f64> {
        match self {
            Values::I64(column) => column.first(doc).map(|v| v as f64),
            Values::F64(column) => column.first(doc),
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

pub(super) struct SegmentSorted {
    segment: SegmentOrdinal,
    /// `None` where no document of the segment has the field.
    values: Option<Values>,
    ids: Option<StrColumn>,
    descending: bool,
    after: Option<SortKey>,
    limit: usize,
    best: BinaryHeap<Reverse<Rank>>,
    /// Every matching document, for the search's total.
    matched: u64,
    block_values: Vec<Option<f64>>,
    block_i64s: Vec<Option<i64>>,
    scratch: String,
}

impl SegmentSorted {
    fn ord_of(&self, doc: DocId) -> u64 {
        self.ids
            .as_ref()
            .and_then(|ids| ids.term_ords(doc).next())
            .unwrap_or(0)
    }

    /// Whether a document with this value and id ordinal comes after the cursor.
    fn after_cursor(&mut self, value: f64, ord: u64) -> bool {
        let Some(cursor) = &self.after else {
            return true;
        };
        let order = match value.total_cmp(&cursor.value) {
            Ordering::Equal => {
                self.scratch.clear();
                let Some(ids) = &self.ids else {
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
        let ranked_value = if self.descending { value } else { -value };
        // A document whose value is below the worst kept one cannot get in: no id read.
        if self.best.len() == self.limit
            && let Some(Reverse(worst)) = self.best.peek()
            && ranked_value < worst.value
        {
            return;
        }
        // Nor can one before the cursor, except on its exact value, where ids decide.
        if let Some(cursor) = &self.after {
            let before = match self.descending {
                true => value > cursor.value,
                false => value < cursor.value,
            };
            if before {
                return;
            }
        }
        let ord = self.ord_of(doc);
        if value == self.after.as_ref().map_or(f64::NAN, |c| c.value)
            && !self.after_cursor(value, ord)
        {
            return;
        }
        let rank = Rank {
            value: ranked_value,
            ord: if self.descending { ord } else { u64::MAX - ord },
            doc,
        };
        if self.best.len() < self.limit {
            self.best.push(Reverse(rank));
        } else if self.best.peek().is_some_and(|Reverse(worst)| rank > *worst) {
            self.best.pop();
            self.best.push(Reverse(rank));
        }
    }
}

/// One segment's best documents, best first, with what it takes to read their ids later.
pub(super) struct SegmentTop {
    segment: SegmentOrdinal,
    ranks: Vec<Rank>,
    ids: Option<StrColumn>,
    matched: u64,
}

impl SegmentCollector for SegmentSorted {
    type Fruit = SegmentTop;

    /// One document at a time: segments with deleted documents are collected this way.
    fn collect(&mut self, doc: DocId, _score: Score) {
        self.matched += 1;
        if let Some(value) = self.values.as_ref().and_then(|values| values.first(doc)) {
            self.consider(doc, value);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.matched += docs.len() as u64;
        let Some(values) = &self.values else {
            return;
        };
        let mut block = std::mem::take(&mut self.block_values);
        let mut i64s = std::mem::take(&mut self.block_i64s);
        values.read(docs, &mut i64s, &mut block);
        for (doc, value) in docs.iter().zip(&block) {
            if let Some(value) = value {
                self.consider(*doc, *value);
            }
        }
        self.block_values = block;
        self.block_i64s = i64s;
    }

    fn harvest(self) -> SegmentTop {
        let mut ranks: Vec<Rank> = self.best.into_iter().map(|Reverse(r)| r).collect();
        ranks.sort_unstable_by(|a, b| b.cmp(a));
        SegmentTop {
            segment: self.segment,
            ranks,
            ids: self.ids,
            matched: self.matched,
        }
    }
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

/// The page, and how many documents matched in all (counted here rather than by a second
/// collector beside this one, because tantivy's pair of collectors is fed one document at a time
/// and this one is fastest fed blocks).
pub(super) struct SortedPage {
    pub total: u64,
    pub hits: Vec<(SortKey, DocAddress)>,
}

impl Collector for SortedCollector {
    type Fruit = SortedPage;
    type Child = SegmentSorted;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSorted> {
        let fast = reader.fast_fields();
        let values = match self.value_type {
            ValueType::I64 => fast.column_opt::<i64>(&self.field)?.map(Values::I64),
            ValueType::F64 => fast.column_opt::<f64>(&self.field)?.map(Values::F64),
        };
        Ok(SegmentSorted {
            segment,
            values,
            ids: fast.str("id")?,
            descending: self.descending,
            after: self.after.clone(),
            limit: self.limit,
            best: BinaryHeap::with_capacity(self.limit.min(10_000) + 1),
            matched: 0,
            block_values: Vec::new(),
            block_i64s: Vec::new(),
            scratch: String::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// Merges by value, reading ids only to order equal values from different segments.
    fn merge_fruits(&self, segments: Vec<SegmentTop>) -> tantivy::Result<Self::Fruit> {
        let total = segments.iter().map(|top| top.matched).sum();
        let mut candidates: Vec<Candidate<'_>> = segments
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
        let hits = kept
            .into_iter()
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
            .collect();
        Ok(SortedPage { total, hits })
    }
}
