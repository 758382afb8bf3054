//! The distributed queue: Kafka (`rdkafka`, librdkafka bundled). Ingest produces with
//! `acks=all` and idempotence, keyed by `user_id` so one customer's events stay in order, and
//! answers only once the broker has acknowledged the batch. The processor reads in a consumer
//! group and commits offsets only after the store has acknowledged what it wrote. Dead letters go
//! to their own topic, the reason in headers.
//!
//! A message's value is the producer's record, unchanged; Sluice's envelope (document id, receive
//! time, source) travels in headers. Records other producers write straight to the topic have no
//! such headers and are validated by the processor like any other.

mod consumer;
mod dead_letters;
mod producer;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::types::RDKafkaErrorCode;

pub use consumer::KafkaConsumer;
pub use dead_letters::KafkaDeadLetters;
pub use producer::KafkaQueue;
pub use sluice_config::KafkaConfig;

use sluice_event::{QueuedRecord, Source};
use sluice_queue::QueueError;

/// Where to connect and how, shared by every client Sluice makes.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    pub brokers: String,
    pub config: KafkaConfig,
}

impl KafkaTarget {
    /// A client's settings: Sluice's `settings` for its purpose, then the configured `options`,
    /// which win, so an operator can override anything.
    fn client_config(&self, settings: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "sluice");
        for (key, value) in settings {
            config.set(*key, value);
        }
        for (key, value) in &self.config.options {
            config.set(key, value);
        }
        config
    }
}

impl KafkaTarget {
    /// Creates the log and dead-letter topics if they do not exist yet, so a consumer never
    /// subscribes to a topic that is not there.
    pub async fn ensure_topics(&self) -> Result<(), QueueError> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config(&[])
            .create()
            .map_err(|e| unavailable("admin client", e))?;
        let topics = [&self.config.topic, &self.config.dead_letter_topic].map(|name| {
            NewTopic::new(
                name,
                self.config.partitions,
                TopicReplication::Fixed(self.config.replication_factor),
            )
        });
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let outcomes = admin
            .create_topics(&topics, &options)
            .await
            .map_err(|e| unavailable("creating topics", e))?;
        for outcome in outcomes {
            match outcome {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(unavailable(&format!("creating topic {topic}"), code));
                }
            }
        }
        Ok(())
    }
}

fn unavailable(context: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("Kafka {context}: {e}"))
}

const ID: &str = "sluice-id";
const RECEIVED_AT: &str = "sluice-received-at";
const SOURCE: &str = "sluice-source";

fn envelope_headers(record: &QueuedRecord) -> OwnedHeaders {
    let received_at = record.received_at_ms.to_string();
    let mut headers = OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: RECEIVED_AT,
            value: Some(received_at.as_bytes()),
        })
        .insert(Header {
            key: SOURCE,
            value: Some(record.source.as_str().as_bytes()),
        });
    if let Some(id) = &record.id {
        headers = headers.insert(Header {
            key: ID,
            value: Some(id.as_bytes()),
        });
    }
    headers
}

/// The record a message carries: Sluice's envelope from its headers when it has them, else a
/// record from another producer, received when the broker stamped it.
fn record_from(
    headers: Option<&impl Headers>,
    timestamp_ms: Option<i64>,
    payload: &[u8],
) -> QueuedRecord {
    let mut record = QueuedRecord {
        id: None,
        received_at_ms: timestamp_ms.unwrap_or_else(sluice_event::now_ms),
        source: Source::Queue,
        partition_key: None,
        payload: payload.to_vec(),
    };
    let Some(headers) = headers else {
        return record;
    };
    for header in headers.iter() {
        let Some(value) = header.value.and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        match header.key {
            ID => record.id = Some(value.to_owned()),
            RECEIVED_AT => {
                if let Ok(ms) = value.parse() {
                    record.received_at_ms = ms;
                }
            }
            SOURCE => {
                if let Some(source) = Source::parse(value) {
                    record.source = source;
                }
            }
            _ => {}
        }
    }
    record
}

#[cfg(test)]
mod tests;
