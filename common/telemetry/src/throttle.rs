//! Rate-limited log lines. A warning that can fire thousands of times a minute (every request
//! refused while the queue is full) is written the first time, then at most once per window per
//! key, with how many were held back since, as Vector's internal logs do. Metrics still count
//! every occurrence.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub struct LogThrottle {
    window_ms: i64,
    /// Per key: when the next line may be written, and occurrences held back until then.
    keys: Mutex<Option<HashMap<&'static str, (i64, u64)>>>,
}

impl LogThrottle {
    pub const fn new(window: Duration) -> LogThrottle {
        LogThrottle {
            window_ms: window.as_millis() as i64,
            keys: Mutex::new(None),
        }
    }

    /// `Some(held back since the last line)` when this occurrence of `key` is to be logged.
    pub fn admit(&self, key: &'static str) -> Option<u64> {
        self.admit_at(key, sluice_event::now_ms())
    }

    fn admit_at(&self, key: &'static str, now_ms: i64) -> Option<u64> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let (next_ms, held_back) = keys
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_insert((i64::MIN, 0));
        if now_ms >= *next_ms {
            *next_ms = now_ms.saturating_add(self.window_ms);
            return Some(std::mem::take(held_back));
        }
        *held_back += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_logs_once_per_window_with_what_was_held_back() {
        let throttle = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(throttle.admit_at("queue_full", 1_000), Some(0));
        assert_eq!(throttle.admit_at("queue_full", 2_000), None);
        assert_eq!(throttle.admit_at("queue_full", 3_000), None);
        // Another key has its own window.
        assert_eq!(throttle.admit_at("disk_full", 3_000), Some(0));
        assert_eq!(throttle.admit_at("queue_full", 11_000), Some(2));
        assert_eq!(throttle.admit_at("queue_full", 11_001), None);
    }
}
