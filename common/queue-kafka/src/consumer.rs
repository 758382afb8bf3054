//! The processor's side: a consumer group member that hands out batches, each with the offsets
//! after its records, and commits those offsets once the store has acknowledged the batch.
//! Prefetch is bounded, so a backlog stays on the brokers instead of in memory; lag comes from
//! librdkafka's statistics.
//!
//! Partitions can only be revoked inside `recv`, which runs in `next_batch`, while the batch
//! before may still be being written (the processor overlaps the two). A batch whose partitions
//! moved meanwhile fails to commit (the group's generation changed) and is replayed by the new
//! owner from the last commit, under the same ids, so the index still holds each event once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Message, Offset, Statistics, TopicPartitionList};

use super::{KafkaTarget, record_from, unavailable};
use sluice_event::QueuedRecord;
use sluice_queue::{Backlog, Batch, BatchLimit, Checkpoint, QueueConsumer, QueueError};
use sluice_telemetry::emit;
use sluice_telemetry::events::QueuePartitionLag;

/// Keeps the group's total lag from librdkafka's periodic statistics.
struct LagContext {
    topic: String,
    lag: Arc<AtomicU64>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let mut total = 0;
        // Partition -1 is librdkafka's internal "unassigned" entry; -1 lag means not known yet.
        for (&partition, stats) in topic.partitions.iter().filter(|(p, _)| **p >= 0) {
            if let Ok(lag) = u64::try_from(stats.consumer_lag) {
                total += lag;
                emit(QueuePartitionLag {
                    topic: &self.topic,
                    partition,
                    records: lag,
                });
            }
        }
        self.lag.store(total, Ordering::Relaxed);
    }
}

impl ConsumerContext for LagContext {
    /// Partitions that moved to another member stop counting here: their lag is now reported by
    /// the new owner, and a stale value would be added twice in a sum over processors.
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            for element in partitions.elements_for_topic(&self.topic) {
                emit(QueuePartitionLag {
                    topic: &self.topic,
                    partition: element.partition(),
                    records: 0,
                });
            }
        }
    }
}

pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<LagContext>>,
    topic: String,
    /// A message read but past the last batch's byte limit: the first of the next batch. It
    /// is not delivered (nor committed) until then.
    held: Option<Received>,
    lag: Arc<AtomicU64>,
}

/// A record read off a partition, with the offset to commit once it is done.
struct Received {
    record: QueuedRecord,
    partition: i32,
    next_offset: i64,
}

impl KafkaConsumer {
    pub fn connect(target: &KafkaTarget) -> Result<KafkaConsumer, QueueError> {
        let lag = Arc::new(AtomicU64::new(0));
        let context = LagContext {
            topic: target.config.topic.clone(),
            lag: Arc::clone(&lag),
        };
        let config = target.client_config(&[
            ("group.id", target.config.group_id.clone()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            (
                "session.timeout.ms",
                target.config.session_timeout_ms.to_string(),
            ),
            (
                "queued.max.messages.kbytes",
                target.config.consumer_prefetch_kbytes.to_string(),
            ),
            ("statistics.interval.ms", "5000".into()),
            // Partitions added to the topic reach the group within half a minute.
            ("topic.metadata.refresh.interval.ms", "30000".into()),
        ]);
        let consumer: StreamConsumer<LagContext> = config
            .create_with_context(context)
            .map_err(|e| unavailable("consumer", e))?;
        consumer
            .subscribe(&[&target.config.topic])
            .map_err(|e| unavailable("subscribe", e))?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            topic: target.config.topic.clone(),
            held: None,
            lag,
        })
    }

    fn read(message: &rdkafka::message::BorrowedMessage<'_>) -> Received {
        let mut record = record_from(
            message.headers(),
            message.timestamp().to_millis(),
            message.payload().unwrap_or_default(),
        );
        record.partition_key = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .map(str::to_owned);
        Received {
            record,
            partition: message.partition(),
            next_offset: message.offset() + 1,
        }
    }

    fn deliver(batch: &mut Batch, received: Received) {
        // Offsets are never negative.
        let next = u64::try_from(received.next_offset).unwrap_or_default();
        batch.checkpoint.advance(received.partition, next);
        batch.records.push(received.record);
    }

    /// The held message, or the next one prefetched (`None` when none is there without waiting).
    async fn next_ready(&mut self) -> Result<Option<Received>, QueueError> {
        if let Some(held) = self.held.take() {
            return Ok(Some(held));
        }
        match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
            Ok(Ok(message)) => Ok(Some(Self::read(&message))),
            Ok(Err(e)) => Err(unavailable("receive", e)),
            Err(_) => Ok(None),
        }
    }
}

#[async_trait]
impl QueueConsumer for KafkaConsumer {
    async fn next_batch(&mut self, limit: BatchLimit, wait: Duration) -> Result<Batch, QueueError> {
        let consumer = Arc::clone(&self.consumer);
        let mut batch = Batch::default();
        let first = match self.held.take() {
            Some(held) => held,
            None => match tokio::time::timeout(wait, consumer.recv()).await {
                Err(_) => return Ok(batch),
                Ok(message) => Self::read(&message.map_err(|e| unavailable("receive", e))?),
            },
        };
        let mut bytes = first.record.payload.len();
        Self::deliver(&mut batch, first);
        // Whatever else is already prefetched joins the batch without waiting. A message past
        // the byte limit is held for the next batch.
        while batch.len() < limit.records {
            let Some(next) = self.next_ready().await? else {
                break;
            };
            if !limit.admits(batch.len(), bytes, next.record.payload.len()) {
                self.held = Some(next);
                break;
            }
            bytes += next.record.payload.len();
            Self::deliver(&mut batch, next);
        }
        Ok(batch)
    }

    async fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), QueueError> {
        if checkpoint.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in checkpoint.partitions() {
            let next = i64::try_from(next).map_err(|_| {
                QueueError::Unavailable(format!(
                    "offset {next} of partition {partition} is out of range"
                ))
            })?;
            offsets
                .add_partition_offset(&self.topic, partition, Offset::Offset(next))
                .map_err(|e| unavailable("commit", e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        let outcome =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                .await
                .map_err(|e| unavailable("commit", e))?;
        match outcome {
            Ok(()) => Ok(()),
            // The group moved the partitions elsewhere meanwhile: their new owner reads from
            // the last commit, so the batch is indexed again there, under the same ids.
            Err(KafkaError::ConsumerCommit(code)) => {
                tracing::warn!(error = %code, "offsets not committed after a rebalance; the new owner replays them");
                Ok(())
            }
            Err(e) => Err(unavailable("commit", e)),
        }
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            records: self.lag.load(Ordering::Relaxed),
            bytes: 0,
            limit_bytes: usize::MAX,
        }
    }
}
