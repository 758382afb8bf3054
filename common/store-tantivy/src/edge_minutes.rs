//! The hours a window's ragged edges fall in, rolled up by minute over every segment and kept,
//! so that a long window's partial first and last hours are read from their minutes' buckets
//! instead of their events.
//!
//! Kept rollups are by hour. A window from 10:37 needs 10:37–11:00 of every segment's events:
//! at 50 M events over a month, tens of thousands of events in two hundred segments, each user
//! and session id looked up in its segment's term dictionary, for every question. That cost
//! grows with the data, where the whole hours' does not. Dashboards ask the same edges over and
//! over (a "last 30 days" window moves a minute a minute), so the hour is rolled up by minute
//! once, over every segment with events in it, and a question reads from the events only what
//! its window holds of a minute it does not hold whole. The minutes are kept ten at a time as
//! well, so a window's part of an hour reads at most fourteen buckets a population.
//!
//! As a day's merge does ([`sluice_store::rollup::DayRollups`]), an edge hour knows the
//! segments it holds, by id and count of deleted documents, and answers only for exactly those:
//! segments added since are rolled up and added as a piece of their own; when one it holds is
//! gone (merged, replayed into, dropped by retention) the hour is rolled up again. The minute
//! buckets are unfiltered, as a kept rollup's are: a question selects its populations from them.
//! A few hours are kept, the one asked least recently forgotten first.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sluice_store::rollup::{HOUR_MS, MINUTE_MS, Part, Rollup, RollupOutline, RollupQuestion};
use tantivy::SegmentReader;
use tantivy::index::SegmentId;

use super::hour_rows::HourRows;
use super::open_columns::OpenColumns;
use super::segment_rollups::roll_up_hour_by_minute;

/// How many edge hours are kept. A dashboard asks two per window, and a few windows at a time
/// (24 hours, 7 days, 30 days); at 50 M events over a month an hour by minute is a few MB.
const MOST_KEPT: usize = 8;

/// How many pieces an edge hour gathers from segments added one after another before it is
/// rolled up again whole: each piece is read by every question.
pub(super) const MOST_PIECES: usize = 8;

/// A segment as an edge hour knows it: one that lost documents since is another.
type Member = (SegmentId, u32);

fn member(reader: &SegmentReader) -> Member {
    (reader.segment_id(), reader.num_deleted_docs())
}

/// How many minutes a coarse bucket of a piece holds.
const TEN_MINUTES_MS: i64 = 10 * MINUTE_MS;

/// Some segments' events in one hour, by minute and by ten minutes: the minutes a window holds
/// are read ten at a time where they can be.
struct Piece {
    minutes: Rollup,
    tens: Rollup,
    outline: RollupOutline,
}

/// One hour's events in a set of segments, by minute.
pub(super) struct EdgeHour {
    start: i64,
    members: HashSet<Member>,
    /// Shared with the hour it was extended from: an hour gathering new segments copies none.
    pieces: Vec<Arc<Piece>>,
}

impl EdgeHour {
    /// Whether the pieces hold every breakdown `question` reads: a minute may have more values
    /// than a bucket keeps, and then the question reads that hour's events.
    pub fn answers(&self, question: &RollupQuestion) -> bool {
        self.pieces
            .iter()
            .all(|piece| question.reads(&piece.outline))
    }

    /// The parts the minutes `[first, end)` of the hour are read from: whole ten minutes from
    /// the coarse buckets, the minutes on either side of them from the minutes'.
    pub fn parts(&self, first: i64, end: i64) -> Vec<Part<'_>> {
        let tens_first = start_at_or_after(first, TEN_MINUTES_MS);
        let tens_end = start_at_or_before(end, TEN_MINUTES_MS);
        let part = |rollup, first, end| Part {
            rollup,
            first: Some(first),
            end: Some(end),
        };
        let mut parts = Vec::new();
        for piece in &self.pieces {
            match tens_first < tens_end {
                true => parts.extend([
                    part(&piece.minutes, first, tens_first),
                    part(&piece.tens, tens_first, tens_end),
                    part(&piece.minutes, tens_end, end),
                ]),
                false => parts.push(part(&piece.minutes, first, end)),
            }
        }
        parts
    }
}

/// The edge hours kept, most recently asked first.
#[derive(Default)]
pub(super) struct EdgeMinutes {
    kept: Mutex<Vec<Arc<EdgeHour>>>,
}

impl EdgeMinutes {
    /// The hour that starts at `start`, by minute, over exactly `segments`: every segment with
    /// events in it whose rollup the question reads. Rolled up from their events where what is
    /// kept does not hold them all.
    pub fn hour(
        &self,
        start: i64,
        segments: &[&SegmentReader],
        columns: &OpenColumns,
        hour_rows: &HourRows,
    ) -> tantivy::Result<Arc<EdgeHour>> {
        let kept = self.lock().iter().find(|hour| hour.start == start).cloned();
        let wanted: HashSet<Member> = segments.iter().map(|reader| member(reader)).collect();
        let hour = match kept {
            Some(kept) if kept.members == wanted => kept,
            Some(kept) if kept.members.is_subset(&wanted) && kept.pieces.len() < MOST_PIECES => {
                let added: Vec<&SegmentReader> = segments
                    .iter()
                    .copied()
                    .filter(|reader| !kept.members.contains(&member(reader)))
                    .collect();
                let mut pieces = kept.pieces.clone();
                pieces.extend(roll_up(start, &added, columns, hour_rows)?.map(Arc::new));
                Arc::new(EdgeHour {
                    start,
                    members: wanted,
                    pieces,
                })
            }
            _ => Arc::new(EdgeHour {
                start,
                members: wanted,
                pieces: roll_up(start, segments, columns, hour_rows)?
                    .map(Arc::new)
                    .into_iter()
                    .collect(),
            }),
        };
        let mut kept = self.lock();
        kept.retain(|kept| kept.start != start);
        kept.insert(0, Arc::clone(&hour));
        kept.truncate(MOST_KEPT);
        Ok(hour)
    }

    /// Forgets every hour: the rollups are being built again.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many pieces the kept hour that starts at `start` is read from.
    #[cfg(test)]
    pub fn pieces(&self, start: i64) -> Option<usize> {
        let kept = self.lock();
        let hour = kept.iter().find(|hour| hour.start == start)?;
        Some(hour.pieces.len())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<EdgeHour>>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The events of `segments` in the hour that starts at `start`, by minute, as one piece: none
/// when they hold none.
fn roll_up(
    start: i64,
    segments: &[&SegmentReader],
    columns: &OpenColumns,
    hour_rows: &HourRows,
) -> tantivy::Result<Option<Piece>> {
    let mut merged: Option<Rollup> = None;
    for reader in segments {
        let Some(rollup) = roll_up_hour_by_minute(reader, start, columns, hour_rows)? else {
            continue;
        };
        match &mut merged {
            Some(merged) => merged.merge_hours(&rollup, i64::MIN, i64::MAX),
            None => merged = Some(rollup),
        }
    }
    Ok(merged.map(|minutes| Piece {
        outline: minutes.outline(),
        tens: minutes.coarsened(TEN_MINUTES_MS),
        minutes,
    }))
}

/// Epoch ms from and to, both included.
type Inclusive = (i64, i64);

/// The whole minutes of `from_ms..=to_ms` as `[first, end)` by their starts, and the parts of it
/// outside them (at most two, inclusive), which are read from the events. No whole minute when
/// the window holds none.
pub(super) fn whole_minutes(from_ms: i64, to_ms: i64) -> (Option<(i64, i64)>, Vec<Inclusive>) {
    let first = start_at_or_after(from_ms, MINUTE_MS);
    let end = start_at_or_before(to_ms.saturating_add(1), MINUTE_MS);
    if end <= first {
        return (None, vec![(from_ms, to_ms)]);
    }
    let mut rest = Vec::new();
    if from_ms < first {
        rest.push((from_ms, first - 1));
    }
    if end <= to_ms {
        rest.push((end, to_ms));
    }
    (Some((first, end)), rest)
}

/// The start of the first bucket `width_ms` wide that begins at or after `ms`.
fn start_at_or_after(ms: i64, width_ms: i64) -> i64 {
    start_at_or_before(ms, width_ms) + i64::from(ms.rem_euclid(width_ms) != 0) * width_ms
}

/// The start of the bucket `width_ms` wide that holds `ms`.
fn start_at_or_before(ms: i64, width_ms: i64) -> i64 {
    ms.div_euclid(width_ms) * width_ms
}

/// The starts of the hours `from_ms..=to_ms` touches, when it touches at most two: an edge of a
/// window is within an hour, or two when the window holds no whole hour.
pub(super) fn edge_hours(from_ms: i64, to_ms: i64) -> Option<Vec<i64>> {
    let first = from_ms.div_euclid(HOUR_MS).checked_mul(HOUR_MS)?;
    let last = to_ms.div_euclid(HOUR_MS).checked_mul(HOUR_MS)?;
    match last.checked_sub(first)? / HOUR_MS {
        0 => Some(vec![first]),
        1 => Some(vec![first, last]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_minutes_leave_only_partial_minutes_to_the_events() {
        let t = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(
            whole_minutes(t, t + HOUR_MS - 1),
            (Some((t, t + HOUR_MS)), vec![])
        );
        assert_eq!(
            whole_minutes(t + 61_234, t + HOUR_MS - 1),
            (
                Some((t + 120_000, t + HOUR_MS)),
                vec![(t + 61_234, t + 119_999)]
            )
        );
        assert_eq!(
            whole_minutes(t, t + 600_500),
            (Some((t, t + 600_000)), vec![(t + 600_000, t + 600_500)])
        );
        assert_eq!(
            whole_minutes(t + 5, t + 59_000),
            (None, vec![(t + 5, t + 59_000)])
        );
        assert_eq!(
            whole_minutes(t + 59_000, t + 61_000),
            (None, vec![(t + 59_000, t + 61_000)])
        );
        assert_eq!(
            whole_minutes(t + 59_000, t + 180_000),
            (
                Some((t + 60_000, t + 180_000)),
                vec![(t + 59_000, t + 59_999), (t + 180_000, t + 180_000)]
            )
        );
    }

    #[test]
    fn edges_touch_at_most_two_hours() {
        let t = 1_767_225_600_000;
        assert_eq!(edge_hours(t + 5, t + 10), Some(vec![t]));
        assert_eq!(
            edge_hours(t + 5, t + HOUR_MS + 10),
            Some(vec![t, t + HOUR_MS])
        );
        assert_eq!(edge_hours(t, t + 2 * HOUR_MS), None);
        assert_eq!(edge_hours(i64::MIN, t), None);
        assert_eq!(edge_hours(t, i64::MAX), None);
    }
}
