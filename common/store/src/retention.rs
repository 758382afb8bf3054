//! Retention: which old events a store drops, decided here, above the store trait, so that the
//! embedded store and Elasticsearch keep exactly the same days.
//!
//! Events go by whole UTC days of event time, as daily indices do: a day is dropped once all of
//! it is older than `retention_days`, so an event is kept at least `retention_days` and at most
//! one day more. A disk bound drops the oldest day first, again and again, while the store is
//! over it, but never the current day: the newest events are what an operator needs most.

use super::{EventStore, SearchQuery, Sort, SortField, StoreError};

pub const MS_PER_DAY: i64 = 86_400_000;

/// How long events are kept and how much disk they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days of events kept; 0 keeps them forever.
    pub retention_days: u32,
    /// Bytes the store may take on disk before its oldest days go; 0: no bound.
    pub max_disk_bytes: u64,
}

/// What a store holds, as retention and its metrics read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreUsage {
    /// On disk, every copy the store keeps.
    pub bytes: u64,
    /// Event time of the oldest event kept, epoch milliseconds; `None` when the store is empty.
    pub oldest_ms: Option<i64>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPass {
    /// Events dropped for their age.
    pub expired: u64,
    /// Events dropped to bring the store under `max_disk_bytes`.
    pub evicted: u64,
    /// The store afterwards.
    pub usage: StoreUsage,
    /// The current day alone is over `max_disk_bytes`, which retention never drops.
    pub over_disk_bound: bool,
}

/// Event time of the oldest event `store` holds: every store answers it with the same search.
pub async fn oldest_event_ms(store: &dyn EventStore) -> Result<Option<i64>, StoreError> {
    let oldest_first = SearchQuery {
        sort: Sort {
            field: SortField::Timestamp,
            descending: false,
        },
        size: 1,
        ..SearchQuery::default()
    };
    let found = store.search(&oldest_first).await?;
    // Sort values of event time are whole milliseconds.
    Ok(found.hits.first().map(|hit| hit.sort.value as i64))
}

/// The start of the UTC day `ms` falls in.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

impl RetentionPolicy {
    /// Events before this time (a day boundary) are past their retention at `now_ms`.
    pub fn age_cutoff(&self, now_ms: i64) -> Option<i64> {
        (self.retention_days > 0)
            .then(|| day_start(now_ms.saturating_sub(i64::from(self.retention_days) * MS_PER_DAY)))
    }

    /// The day boundary before which events go to bring `usage` under the disk bound: the
    /// end of the oldest day held, unless that day is the current one.
    pub fn disk_cutoff(&self, usage: &StoreUsage, now_ms: i64) -> Option<i64> {
        if self.max_disk_bytes == 0 || usage.bytes <= self.max_disk_bytes {
            return None;
        }
        let end_of_oldest = day_start(usage.oldest_ms?) + MS_PER_DAY;
        (end_of_oldest <= day_start(now_ms)).then_some(end_of_oldest)
    }

    /// Drops what is past retention, then the oldest days while the store is over its disk
    /// bound. Each drop is of whole days, so a pass that stops half way leaves nothing torn.
    pub async fn enforce(
        &self,
        store: &dyn EventStore,
        now_ms: i64,
    ) -> Result<RetentionPass, StoreError> {
        let mut pass = RetentionPass::default();
        if let Some(cutoff) = self.age_cutoff(now_ms) {
            pass.expired = store.drop_before(cutoff).await?;
        }
        pass.usage = store.usage().await?;
        while let Some(cutoff) = self.disk_cutoff(&pass.usage, now_ms) {
            pass.evicted += store.drop_before(cutoff).await?;
            let before = pass.usage;
            pass.usage = store.usage().await?;
            // If the oldest day is still there the store did not drop it, and asking again
            // would not either. If the store is no smaller, the day's events shared their
            // partitions with newer ones (a backfill beside live traffic): their space comes
            // back when those are merged, and dropping more days now would not bring it sooner.
            if pass.usage.oldest_ms == before.oldest_ms || pass.usage.bytes >= before.bytes {
                break;
            }
        }
        pass.over_disk_bound = self.max_disk_bytes > 0 && pass.usage.bytes > self.max_disk_bytes;
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_796_000_000_000; // 2026-11-29T…, mid-day

    fn policy(retention_days: u32, max_disk_bytes: u64) -> RetentionPolicy {
        RetentionPolicy {
            retention_days,
            max_disk_bytes,
        }
    }

    #[test]
    fn a_day_goes_once_all_of_it_is_older_than_the_retention() {
        let cutoff = policy(30, 0).age_cutoff(NOW).expect("a cutoff");
        assert_eq!(cutoff % MS_PER_DAY, 0);
        assert!(NOW - cutoff > 30 * MS_PER_DAY && NOW - cutoff <= 31 * MS_PER_DAY);
        assert_eq!(policy(0, 0).age_cutoff(NOW), None, "0 keeps events forever");
    }

    #[test]
    fn the_disk_bound_never_drops_the_current_day() {
        let over = |oldest_ms| StoreUsage {
            bytes: 2_000,
            oldest_ms: Some(oldest_ms),
        };
        let bound = policy(0, 1_000);
        assert_eq!(
            bound.disk_cutoff(&over(NOW - 3 * MS_PER_DAY), NOW),
            Some(day_start(NOW - 2 * MS_PER_DAY))
        );
        assert_eq!(bound.disk_cutoff(&over(day_start(NOW)), NOW), None);
        let under = StoreUsage {
            bytes: 1_000,
            oldest_ms: Some(0),
        };
        assert_eq!(bound.disk_cutoff(&under, NOW), None);
        assert_eq!(policy(0, 0).disk_cutoff(&over(0), NOW), None);
    }

    proptest! {
        /// Whatever the clock and retention, what is kept starts on a day boundary and spans
        /// at least the retention and at most a day more.
        #[test]
        fn the_age_cutoff_keeps_between_n_and_n_plus_one_days(
            now in 0i64..253_402_300_799_000,
            days in 1u32..10_000,
        ) {
            let cutoff = policy(days, 0).age_cutoff(now).expect("a cutoff");
            prop_assert_eq!(cutoff.rem_euclid(MS_PER_DAY), 0);
            let kept = now - cutoff;
            prop_assert!(kept > i64::from(days) * MS_PER_DAY);
            prop_assert!(kept <= (i64::from(days) + 1) * MS_PER_DAY);
        }
    }
}
