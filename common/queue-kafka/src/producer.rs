//! Ingest's side: produce a batch and return once every record of it is acknowledged by all
//! in-sync replicas.

use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{KafkaTarget, envelope_headers, unavailable};
use sluice_event::QueuedRecord;
use sluice_queue::{Backlog, Queue, QueueError};

/// How long a record may wait for its acknowledgement before the batch is failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct KafkaQueue {
    producer: FutureProducer,
    topic: String,
    /// The producer buffer's bound, reported when it is full.
    buffer_bytes: usize,
}

impl KafkaQueue {
    pub fn connect(target: &KafkaTarget) -> Result<KafkaQueue, QueueError> {
        let producer = producer(target, &target.config.topic)?;
        Ok(KafkaQueue {
            producer,
            topic: target.config.topic.clone(),
            buffer_bytes: usize::try_from(target.config.producer_buffer_kbytes * 1024)
                .unwrap_or(usize::MAX),
        })
    }
}

/// A producer with the durability settings every Sluice producer uses.
pub(super) fn producer(target: &KafkaTarget, purpose: &str) -> Result<FutureProducer, QueueError> {
    let config = target.client_config(&[
        ("acks", "all".into()),
        ("enable.idempotence", "true".into()),
        // Idempotence keeps order with up to 5 requests in flight per connection.
        ("max.in.flight.requests.per.connection", "5".into()),
        ("compression.type", "lz4".into()),
        ("linger.ms", target.config.linger_ms.to_string()),
        (
            "queue.buffering.max.kbytes",
            target.config.producer_buffer_kbytes.to_string(),
        ),
        (
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        ),
    ]);
    config
        .create()
        .map_err(|e| unavailable(&format!("producer for {purpose}"), e))
}

#[async_trait]
impl Queue for KafkaQueue {
    async fn append(&self, records: Vec<QueuedRecord>) -> Result<(), QueueError> {
        let deliveries = records.iter().map(|record| {
            let mut message = FutureRecord::to(&self.topic)
                .payload(&record.payload)
                .headers(envelope_headers(record));
            if let Some(key) = &record.partition_key {
                message = message.key(key);
            }
            // Waiting (up to the delivery timeout) for room in a full producer buffer is the
            // back-pressure: the request answers late rather than holding unbounded memory.
            self.producer.send(message, DELIVERY_TIMEOUT)
        });
        for outcome in join_all(deliveries).await {
            if let Err((error, _)) = outcome {
                return Err(match error {
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                        QueueError::Full {
                            backlog_bytes: self.buffer_bytes,
                            limit_bytes: self.buffer_bytes,
                        }
                    }
                    other => unavailable("delivery", other),
                });
            }
        }
        Ok(())
    }

    /// Kafka keeps the backlog on the brokers' disks; what waits here is only what the producer
    /// holds unacknowledged, which librdkafka bounds itself.
    fn backlog(&self) -> Backlog {
        Backlog {
            records: u64::try_from(self.producer.in_flight_count()).unwrap_or(0),
            bytes: 0,
            limit_bytes: usize::MAX,
        }
    }
}
