//! What a component found failing while it worked, for `/ready` and the metrics.
//!
//! A ping says a backend answers; it does not say the processor can write to it (a full disk,
//! a dead index writer, an Elasticsearch that refuses every bulk request). The component that
//! does the work says when an operation on a backend fails and when it works again; `/ready`
//! lists what fails now, since when, how often and why, and `sluice_backend_up{check}` follows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::emit;
use crate::events::{BackendFailing, BackendRecovered};

#[derive(Clone, Default)]
pub struct Health {
    failing: Arc<Mutex<BTreeMap<&'static str, Failure>>>,
}

/// A backend failing for one check.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub reason: String,
    /// When it started failing, epoch milliseconds.
    pub since_ms: i64,
    pub attempts: u64,
    #[serde(skip)]
    started: Instant,
}

impl Health {
    /// `check` failed (again) for `reason`.
    pub fn failing(&self, check: &'static str, reason: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let first = !failing.contains_key(check);
        let failure = failing.entry(check).or_insert_with(|| Failure {
            reason: String::new(),
            since_ms: sluice_event::now_ms(),
            attempts: 0,
            started: Instant::now(),
        });
        failure.attempts += 1;
        reason.clone_into(&mut failure.reason);
        drop(failing);
        emit(BackendFailing {
            check,
            reason,
            first,
        });
    }

    /// `check` works (again).
    pub fn recovered(&self, check: &'static str) {
        let removed = self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(check);
        if let Some(failure) = removed {
            emit(BackendRecovered {
                check,
                failing_for: failure.started.elapsed(),
                attempts: failure.attempts,
            });
        }
    }

    /// What fails now.
    pub fn failures(&self) -> Vec<(&'static str, Failure)> {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(check, failure)| (*check, failure.clone()))
            .collect()
    }

    /// How long `check` has been failing, if it is.
    pub fn failing_for(&self, check: &str) -> Option<Duration> {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(check)
            .map(|f| f.started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_until_the_check_recovers() {
        let health = Health::default();
        assert!(health.failures().is_empty());
        health.failing("store", "disk full");
        health.failing("store", "still full");
        let failures = health.failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "store");
        assert_eq!(failures[0].1.attempts, 2);
        assert_eq!(failures[0].1.reason, "still full");
        assert!(health.failing_for("store").is_some());
        health.recovered("store");
        assert!(health.failures().is_empty());
    }
}
