//! Shared core of Sluice: the event model and its validation, configuration, the backend traits
//! every role talks to (queue, event store, meta store, cache) with their embedded adapters, the
//! fraud engine, sample-data generation and the telemetry pattern.
//!
//! Roles (`ingest`, `processor`, `api`) never import each other; everything they share lives here
//! so the one-binary mode and the distributed mode run the same code above the traits.

pub mod auth;
pub mod cache;
pub mod config;
pub mod event;
pub mod fraud;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod meta;
pub mod queue;
pub mod sample;
#[cfg(test)]
mod small_disk;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod validate;

/// Milliseconds since the Unix epoch, the one clock unit used across Sluice.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
