//! The queue between ingest and the processor, and the dead-letter queue beside it.
//!
//! Two promises hold for every adapter: [`Queue::append`] returns only once the records would
//! survive a crash (so ingest can answer 202), and a consumer's [`QueueConsumer::commit`] is the
//! only thing that makes a record go away (so the processor commits only after the store has
//! acknowledged what it wrote). Everything between is replayed after a crash.
//!
//! A batch comes with its [`Checkpoint`]: where it ends in each partition. Committing a
//! checkpoint marks everything through it done and nothing after it, so the processor can read
//! and transform the next batch while the store still writes this one, and commit each in turn.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use sluice_event::validate::RejectCode;
use sluice_event::{QueuedRecord, Source};

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("queue storage at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("queue log at {path} is corrupted or unreadable: {detail}")]
    Corrupted { path: String, detail: String },
    /// The disk holding the queue is full: nothing of the append was kept.
    #[error("no space left for the queue at {path} ({free_bytes} bytes free): {source}")]
    DiskFull {
        path: String,
        free_bytes: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("queue at {path} cannot be opened: {detail}")]
    Format { path: String, detail: String },
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue is full: {backlog_bytes} bytes wait for the processor (limit {limit_bytes})")]
    Full {
        backlog_bytes: usize,
        limit_bytes: usize,
    },
}

/// How much is waiting for the processor. Ingest refuses new work (503 with `Retry-After`)
/// past the configured high-water mark instead of letting memory or disk grow without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Backlog {
    pub records: u64,
    pub bytes: usize,
    pub limit_bytes: usize,
}

impl Backlog {
    pub fn is_full(&self) -> bool {
        self.bytes >= self.limit_bytes
    }
}

/// The producer side: what ingest writes to.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Appends records; returns once they are durable.
    async fn append(&self, records: Vec<QueuedRecord>) -> Result<(), QueueError>;

    /// What waits for the processor right now.
    fn backlog(&self) -> Backlog;
}

/// How much one batch may hold: whichever limit comes first. A batch holds at least one record,
/// however large, so the bytes bound a batch to its limit plus one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    pub records: usize,
    /// Payload bytes.
    pub bytes: usize,
}

impl BatchLimit {
    /// Whether a batch of `records` holding `bytes` can take one more of `next` bytes.
    pub fn admits(&self, records: usize, bytes: usize, next: usize) -> bool {
        records == 0 || (records < self.records && bytes + next <= self.bytes)
    }
}

/// Where a batch ends: for each partition it read from, the position of the record after its
/// last one (Kafka's "next offset to consume"; the WAL has one partition, 0). Committing it
/// commits those partitions through there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    next: BTreeMap<i32, u64>,
}

impl Checkpoint {
    /// Records that `partition` was read up to, not including, `next`.
    pub fn advance(&mut self, partition: i32, next: u64) {
        let entry = self.next.entry(partition).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Takes in where a later batch ends: committing the result commits both.
    pub fn extend(&mut self, later: &Checkpoint) {
        for (partition, next) in later.partitions() {
            self.advance(partition, next);
        }
    }

    /// The position after the batch's last record of `partition`, if it read from it.
    pub fn next_of(&self, partition: i32) -> Option<u64> {
        self.next.get(&partition).copied()
    }

    /// Each partition and the position after its last record, by partition.
    pub fn partitions(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.next
            .iter()
            .map(|(&partition, &next)| (partition, next))
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }
}

/// Records read from the queue, in order, and where they end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<QueuedRecord>,
    pub checkpoint: Checkpoint,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// The consumer side: what the processor reads from.
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    /// Records after those already delivered, within `limit`, waiting at most `wait` for the
    /// first. An empty batch means nothing arrived in time.
    /// Not cancel-safe: a batch being read when its future is dropped may be skipped until the
    /// next start.
    async fn next_batch(&mut self, limit: BatchLimit, wait: Duration) -> Result<Batch, QueueError>;

    /// Marks every record through `checkpoint` done: they will not be delivered again, after a
    /// restart either. Batches delivered after it stay uncommitted. Checkpoints are committed in
    /// the order their batches were delivered.
    async fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), QueueError>;

    /// What waits in the queue, for the lag metrics.
    fn backlog(&self) -> Backlog;

    /// Whether the records this consumer delivers were validated by Sluice's ingest before they
    /// were queued (the WAL, which only ingest writes), so that the processor reads them
    /// without checking them again. A record marked [`Source::Queue`] came another way and is
    /// checked whatever this says.
    fn validated_at_ingest(&self) -> bool {
        false
    }
}

/// A record the pipeline could not index, kept with its original bytes and the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Id of the document the record would have become, when one could be derived.
    pub id: Option<String>,
    pub failed_at_ms: i64,
    pub received_at_ms: i64,
    pub source: Source,
    /// The pipeline stage that gave up: `validate`, `index`.
    pub stage: String,
    pub code: RejectCode,
    pub field: Option<String>,
    pub reason: String,
    /// The record exactly as it sat in the queue.
    #[serde(skip)]
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterPage {
    /// How many dead letters are kept in all.
    pub total: u64,
    /// Newest first.
    pub letters: Vec<DeadLetter>,
}

#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Stores dead letters durably.
    async fn push(&self, letters: Vec<DeadLetter>) -> Result<(), QueueError>;

    /// The newest `limit` dead letters, newest first.
    async fn newest(&self, limit: usize) -> Result<DeadLetterPage, QueueError>;

    /// Whether the queue behind answers, for `/ready` of roles that hold no producer (the
    /// processor, the api). An embedded queue that opened is always ready.
    async fn ready(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
