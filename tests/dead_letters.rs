//! Records that reach the queue another way and fail validation in the processor are
//! dead-lettered with their original bytes and the reason, and listed over HTTP.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_queue_records_are_validated_and_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, None, &[]);
    assert_eq!(server.stop().code(), Some(0), "SIGTERM is a clean stop");

    // Another producer writes straight into the queue while Sluice is down.
    let bad_bytes = b"{\"log_type\":\"transaction\",\"amount\":\"\xff\"}".to_vec();
    support::append_to_queue(
        &data,
        &[
            br#"{"log_type":"error","error_message":"from the side door","service":"legacy"}"#,
            br#"{"log_type":"transaction","amount":-1,"user_id":"u","transaction_id":"t"}"#,
            &bad_bytes,
        ],
    )
    .await;

    let server = Server::start(&data, None, &[]);
    server
        .wait_for_total(json!({"size": 0}), 1, Duration::from_secs(20))
        .await;
    // The processor indexes a batch before it writes the batch's dead letters: wait for them.
    let letters = dead_letters_once_there_are(&server, 2, Duration::from_secs(20)).await;
    assert_eq!(letters["total"], 2, "{letters}");
    let newest = &letters["dead_letters"][0];
    assert_eq!(newest["code"], "invalid_encoding", "{newest}");
    assert_eq!(newest["stage"], "validate");
    assert_eq!(newest["source"], "queue");
    assert_eq!(
        newest["record"],
        String::from_utf8_lossy(&bad_bytes).as_ref()
    );
    let older = &letters["dead_letters"][1];
    assert_eq!(older["field"], "amount");
    assert!(
        older["reason"]
            .as_str()
            .expect("reason")
            .contains("at least 0"),
        "{older}"
    );
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "sluice_events_dead_lettered_total{stage=\"validate\",reason=\"invalid_value\"} 1"
        ),
        "{metrics}"
    );
}

/// The first page of dead letters once there are `count`, or after `limit` whatever is there.
async fn dead_letters_once_there_are(server: &Server, count: u64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let letters: Value = server.get_json("/api/dead-letters?limit=10").await;
        if letters["total"] == count || started.elapsed() >= limit {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
