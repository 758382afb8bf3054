//! `[queue.kafka]`: topics, the consumer group and librdkafka's settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// The topic ingest writes and the processor reads.
    pub topic: String,
    pub dead_letter_topic: String,
    /// The processors' consumer group.
    pub group_id: String,
    /// How long the producer waits to fill a batch.
    pub linger_ms: u64,
    /// Bound on what the producer holds unacknowledged; past it ingest answers 503.
    pub producer_buffer_kbytes: u64,
    /// Bound on what the consumer prefetches, so a backlog cannot grow the processor's memory.
    pub consumer_prefetch_kbytes: u64,
    /// How long a silent processor keeps its partitions.
    pub session_timeout_ms: u64,
    /// Partitions of the topics Sluice creates when they are missing (the most processors that
    /// can share the work).
    pub partitions: i32,
    /// Replicas of those topics; -1 takes the brokers' default.
    pub replication_factor: i32,
    /// Any other librdkafka setting (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`…).
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            topic: "sluice-logs".into(),
            dead_letter_topic: "sluice-dead-letters".into(),
            group_id: "sluice-processor".into(),
            linger_ms: 5,
            producer_buffer_kbytes: 64 * 1024,
            consumer_prefetch_kbytes: 16 * 1024,
            session_timeout_ms: 10_000,
            partitions: 6,
            replication_factor: -1,
            options: BTreeMap::new(),
        }
    }
}
