//! Nothing acknowledged is lost, nothing is indexed twice: `kill -9` the server while a load is
//! running, start it again, and find every event that got a 202 exactly once.

use crate::support;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;

const BATCH: usize = 200;
const BATCHES_PER_WRITER: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_and_duplicates_nothing() {
    kill_and_recover(&[]).await;
}

/// The same with Kafka as the queue: the killed processor's uncommitted offsets are read again
/// by the next member of its consumer group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_with_kafka_loses_and_duplicates_nothing() {
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS: run the suite through scripts/test.sh");
    let unique = format!("{}-{}", std::process::id(), sluice_event::now_ms());
    let (url, topic, dead, group) = (
        format!("kafka://{brokers}"),
        format!("durability-{unique}"),
        format!("durability-dead-{unique}"),
        format!("durability-group-{unique}"),
    );
    kill_and_recover(&[
        ("SLUICE_QUEUE__URL", &url),
        ("SLUICE_QUEUE__KAFKA__TOPIC", &topic),
        ("SLUICE_QUEUE__KAFKA__DEAD_LETTER_TOPIC", &dead),
        ("SLUICE_QUEUE__KAFKA__GROUP_ID", &group),
        ("SLUICE_QUEUE__KAFKA__SESSION_TIMEOUT_MS", "6000"),
    ])
    .await;
}

async fn kill_and_recover(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, None, env);

    // Two writers post batches until the server dies under them; each remembers what got a 202.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..2 {
        let (acked, sent) = (Arc::clone(&acked), Arc::clone(&sent));
        let (http, url) = (server.http.clone(), server.url("/api/logs/ingest"));
        writers.push(tokio::spawn(async move {
            for batch in 0..BATCHES_PER_WRITER {
                let ids: Vec<String> = (0..BATCH)
                    .map(|i| format!("w{writer}-b{batch}-e{i}"))
                    .collect();
                let body: String = ids
                    .iter()
                    .map(|id| {
                        let event = json!({
                            "log_type": "error", "event_id": id, "service": "payments",
                            "error_message": "gateway timeout", "level": "error",
                        });
                        format!("{event}\n")
                    })
                    .collect();
                sent.lock().expect("lock").extend(ids.iter().cloned());
                let response = http
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 202 => acked.lock().expect("lock").extend(ids),
                    // The server is gone: whatever was not acknowledged may or may not be there.
                    _ => return,
                }
            }
        }));
    }

    // Kill it mid-stream, once a good part of the load was acknowledged.
    let started = Instant::now();
    while acked.lock().expect("lock").len() < 8 * BATCH
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for writer in writers {
        writer.await.expect("writer");
    }
    let acked: BTreeSet<String> = acked.lock().expect("lock").iter().cloned().collect();
    let sent = sent.lock().expect("lock").clone();
    assert!(
        acked.len() >= 8 * BATCH,
        "the load ran before the kill: {}",
        acked.len()
    );
    assert!(
        acked.len() < 2 * BATCH * BATCHES_PER_WRITER,
        "the kill landed mid-stream"
    );

    // Start again on the same data: the queue replays, the processor catches up.
    let server = Server::start(&data, None, env);
    let mut previous = u64::MAX;
    let mut total = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        total = server.total(json!({"size": 0})).await;
        if total >= acked.len() as u64 && total == previous && backlog_empty(&server).await {
            break;
        }
        previous = total;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let answer = server.search(json!({"size": 10000})).await;
    let hits = answer["hits"].as_array().expect("hits");
    assert_eq!(hits.len() as u64, total);
    let mut seen = HashSet::new();
    for hit in hits {
        let id = hit["_id"].as_str().expect("id").to_owned();
        assert!(sent.contains(&id), "{id} was never sent");
        assert!(seen.insert(id.clone()), "{id} is indexed twice");
    }
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

async fn backlog_empty(server: &Server) -> bool {
    let ready: Value = server.get_json("/ready").await;
    ready["queue"]["records"] == 0
}
