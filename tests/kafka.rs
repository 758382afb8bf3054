//! `sluice serve` with Kafka as its queue (`queue.url = kafka://…`), against the Kafka-protocol
//! broker `scripts/test.sh` starts: events sent over HTTP go through Kafka and are searchable;
//! records other producers write straight to the topic are processed, and malformed ones become
//! dead letters the API lists.

use crate::support;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use support::{Server, count_by_type, generate, search_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_through_kafka_and_foreign_records_are_validated() {
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS: run the suite through scripts/test.sh");
    let unique = format!("{}-{}", std::process::id(), sluice_event::now_ms());
    let topic = format!("e2e-logs-{unique}");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("kafka://{brokers}");
    let dead_topic = format!("e2e-dead-{unique}");
    let group = format!("e2e-group-{unique}");
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("SLUICE_QUEUE__URL", url.as_str()),
            ("SLUICE_QUEUE__KAFKA__TOPIC", topic.as_str()),
            (
                "SLUICE_QUEUE__KAFKA__DEAD_LETTER_TOPIC",
                dead_topic.as_str(),
            ),
            ("SLUICE_QUEUE__KAFKA__GROUP_ID", group.as_str()),
            ("SLUICE_QUEUE__KAFKA__SESSION_TIMEOUT_MS", "6000"),
        ],
    );
    assert!(
        !dir.path().join("queue").exists(),
        "no WAL when Kafka is the queue"
    );

    let events = generate(41, 2_000, 1, 2);
    for chunk in events.chunks(500) {
        let (status, answer) = server.post_ndjson("/api/logs/ingest", chunk).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["accepted"], 500);
    }
    let now = sluice_event::now_ms();
    let (from, to) = (now - 4 * 3_600_000, now + 60_000);
    for (log_type, count) in count_by_type(&events) {
        let mut query = search_all(&log_type, from, to);
        query["size"] = json!(0);
        server
            .wait_for_total(query, count, Duration::from_secs(120))
            .await;
    }

    // A plain Kafka producer, no Sluice envelope: one good record, one broken.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let good = json!({"log_type": "error", "error_message": "straight from kafka",
                      "service": "legacy-shipper", "timestamp": now - 1_000});
    for payload in [
        good.to_string(),
        "{\"log_type\": \"transaction\", \"amount\": -1".to_owned(),
    ] {
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    server
        .wait_for_total(
            json!({"query": "\"straight from kafka\"", "from": from, "to": to, "size": 0}),
            1,
            Duration::from_secs(60),
        )
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let letters = server.get_json("/api/dead-letters?limit=10").await;
        if letters["total"].as_u64() == Some(1) {
            assert_eq!(
                letters["dead_letters"][0]["code"], "malformed_json",
                "{letters}"
            );
            assert_eq!(letters["dead_letters"][0]["source"], "queue");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {letters}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The group's lag per partition, from librdkafka's statistics (every 5 s).
    let gauge = "sluice_queue_partition_lag_records{";
    let label = format!("topic=\"{topic}\"");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = server.get_text("/metrics").await;
        if metrics
            .lines()
            .any(|l| l.starts_with(gauge) && l.contains(&label) && l.contains("partition=\""))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {gauge} in:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
