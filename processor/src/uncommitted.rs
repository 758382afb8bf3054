//! What the processor wrote to the store since the store last committed.
//!
//! The embedded store makes writes durable with a commit, which serialises the segment it was
//! building, syncs it and reopens the reader. Committing each batch made many small segments,
//! merged again and again, and stopped indexing at every batch. So batches are written
//! (`EventStore::write`) as they come and committed together, once the oldest of them is
//! `processor.commit_interval_ms` old or `processor.commit_max_records` documents wait; the
//! queue position moves past them only after that commit, so a crash before it replays them,
//! as it would have replayed one batch.
//!
//! Until the commit, their documents are kept here: a failed write or commit loses everything
//! the store had not committed, and these are written again (the fraud engine, whose state
//! each event moves, sees every event once). Their checkpoints are merged into one that covers
//! them all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::ProcessorConfig;
use sluice_queue::Checkpoint;
use sluice_store::StoreDocument;

#[derive(Debug, Default)]
pub(crate) struct Uncommitted {
    batches: Vec<Arc<Vec<StoreDocument>>>,
    /// Covers every batch written since the last commit; empty when none was.
    checkpoint: Checkpoint,
    documents: usize,
    oldest: Option<Instant>,
}

/// When the written batches are committed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitPolicy {
    interval: Duration,
    max_documents: usize,
}

impl CommitPolicy {
    pub fn of(config: &ProcessorConfig) -> CommitPolicy {
        CommitPolicy {
            interval: Duration::from_millis(config.commit_interval_ms),
            max_documents: config.commit_max_records.max(1),
        }
    }
}

impl Uncommitted {
    /// A batch the store took: its documents (none when every record was dead-lettered) and
    /// where it ends in the queue.
    pub fn add(&mut self, checkpoint: &Checkpoint, documents: Arc<Vec<StoreDocument>>) {
        self.checkpoint.extend(checkpoint);
        self.oldest.get_or_insert_with(Instant::now);
        if !documents.is_empty() {
            self.documents += documents.len();
            self.batches.push(documents);
        }
    }

    pub fn is_due(&self, policy: CommitPolicy) -> bool {
        self.documents >= policy.max_documents
            || self
                .oldest
                .is_some_and(|oldest| oldest.elapsed() >= policy.interval)
    }

    /// Where the queue may be committed to once the store committed; `None` when nothing was
    /// written since the last commit.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        (!self.checkpoint.is_empty()).then_some(&self.checkpoint)
    }

    /// The documents written since the last commit, batch by batch, in order.
    pub fn batches(&self) -> &[Arc<Vec<StoreDocument>>] {
        &self.batches
    }

    pub fn documents(&self) -> usize {
        self.documents
    }

    /// Everything is committed.
    pub fn clear(&mut self) {
        *self = Uncommitted::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(count: usize) -> Arc<Vec<StoreDocument>> {
        Arc::new(
            (0..count)
                .map(|n| {
                    StoreDocument::from_source(
                        &format!("d{n}"),
                        0,
                        &serde_json::json!({ "log_type": "error" }),
                    )
                })
                .collect(),
        )
    }

    fn through(partition: i32, next: u64) -> Checkpoint {
        let mut checkpoint = Checkpoint::default();
        checkpoint.advance(partition, next);
        checkpoint
    }

    #[test]
    fn the_checkpoint_covers_every_partition_of_every_batch() {
        let mut uncommitted = Uncommitted::default();
        assert!(uncommitted.checkpoint().is_none());
        uncommitted.add(&through(0, 10), documents(2));
        uncommitted.add(&through(1, 4), documents(0));
        uncommitted.add(&through(0, 25), documents(3));
        let checkpoint = uncommitted.checkpoint().expect("written");
        assert_eq!(
            checkpoint.partitions().collect::<Vec<_>>(),
            [(0, 25), (1, 4)]
        );
        // A batch of dead letters only has no documents to write again.
        assert_eq!(uncommitted.batches().len(), 2);
        assert_eq!(uncommitted.documents(), 5);
        uncommitted.clear();
        assert!(uncommitted.checkpoint().is_none() && uncommitted.batches().is_empty());
    }

    #[test]
    fn a_commit_is_due_by_documents_or_by_age() {
        let policy = |ms, max| CommitPolicy {
            interval: Duration::from_millis(ms),
            max_documents: max,
        };
        let mut uncommitted = Uncommitted::default();
        assert!(!uncommitted.is_due(policy(0, 1)), "nothing written");
        uncommitted.add(&through(0, 1), documents(3));
        assert!(!uncommitted.is_due(policy(60_000, 4)));
        assert!(uncommitted.is_due(policy(60_000, 3)));
        assert!(uncommitted.is_due(policy(0, 100)));
    }
}
