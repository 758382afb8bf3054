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

use std::collections::{BTreeMap, BTreeSet, HashSet};
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

/// The pipeline stage that gave up on a record: what a dead letter's `stage` says, and what
/// listings, replays and purges filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Parsing and validation against the event model.
    Validate,
    /// Building the document from the valid record and what enrichment added.
    Document,
    /// Sluice itself failed on this record (a panic): a bug, kept so it can be replayed.
    Process,
    /// The event store refused the document.
    Index,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Document => "document",
            Stage::Process => "process",
            Stage::Index => "index",
        }
    }
}

/// A record the pipeline could not index, kept with its original bytes and the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where the letter sits in the dead-letter queue, given when it is read back (`w<position>`
    /// in the WAL, `k<partition>-<offset>` in Kafka): what a purge names it by.
    #[serde(skip)]
    pub letter_id: String,
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

/// Which dead letters a listing or a purge is about: those meeting every condition given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterFilter {
    /// The stage that gave up (`validate`, `index`, `process`).
    pub stage: Option<String>,
    /// The reason's code (`invalid_value`, `mapping_conflict`, …).
    pub code: Option<String>,
    /// Failed at or after (epoch ms).
    pub from_ms: Option<i64>,
    /// Failed at or before (epoch ms).
    pub to_ms: Option<i64>,
    /// Only these letters, by [`DeadLetter::letter_id`].
    pub letter_ids: Option<BTreeSet<String>>,
    /// Letters dealt with already (purged): never matched, whatever else holds.
    pub settled: HashSet<String>,
    /// Record bytes a page may hold (0: no bound): records are up to a megabyte each.
    pub max_bytes: usize,
}

impl DeadLetterFilter {
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        !self.settled.contains(&letter.letter_id)
            && self
                .stage
                .as_ref()
                .is_none_or(|stage| *stage == letter.stage)
            && self
                .code
                .as_ref()
                .is_none_or(|code| code == letter.code.as_str())
            && self.from_ms.is_none_or(|from| letter.failed_at_ms >= from)
            && self.to_ms.is_none_or(|to| letter.failed_at_ms <= to)
            && self
                .letter_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&letter.letter_id))
    }
}

/// The newest letters a filter matches, gathered while a backend reads its letters in any
/// order: at most `limit` are held, and at most [`DeadLetterFilter::max_bytes`] of records
/// (but always the newest one), whatever the number read.
pub struct NewestMatching<'a> {
    filter: &'a DeadLetterFilter,
    limit: usize,
    total: u64,
    bytes: usize,
    /// The oldest of those kept on top, to be dropped first.
    kept: std::collections::BinaryHeap<std::cmp::Reverse<ByFailure>>,
}

/// A letter ordered by when it failed, then by where it sits in its log (letters of one batch
/// fail in the same millisecond).
struct ByFailure(DeadLetter, u64);

impl ByFailure {
    fn key(&self) -> (i64, u64) {
        (self.0.failed_at_ms, self.1)
    }
}

impl PartialEq for ByFailure {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByFailure {}

impl PartialOrd for ByFailure {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByFailure {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl<'a> NewestMatching<'a> {
    pub fn new(filter: &'a DeadLetterFilter, limit: usize) -> NewestMatching<'a> {
        NewestMatching {
            filter,
            limit,
            total: 0,
            bytes: 0,
            kept: std::collections::BinaryHeap::new(),
        }
    }

    /// Counts `letter`, found at `position` of its log, if the filter matches it, and keeps it
    /// while it is among the newest.
    pub fn offer(&mut self, letter: DeadLetter, position: u64) {
        if !self.filter.matches(&letter) {
            return;
        }
        self.total += 1;
        if self.limit == 0 {
            return;
        }
        self.bytes += letter.payload.len();
        self.kept
            .push(std::cmp::Reverse(ByFailure(letter, position)));
        let max_bytes = match self.filter.max_bytes {
            0 => usize::MAX,
            bound => bound,
        };
        while self.kept.len() > self.limit || (self.bytes > max_bytes && self.kept.len() > 1) {
            if let Some(std::cmp::Reverse(ByFailure(dropped, _))) = self.kept.pop() {
                self.bytes -= dropped.payload.len();
            }
        }
    }

    /// The page: the kept letters newest first, and how many matched.
    pub fn into_page(self) -> DeadLetterPage {
        // Ascending in `Reverse` is newest first.
        let letters = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|std::cmp::Reverse(ByFailure(letter, _))| letter)
            .collect();
        DeadLetterPage {
            total: self.total,
            letters,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterPage {
    /// How many dead letters match (with no filter, how many are kept and not purged).
    pub total: u64,
    /// Newest first.
    pub letters: Vec<DeadLetter>,
}

#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Stores dead letters durably.
    async fn push(&self, letters: Vec<DeadLetter>) -> Result<(), QueueError>;

    /// The newest `limit` dead letters that `filter` matches, newest first, and how many it
    /// matches in all.
    async fn newest_matching(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<DeadLetterPage, QueueError>;

    /// The newest `limit` dead letters, newest first.
    async fn newest(&self, limit: usize) -> Result<DeadLetterPage, QueueError> {
        self.newest_matching(&DeadLetterFilter::default(), limit)
            .await
    }

    /// Whether the queue behind answers, for `/ready` of roles that hold no producer (the
    /// processor, the api). An embedded queue that opened is always ready.
    async fn ready(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(n: u64, stage: &str, code: RejectCode, bytes: usize) -> DeadLetter {
        DeadLetter {
            letter_id: format!("w{n}"),
            id: None,
            failed_at_ms: 1_000 + n as i64,
            received_at_ms: 0,
            source: Source::Queue,
            stage: stage.into(),
            code,
            field: None,
            reason: "because".into(),
            payload: vec![b'x'; bytes],
        }
    }

    fn page(filter: &DeadLetterFilter, limit: usize, letters: Vec<DeadLetter>) -> DeadLetterPage {
        let mut newest = NewestMatching::new(filter, limit);
        // In no particular order, as Kafka's partitions interleave.
        for (position, letter) in letters.into_iter().rev().enumerate() {
            newest.offer(letter, position as u64);
        }
        newest.into_page()
    }

    fn ids(page: &DeadLetterPage) -> Vec<&str> {
        page.letters.iter().map(|l| l.letter_id.as_str()).collect()
    }

    #[test]
    fn every_condition_must_hold_and_settled_letters_never_match() {
        let letters = || {
            vec![
                letter(0, "validate", RejectCode::Oversized, 1),
                letter(1, "validate", RejectCode::MalformedJson, 1),
                letter(2, "index", RejectCode::StoreRefused, 1),
                letter(3, "validate", RejectCode::Oversized, 1),
            ]
        };
        let everything = page(&DeadLetterFilter::default(), 10, letters());
        assert_eq!(ids(&everything), ["w3", "w2", "w1", "w0"], "newest first");
        assert_eq!(everything.total, 4);
        let oversized = DeadLetterFilter {
            stage: Some("validate".into()),
            code: Some("oversized".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(ids(&page(&oversized, 10, letters())), ["w3", "w0"]);
        let window = DeadLetterFilter {
            from_ms: Some(1_001),
            to_ms: Some(1_002),
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            ids(&page(&window, 10, letters())),
            ["w2", "w1"],
            "both ends in"
        );
        let named = DeadLetterFilter {
            letter_ids: Some(["w0".to_owned(), "w2".to_owned()].into()),
            settled: ["w2".to_owned()].into(),
            ..DeadLetterFilter::default()
        };
        let named = page(&named, 10, letters());
        assert_eq!(ids(&named), ["w0"]);
        assert_eq!(named.total, 1, "a settled letter is not counted");
    }

    #[test]
    fn a_page_holds_the_newest_within_its_count_and_bytes_but_counts_all() {
        let letters = || {
            (0..10)
                .map(|n| letter(n, "index", RejectCode::StoreRefused, 100))
                .collect()
        };
        let few = page(&DeadLetterFilter::default(), 3, letters());
        assert_eq!(ids(&few), ["w9", "w8", "w7"]);
        assert_eq!(few.total, 10);
        let bounded = DeadLetterFilter {
            max_bytes: 250,
            ..DeadLetterFilter::default()
        };
        let small = page(&bounded, 100, letters());
        assert_eq!(ids(&small), ["w9", "w8"]);
        assert_eq!(small.total, 10);
        let tiny = DeadLetterFilter {
            max_bytes: 10,
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            ids(&page(&tiny, 100, letters())),
            ["w9"],
            "always the newest"
        );
        assert_eq!(page(&DeadLetterFilter::default(), 0, letters()).total, 10);
    }
}
