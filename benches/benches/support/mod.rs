//! What the benchmarks share: the events they feed the pipeline.

use sluice_event::{QueuedRecord, Source};
use sluice_sample::SampleGenerator;

/// The end of the generated events' day, fixed so every run reads the same records.
pub const END_MS: i64 = 1_767_225_600_000;

/// `count` generated events (seed 7: all five log types, ~35 % transactions) over the day
/// before [`END_MS`], as ingest queues them.
pub fn records(count: usize) -> Vec<QueuedRecord> {
    SampleGenerator::new(7, count, END_MS, 86_400_000)
        .take(count)
        .map(|event| QueuedRecord {
            id: None,
            received_at_ms: END_MS,
            source: Source::Http,
            partition_key: None,
            payload: serde_json::to_vec(&event).expect("serialises"),
        })
        .collect()
}
