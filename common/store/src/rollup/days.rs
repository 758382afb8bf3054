//! One rollup per UTC day, merged from the rollups of every partition (segment) with events in
//! that day, so that a question over a month reads thirty days' buckets, not every segment's.
//!
//! A store that keeps a rollup per partition answers over all of them side by side; with many
//! partitions each spanning the whole window (events that arrive late, or out of order, land in
//! whichever segment was open), that is partitions × hours × populations buckets to merge per
//! question. A day's merge is built once, off the question's path, from the partitions that hold
//! events in it. It knows which partitions it holds, by a key that changes when a partition's
//! events do (a segment and its count of deleted documents), so a question uses it only when
//! every one of them is still what the question reads; a partition the merge does not hold yet
//! is read from its own rollup, and a merge that holds a partition gone since is not used at
//! all. Adding a partition adds to a day's merge; losing one rebuilds the days it touched (the
//! sketches do not subtract), which for events that arrive in time order is today's alone.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use super::{Part, Rollup, RollupQuestion};
use crate::retention::{MS_PER_DAY, day_start};

/// A partition's current rollup and the days it holds events in
/// ([`RollupOutline::days`](super::RollupOutline::days)).
pub struct Partition<'a, K> {
    pub key: K,
    pub rollup: &'a dyn PartitionRollup,
    pub days: &'a [i64],
}

/// A partition's rollup, as its store keeps it: a store may keep it encoded and decode it only
/// when a day is merged or a question reads one of its days not merged yet. Once the day merges
/// hold a partition whole, nothing else reads its rollup.
pub trait PartitionRollup {
    /// The rollup, decoded for as long as the store keeps it so.
    fn rollup(&self) -> &Rollup;

    /// Calls `read` with the rollup, leaving it as encoded as it was: merging every partition
    /// into its days need not hold them all decoded at once.
    fn read(&self, read: &mut dyn FnMut(&Rollup)) {
        read(self.rollup());
    }
}

impl PartitionRollup for Rollup {
    fn rollup(&self) -> &Rollup {
        self
    }
}

/// The merged rollup of one day and the partitions it holds.
#[derive(Clone)]
struct Day<K> {
    members: HashSet<K>,
    rollup: Rollup,
}

impl<K: Hash + Eq + Clone> Day<K> {
    fn empty() -> Day<K> {
        Day {
            members: HashSet::new(),
            rollup: Rollup::default(),
        }
    }

    fn add(&mut self, start: i64, key: &K, rollup: &Rollup) {
        self.rollup.merge_hours(rollup, start, start + MS_PER_DAY);
        self.members.insert(key.clone());
    }
}

/// The days' merges, by the day's start (epoch ms). Cheap to clone: a question takes a copy and
/// reads it while the next update builds another.
pub struct DayRollups<K> {
    days: BTreeMap<i64, Arc<Day<K>>>,
    /// Some day holds a partition that is gone, and was left to be merged again later.
    behind: bool,
}

impl<K> Clone for DayRollups<K> {
    fn clone(&self) -> Self {
        DayRollups {
            days: self.days.clone(),
            behind: self.behind,
        }
    }
}

impl<K> Default for DayRollups<K> {
    fn default() -> Self {
        DayRollups {
            days: BTreeMap::new(),
            behind: false,
        }
    }
}

impl<K: Hash + Eq + Clone> DayRollups<K> {
    /// The merges for `partitions` (every partition with a current rollup): a day that holds
    /// only partitions still among them gets the new ones added; a day that holds one that is
    /// gone is merged again when `merge_again`, else left as it is (questions do not read it)
    /// and the result is [`behind`](Self::behind); a day no partition holds events in is
    /// dropped. Merging a day again reads all its partitions, so a caller does it seldom while
    /// partitions come and go fast (a store merging segments under load).
    pub fn updated(&self, partitions: &[Partition<'_, K>], merge_again: bool) -> DayRollups<K> {
        let mut behind = false;
        let mut wanted: BTreeMap<i64, Vec<&Partition<'_, K>>> = BTreeMap::new();
        for partition in partitions {
            for day in partition.days {
                wanted.entry(*day).or_default().push(partition);
            }
        }
        // The days that stay as they are, and those built (from a copy, or anew).
        let mut days: BTreeMap<i64, Arc<Day<K>>> = BTreeMap::new();
        let mut building: BTreeMap<i64, Day<K>> = BTreeMap::new();
        for (start, holding) in wanted {
            match self.days.get(&start) {
                Some(day) if holding.len() == day.members.len() && day_holds(day, &holding) => {
                    days.insert(start, Arc::clone(day));
                }
                Some(day) if day_holds_only(day, &holding) => {
                    building.insert(start, Day::clone(day));
                }
                Some(day) if !merge_again => {
                    behind = true;
                    days.insert(start, Arc::clone(day));
                }
                _ => {
                    building.insert(start, Day::empty());
                }
            }
        }
        // Each partition is read once, into every day built that lacks it.
        for partition in partitions {
            let into: Vec<i64> = partition
                .days
                .iter()
                .copied()
                .filter(|start| {
                    building
                        .get(start)
                        .is_some_and(|day| !day.members.contains(&partition.key))
                })
                .collect();
            if into.is_empty() {
                continue;
            }
            partition.rollup.read(&mut |rollup| {
                for start in &into {
                    if let Some(day) = building.get_mut(start) {
                        day.add(*start, &partition.key, rollup);
                    }
                }
            });
        }
        days.extend(building.into_iter().map(|(start, mut day)| {
            day.rollup.summarize_days();
            (start, Arc::new(day))
        }));
        DayRollups { days, behind }
    }

    /// Whether a day was left holding a partition that is gone (see [`updated`](Self::updated)).
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// Whether the merge of each of `days` holds the partition `key`: then no question reads the
    /// partition's own rollup.
    pub fn hold(&self, key: &K, days: &[i64]) -> bool {
        days.iter().all(|day| {
            self.days
                .get(day)
                .is_some_and(|merge| merge.members.contains(key))
        })
    }
}

/// Whether `day` holds every one of `partitions`.
fn day_holds<K: Hash + Eq>(day: &Day<K>, partitions: &[&Partition<'_, K>]) -> bool {
    partitions
        .iter()
        .all(|partition| day.members.contains(&partition.key))
}

/// Whether every partition `day` holds is among `partitions`.
fn day_holds_only<K: Hash + Eq>(day: &Day<K>, partitions: &[&Partition<'_, K>]) -> bool {
    let keys: HashSet<&K> = partitions.iter().map(|partition| &partition.key).collect();
    day.members.iter().all(|member| keys.contains(member))
}

impl RollupQuestion {
    /// The parts the window's whole hours are read from: each day's merge whose partitions are
    /// all among `partitions` (those whose current rollup the question reads) and which holds
    /// what the question reads, and each partition's own rollup for its other days.
    pub fn parts<'a, K: Hash + Eq>(
        &self,
        partitions: &[Partition<'a, K>],
        days: &'a DayRollups<K>,
    ) -> Vec<Part<'a>> {
        let (first, end) = self.whole_hours();
        let (from, until) = (first.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
        let clip = |day: i64| Some((day.max(from), (day.saturating_add(MS_PER_DAY)).min(until)));
        let present: HashSet<&K> = partitions.iter().map(|partition| &partition.key).collect();
        let first_day = first.map_or(i64::MIN, day_start);
        let mut parts = Vec::new();
        let mut merged_days = HashSet::new();
        for (start, day) in days.days.range(first_day..until) {
            if self.reads_whole(&day.rollup.overflowed)
                && day.members.iter().all(|key| present.contains(key))
            {
                let (first, end) = clip(*start).unzip();
                parts.push(Part {
                    rollup: &day.rollup,
                    first,
                    end,
                });
                merged_days.insert(*start);
            }
        }
        for partition in partitions {
            // The days whose merge is read above and holds this partition (one built before the
            // partition was rolled up does not).
            let merged = |day: &i64| {
                merged_days.contains(day)
                    && days
                        .days
                        .get(day)
                        .is_some_and(|merge| merge.members.contains(&partition.key))
            };
            let own_days: Vec<i64> = partition
                .days
                .iter()
                .copied()
                .filter(|day| *day < until && day.saturating_add(MS_PER_DAY) > from)
                .filter(|day| !merged(day))
                .collect();
            if own_days.is_empty() {
                continue;
            }
            if !partition.days.iter().any(merged) {
                parts.push(Part {
                    rollup: partition.rollup.rollup(),
                    first,
                    end,
                });
                continue;
            }
            for day in own_days {
                let (first, end) = clip(day).unzip();
                parts.push(Part {
                    rollup: partition.rollup.rollup(),
                    first,
                    end,
                });
            }
        }
        parts
    }
}
