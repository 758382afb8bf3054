//! Against the Kafka-protocol broker `scripts/test.sh` starts (`TEST_KAFKA_BROKERS`); each test
//! uses its own topics and group, so they run side by side.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::*;
use sluice_event::validate::RejectCode;
use sluice_queue::{Batch, DeadLetter, DeadLetterFilter, DeadLetterQueue, Queue, QueueConsumer};

fn target(name: &str) -> KafkaTarget {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let brokers = std::env::var("TEST_KAFKA_BROKERS").expect(
        "TEST_KAFKA_BROKERS is not set: run the suite through scripts/test.sh, which starts the \
         Kafka-protocol broker",
    );
    let unique = format!(
        "{name}-{}-{}-{}",
        std::process::id(),
        sluice_event::now_ms(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    KafkaTarget {
        brokers,
        config: KafkaConfig {
            topic: format!("logs-{unique}"),
            dead_letter_topic: format!("dead-{unique}"),
            group_id: format!("group-{unique}"),
            session_timeout_ms: 6_000,
            ..KafkaConfig::default()
        },
    }
}

fn record(n: usize, user: &str) -> QueuedRecord {
    QueuedRecord {
        id: Some(format!("id-{n}")),
        received_at_ms: 1_000 + n as i64,
        source: Source::Bulk,
        partition_key: Some(user.to_owned()),
        payload: format!("{{\"n\":{n},\"user_id\":\"{user}\"}}").into_bytes(),
    }
}

/// Batches until `count` records arrived or `limit` passed, as one.
async fn receive(consumer: &mut KafkaConsumer, count: usize, limit: Duration) -> Batch {
    let deadline = Instant::now() + limit;
    let mut received = Batch::default();
    while received.len() < count && Instant::now() < deadline {
        let batch = consumer
            .next_batch(
                sluice_queue::BatchLimit {
                    records: count - received.len(),
                    bytes: usize::MAX,
                },
                Duration::from_millis(500),
            )
            .await
            .expect("batch");
        received.records.extend(batch.records);
        for (partition, next) in batch.checkpoint.partitions() {
            received.checkpoint.advance(partition, next);
        }
    }
    received
}

#[tokio::test]
async fn records_round_trip_with_their_envelope_and_per_customer_order() {
    let target = target("round-trip");
    let queue = KafkaQueue::connect(&target).expect("producer");
    let records: Vec<_> = (0..20)
        .map(|n| record(n, if n % 2 == 0 { "ada" } else { "bob" }))
        .collect();
    queue.append(records.clone()).await.expect("acknowledged");
    let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
    let batch = receive(&mut consumer, 20, Duration::from_secs(60)).await;
    let mut received = batch.records.clone();
    assert_eq!(received.len(), 20);
    for user in ["ada", "bob"] {
        let order: Vec<_> = received
            .iter()
            .filter(|r| r.partition_key.as_deref() == Some(user))
            .map(|r| r.id.clone())
            .collect();
        let sent: Vec<_> = records
            .iter()
            .filter(|r| r.partition_key.as_deref() == Some(user))
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(order, sent, "{user}'s events keep their order");
    }
    received.sort_by_key(|r| r.received_at_ms);
    assert_eq!(
        received, records,
        "ids, receive times, sources and bytes survive"
    );
    consumer.commit(&batch.checkpoint).await.expect("commit");
}

#[tokio::test]
async fn only_committed_records_are_gone_for_the_next_consumer() {
    let target = target("commit");
    let queue = KafkaQueue::connect(&target).expect("producer");
    queue
        .append((0..5).map(|n| record(n, "ada")).collect())
        .await
        .expect("acknowledged");
    {
        let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
        let first = receive(&mut consumer, 5, Duration::from_secs(60)).await;
        assert_eq!(first.len(), 5);
        // Dropped without committing: a crash before the store acknowledged.
    }
    let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
    let replayed = receive(&mut consumer, 5, Duration::from_secs(60)).await;
    assert_eq!(replayed.len(), 5, "uncommitted records come back");
    consumer.commit(&replayed.checkpoint).await.expect("commit");
    drop(consumer);

    queue
        .append(vec![record(5, "ada")])
        .await
        .expect("acknowledged");
    let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
    let after = receive(&mut consumer, 2, Duration::from_secs(20)).await;
    let ids: Vec<_> = after.records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        vec![Some("id-5".to_owned())],
        "committed records are not replayed"
    );
}

/// The processor reads the next batch while the store writes this one: committing this one's
/// offsets must leave the batch after it uncommitted.
#[tokio::test]
async fn a_commit_covers_its_batch_not_the_ones_delivered_after_it() {
    let target = target("commit-by-position");
    let queue = KafkaQueue::connect(&target).expect("producer");
    queue
        .append((0..6).map(|n| record(n, "ada")).collect())
        .await
        .expect("acknowledged");
    {
        let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
        let first = receive(&mut consumer, 2, Duration::from_secs(60)).await;
        let second = receive(&mut consumer, 2, Duration::from_secs(60)).await;
        assert_eq!((first.len(), second.len()), (2, 2));
        consumer.commit(&first.checkpoint).await.expect("commit");
    }
    let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
    let replayed = receive(&mut consumer, 6, Duration::from_secs(20)).await;
    let ids: Vec<_> = replayed.records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        (2..6).map(|n| Some(format!("id-{n}"))).collect::<Vec<_>>(),
        "the second batch was delivered but not committed: it comes back"
    );
}

#[tokio::test]
async fn records_from_other_producers_arrive_without_an_envelope() {
    let target = target("foreign");
    let plain: FutureProducer = target.client_config(&[]).create().expect("plain producer");
    plain
        .send(
            FutureRecord::<(), _>::to(&target.config.topic).payload("{\"log_type\":\"error\"}"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
    let mut consumer = KafkaConsumer::connect(&target).expect("consumer");
    let received = receive(&mut consumer, 1, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 1);
    let record = &received.records[0];
    assert_eq!((record.id.as_deref(), record.source), (None, Source::Queue));
    assert_eq!(record.payload, b"{\"log_type\":\"error\"}");
    assert!(
        (sluice_event::now_ms() - record.received_at_ms).abs() < 120_000,
        "the broker's timestamp"
    );
}

#[tokio::test]
async fn dead_letters_keep_bytes_and_reason_newest_first() {
    let target = target("dead");
    let dead = KafkaDeadLetters::connect(&target).expect("producer");
    let letter = |n: i64| DeadLetter {
        letter_id: String::new(),
        id: Some(format!("d-{n}")),
        failed_at_ms: 10_000 + n,
        received_at_ms: 9_000,
        source: Source::Queue,
        stage: "validate".into(),
        code: RejectCode::MissingField,
        field: Some("amount".into()),
        reason: format!("reason {n}"),
        payload: format!("raw bytes {n}").into_bytes(),
    };
    dead.push((0..3).map(letter).collect())
        .await
        .expect("pushed");
    let page = dead.newest(2).await.expect("listed");
    assert_eq!(page.total, 3);
    // Each letter is named by where it sits in the topic.
    let named: Vec<String> = page.letters.iter().map(|l| l.letter_id.clone()).collect();
    assert!(
        named
            .iter()
            .all(|id| id.starts_with('k') && id.contains('-')),
        "{named:?}"
    );
    let unnamed: Vec<DeadLetter> = page
        .letters
        .into_iter()
        .map(|letter| DeadLetter {
            letter_id: String::new(),
            ..letter
        })
        .collect();
    assert_eq!(unnamed, vec![letter(2), letter(1)]);
    // Found again by that name, and left out once settled.
    let by_name = DeadLetterFilter {
        letter_ids: Some([named[1].clone()].into()),
        ..DeadLetterFilter::default()
    };
    let found = dead.newest_matching(&by_name, 10).await.expect("listed");
    assert_eq!(found.total, 1);
    assert_eq!(found.letters[0].reason, "reason 1");
    let settled = DeadLetterFilter {
        settled: [named[0].clone()].into(),
        ..DeadLetterFilter::default()
    };
    assert_eq!(
        dead.newest_matching(&settled, 10)
            .await
            .expect("listed")
            .total,
        2
    );
}

#[test]
fn an_unreachable_broker_fails_the_append_with_a_clear_error() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let target = KafkaTarget {
        brokers: "127.0.0.1:1".into(),
        config: KafkaConfig {
            options: [("message.timeout.ms".to_owned(), "1000".to_owned())].into(),
            ..KafkaConfig::default()
        },
    };
    let queue = KafkaQueue::connect(&target).expect("producers connect lazily");
    let outcome = runtime.block_on(queue.append(vec![record(0, "ada")]));
    assert!(
        matches!(outcome, Err(QueueError::Unavailable(_))),
        "{outcome:?}"
    );
    let dead_letters = KafkaDeadLetters::connect(&target).expect("connect lazily");
    let ready = runtime.block_on(dead_letters.ready());
    assert!(
        matches!(ready, Err(QueueError::Unavailable(_))),
        "{ready:?}"
    );
}
