//! A search's total, counted segment by segment: every match, or up to a bound.
//!
//! Counting every match of a text search over 50 M events reads every posting of its words,
//! where the page itself reads a few hundred documents (see `sorted.rs`). Elasticsearch counts
//! up to 10,000 by default (`track_total_hits`) and then says "at least"; so does this. Once the
//! bound is passed, segments are no longer counted at all, and the search reads only what can
//! make its page.

use tantivy::query::Weight;
use tantivy::{DocSet, SegmentReader, TERMINATED};

use sluice_store::{Total, TotalRelation};

pub(super) struct TotalCounter {
    /// Matches past this many need not be counted; `None` when nothing is counted.
    bound: Option<u64>,
    total: u64,
    /// Some match may have gone uncounted.
    cut_short: bool,
}

impl TotalCounter {
    pub fn new(total: Total) -> TotalCounter {
        TotalCounter {
            bound: match total {
                Total::Counted => Some(u64::MAX),
                Total::UpTo(bound) => Some(bound),
                Total::NotNeeded => None,
            },
            total: 0,
            cut_short: false,
        }
    }

    /// Matches counted some other way (a segment read whole for the page).
    pub fn add(&mut self, matched: u64) {
        self.total += matched;
    }

    /// Counts the segment's matches, as far as the bound still asks for.
    pub fn count(&mut self, weight: &dyn Weight, reader: &SegmentReader) -> tantivy::Result<()> {
        let Some(bound) = self.bound else {
            return Ok(());
        };
        if bound == u64::MAX {
            self.total += u64::from(weight.count(reader)?);
            return Ok(());
        }
        if self.total > bound {
            self.cut_short = true;
            return Ok(());
        }
        // One past the bound tells "more than the bound" from "exactly the bound".
        let wanted = bound + 1 - self.total;
        let mut matches = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut counted = 0;
        let mut doc = matches.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|alive| alive.is_alive(doc)) {
                counted += 1;
                if counted == wanted {
                    self.cut_short = true;
                    break;
                }
            }
            doc = matches.advance();
        }
        self.total += counted;
        Ok(())
    }

    /// The total and whether it is exact; past the bound, the bound itself and "at least", as
    /// Elasticsearch answers.
    pub fn finish(self) -> (u64, TotalRelation) {
        match self.bound {
            None => (0, TotalRelation::AtLeast),
            Some(bound) if self.cut_short => (bound, TotalRelation::AtLeast),
            Some(_) => (self.total, TotalRelation::Exact),
        }
    }
}
