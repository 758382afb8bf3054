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

/// A partition's current rollup and the days it holds events in ([`Rollup::days`]).
pub struct Partition<'a, K> {
    pub key: K,
    pub rollup: &'a Rollup,
    pub days: &'a [i64],
}

/// The merged rollup of one day and the partitions it holds.
#[derive(Clone)]
struct Day<K> {
    members: HashSet<K>,
    rollup: Rollup,
}

impl<K: Hash + Eq + Clone> Day<K> {
    fn of(start: i64, partitions: &[&Partition<'_, K>]) -> Day<K> {
        let mut day = Day {
            members: HashSet::with_capacity(partitions.len()),
            rollup: Rollup::default(),
        };
        for partition in partitions {
            day.add(start, partition);
        }
        day
    }

    fn add(&mut self, start: i64, partition: &Partition<'_, K>) {
        self.rollup
            .merge_hours(partition.rollup, start, start + MS_PER_DAY);
        self.members.insert(partition.key.clone());
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
        let days = wanted
            .into_iter()
            .map(|(start, holding)| {
                let merged = match self.days.get(&start) {
                    Some(day) if holding.len() == day.members.len() && day_holds(day, &holding) => {
                        Arc::clone(day)
                    }
                    Some(day) if day_holds_only(day, &holding) => {
                        let mut day = Day::clone(day);
                        for partition in holding {
                            if !day.members.contains(&partition.key) {
                                day.add(start, partition);
                            }
                        }
                        Arc::new(day)
                    }
                    Some(day) if !merge_again => {
                        behind = true;
                        Arc::clone(day)
                    }
                    _ => Arc::new(Day::of(start, &holding)),
                };
                (start, merged)
            })
            .collect();
        DayRollups { days, behind }
    }

    /// Whether a day was left holding a partition that is gone (see [`updated`](Self::updated)).
    pub fn behind(&self) -> bool {
        self.behind
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
            if self.reads(&day.rollup) && day.members.iter().all(|key| present.contains(key)) {
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
                    rollup: partition.rollup,
                    first,
                    end,
                });
                continue;
            }
            for day in own_days {
                let (first, end) = clip(day).unzip();
                parts.push(Part {
                    rollup: partition.rollup,
                    first,
                    end,
                });
            }
        }
        parts
    }
}
