//! A collector for the page of a sorted search: the best `limit` documents by (sort value, id),
//! optionally only those after a cursor.
//!
//! tantivy's `TopDocs` orders by one fast field and breaks ties by document address, which
//! differs between segments and changes as they merge; deep paging needs an order that is total
//! and stable, as Elasticsearch's `search_after` with an id tiebreaker has. Within a segment ids
//! compare by their term ordinal (the dictionary is sorted), so only the winners' ids are read as
//! text, once per segment, and merged across segments by text.

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
}

/// Larger is earlier in the order, for either direction.
#[derive(Clone, Copy, PartialEq)]
struct Rank {
    value: f64,
    /// The id's term ordinal, flipped for ascending order.
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
    scratch: String,
}

impl SegmentSorted {
    /// Whether a document with this value and id comes after the cursor.
    fn after_cursor(&mut self, value: f64, ord: u64) -> bool {
        let Some(cursor) = &self.after else {
            return true;
        };
        let by_value = value.total_cmp(&cursor.value);
        let order = match by_value {
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
}

impl SegmentCollector for SegmentSorted {
    type Fruit = Vec<(SortKey, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(value) = self.values.as_ref().and_then(|values| values.first(doc)) else {
            return;
        };
        let ord = self
            .ids
            .as_ref()
            .and_then(|ids| ids.term_ords(doc).next())
            .unwrap_or(0);
        if !self.after_cursor(value, ord) {
            return;
        }
        let rank = match self.descending {
            true => Rank { value, ord, doc },
            false => Rank {
                value: -value,
                ord: u64::MAX - ord,
                doc,
            },
        };
        if self.best.len() < self.limit {
            self.best.push(Reverse(rank));
        } else if self.best.peek().is_some_and(|Reverse(worst)| rank > *worst) {
            self.best.pop();
            self.best.push(Reverse(rank));
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut id = String::new();
        self.best
            .into_iter()
            .map(|Reverse(rank)| {
                let ord = if self.descending {
                    rank.ord
                } else {
                    u64::MAX - rank.ord
                };
                id.clear();
                if let Some(ids) = &self.ids {
                    // The ordinal came from this column, so it resolves.
                    let _ = ids.ord_to_str(ord, &mut id);
                }
                let value = if self.descending {
                    rank.value
                } else {
                    -rank.value
                };
                (
                    SortKey {
                        value,
                        id: id.clone(),
                    },
                    DocAddress::new(self.segment, rank.doc),
                )
            })
            .collect()
    }
}

impl Collector for SortedCollector {
    type Fruit = Vec<(SortKey, DocAddress)>;
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
            scratch: String::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        segments: Vec<Vec<(SortKey, DocAddress)>>,
    ) -> tantivy::Result<Vec<(SortKey, DocAddress)>> {
        let mut all: Vec<(SortKey, DocAddress)> = segments.into_iter().flatten().collect();
        all.sort_by(|(a, _), (b, _)| {
            let order = a.value.total_cmp(&b.value).then_with(|| a.id.cmp(&b.id));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
        all.truncate(self.limit);
        Ok(all)
    }
}
