//! Dead letters on their own topic: the record's bytes as the value, the reason in headers (and
//! the full description as JSON in one header) so any Kafka tool can read why. Listing reads the
//! topic back with a consumer outside any group.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{KafkaTarget, unavailable};
use sluice_queue::{
    DeadLetter, DeadLetterFilter, DeadLetterPage, DeadLetterQueue, NewestMatching, QueueError,
};

const DESCRIPTION: &str = "sluice-dead-letter";
const REASON: &str = "sluice-reason";
const CODE: &str = "sluice-code";
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Short, so `/ready` answers before a load balancer's probe gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    target: KafkaTarget,
}

impl KafkaDeadLetters {
    pub fn connect(target: &KafkaTarget) -> Result<KafkaDeadLetters, QueueError> {
        Ok(KafkaDeadLetters {
            producer: super::producer::producer(target, &target.config.dead_letter_topic)?,
            target: target.clone(),
        })
    }
}

/// The newest `limit` dead letters of `topic` that `filter` matches, newest first, and how many
/// it matches, read from the start of every partition to its end without joining a group.
/// Counting by reading, not by offsets, stays right where offsets have gaps (compaction,
/// transaction markers); the topic's retention bounds the work.
fn read_newest(
    target: &KafkaTarget,
    topic: &str,
    filter: &DeadLetterFilter,
    limit: usize,
) -> Result<DeadLetterPage, QueueError> {
    let consumer: BaseConsumer = target
        .client_config(&[
            ("group.id", "sluice-dead-letter-reader".into()),
            ("enable.auto.commit", "false".into()),
            ("enable.partition.eof", "true".into()),
        ])
        .create()
        .map_err(|e| unavailable("dead-letter reader", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(|e| unavailable("dead-letter metadata", e))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| unavailable("dead-letter assignment", e))?;
    }
    let mut unfinished = assignment.count();
    consumer
        .assign(&assignment)
        .map_err(|e| unavailable("dead-letter assignment", e))?;
    let mut newest = NewestMatching::new(filter, limit);
    let deadline = std::time::Instant::now() + BROKER_TIMEOUT;
    while unfinished > 0 && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let described = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| h.key == DESCRIPTION)
                        .and_then(|h| serde_json::from_slice::<DeadLetter>(h.value?).ok())
                });
                if let Some(mut letter) = described {
                    let offset = u64::try_from(message.offset()).unwrap_or_default();
                    letter.letter_id = format!("k{}-{offset}", message.partition());
                    letter.payload = message.payload().unwrap_or_default().to_vec();
                    newest.offer(letter, offset);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => unfinished -= 1,
            Some(Err(e)) => return Err(unavailable("dead-letter read", e)),
            None => {}
        }
    }
    Ok(newest.into_page())
}

#[async_trait]
impl DeadLetterQueue for KafkaDeadLetters {
    async fn push(&self, letters: Vec<DeadLetter>) -> Result<(), QueueError> {
        let topic = &self.target.config.dead_letter_topic;
        let described: Vec<Vec<u8>> = letters
            .iter()
            .map(|letter| serde_json::to_vec(letter).unwrap_or_default())
            .collect();
        let deliveries = letters.iter().zip(&described).map(|(letter, description)| {
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: DESCRIPTION,
                    value: Some(description.as_slice()),
                })
                .insert(Header {
                    key: REASON,
                    value: Some(letter.reason.as_bytes()),
                })
                .insert(Header {
                    key: CODE,
                    value: Some(letter.code.as_str().as_bytes()),
                });
            let mut message = FutureRecord::to(topic)
                .payload(&letter.payload)
                .headers(headers);
            if let Some(id) = &letter.id {
                message = message.key(id);
            }
            self.producer.send(message, BROKER_TIMEOUT)
        });
        for outcome in futures::future::join_all(deliveries).await {
            outcome.map_err(|(e, _)| unavailable("dead-letter delivery", e))?;
        }
        Ok(())
    }

    async fn newest_matching(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<DeadLetterPage, QueueError> {
        let target = self.target.clone();
        let filter = filter.clone();
        tokio::task::spawn_blocking(move || {
            let topic = target.config.dead_letter_topic.clone();
            read_newest(&target, &topic, &filter, limit)
        })
        .await
        .map_err(|e| unavailable("dead-letter reader", e))?
    }

    /// The brokers answer a metadata request for the dead-letter topic.
    async fn ready(&self) -> Result<(), QueueError> {
        let producer = self.producer.clone();
        let topic = self.target.config.dead_letter_topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), READY_TIMEOUT)
                .map(drop)
                .map_err(|e| unavailable("metadata", e))
        })
        .await
        .map_err(|e| unavailable("metadata", e))?
    }
}
